/* The compiled hot path of interception (see docs/interception.md, "The compiled hot path").
 *
 * Two objects, both thin C versions of the common case of Python code that stays the
 * reference and the fallback:
 *
 *   Record(fallback)  -- rotalumis.intercept._session.record: the call site found in the
 *                        session's live-frame memo, an unnamed site, the plain
 *                        prior-recording stack, a site already visited in this execution.
 *   Wrapper(...)      -- the random / numpy.random / torch wrappers (_make_wrapper):
 *                        recording(), the site memo, the caller's frame, then the record
 *                        (_accel_wrapper.c).
 *
 * Rule: everything the fast path needs is checked first, reading only; on any miss (a
 * first visit, a name, another handler stack, the max_choices limit, keyword arguments,
 * a subclass, ...) the call goes to the Python fallback before anything changed, so the
 * fallback sees exactly the state it would have seen alone. What the fast path then does
 * (count the visit, draw from the execution's RNG, append the pending record) is
 * Execution.next_address and runtime.send_sample step by step.
 *
 * Frames: a C function creates no Python frame, so the frame that called a Wrapper is
 * PyEval_GetFrame(), the same object the Python wrapper finds with sys._getframe(1); the
 * fallback, called from here, finds the same frame too (no frame lies in between).
 *
 * Python attributes of the core's __slots__ classes are read at their slot offsets, taken
 * from the member descriptors at configure() time; the exact types are checked per call.
 */
#include "_accel.h"

/* ---------------------------------------------------------------- configuration --- */

Config C;

int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *out)
{
    PyObject *descr = PyDict_GetItemString(type->tp_dict, name); /* borrowed */
    if (descr == NULL || !PyObject_TypeCheck(descr, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a __slots__ member", type->tp_name, name);
        return -1;
    }
    PyMemberDef *def = ((PyMemberDescrObject *)descr)->d_member;
    if (def->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "%s.%s: unexpected member type", type->tp_name, name);
        return -1;
    }
    *out = def->offset;
    return 0;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *session_type, *stack_type, *execution_type, *trace_type;
    Config c;
    memset(&c, 0, sizeof(c));
    if (!PyArg_ParseTuple(args, "OOOOOOOOOnO!nniO!", &c.session_var, &c.stack_var,
                          &c.execution_var, &c.empty_stack, &session_type, &stack_type,
                          &execution_type, &trace_type, &c.record_message, &c.cached_visits,
                          &PyDict_Type, &c.addresses, &c.max_depth, &c.sites_limit,
                          &c.suspendable, &PyDict_Type, &c.shaped))
        return NULL;
    if (c.max_depth < 1 || c.max_depth > 256) {
        PyErr_SetString(PyExc_ValueError, "configure: max_depth must be in 1..256");
        return NULL;
    }
    PyObject *types[4] = {session_type, stack_type, execution_type, trace_type};
    for (int i = 0; i < 4; i++) {
        if (!PyType_Check(types[i])) {
            PyErr_SetString(PyExc_TypeError, "configure: expected classes");
            return NULL;
        }
    }
    c.session_type = (PyTypeObject *)session_type;
    c.stack_type = (PyTypeObject *)stack_type;
    c.execution_type = (PyTypeObject *)execution_type;
    c.trace_type = (PyTypeObject *)trace_type;
    if (slot_offset(c.session_type, "busy", &c.s_busy) < 0 ||
        slot_offset(c.session_type, "frames", &c.s_frames) < 0 ||
        slot_offset(c.session_type, "sites", &c.s_sites) < 0 ||
        slot_offset(c.session_type, "names", &c.s_names) < 0 ||
        slot_offset(c.session_type, "_name_cache", &c.s_name_cache) < 0 ||
        slot_offset(c.stack_type, "recorder", &c.st_recorder) < 0 ||
        slot_offset(c.execution_type, "entry_code", &c.ex_entry) < 0 ||
        slot_offset(c.execution_type, "choices", &c.ex_choices) < 0 ||
        slot_offset(c.execution_type, "max_choices", &c.ex_max) < 0 ||
        slot_offset(c.execution_type, "counters", &c.ex_counters) < 0 ||
        slot_offset(c.execution_type, "rng", &c.ex_rng) < 0 ||
        slot_offset(c.execution_type, "deferred", &c.ex_deferred) < 0 ||
        slot_offset(c.trace_type, "pending", &c.tr_pending) < 0)
        return NULL;
    c.str_name = PyUnicode_InternFromString("name");
    c.str_sample = PyUnicode_InternFromString("sample");
    c.str_is_scalar = PyUnicode_InternFromString("is_scalar");
    c.str_trace = PyUnicode_InternFromString("trace");
    if (!c.str_name || !c.str_sample || !c.str_is_scalar || !c.str_trace)
        return NULL;
    /* kept for the life of the process (configure is called once) */
    Py_INCREF(c.session_var);
    Py_INCREF(c.stack_var);
    Py_INCREF(c.execution_var);
    Py_INCREF(c.empty_stack);
    Py_INCREF(session_type);
    Py_INCREF(stack_type);
    Py_INCREF(execution_type);
    Py_INCREF(trace_type);
    Py_INCREF(c.record_message);
    Py_INCREF(c.addresses);
    Py_INCREF(c.shaped);
    c.ready = 1;
    C = c;
    Py_RETURN_NONE;
}

PyObject *
var_get(PyObject *var)
{
    PyObject *value;
    if (PyContextVar_Get(var, NULL, &value) < 0)
        return NULL;
    Py_DECREF(value); /* the variable's value stays referenced by the context */
    return value;
}

/* ------------------------------------------------------------- the record core --- */

/* Marks "take the Python path" (nothing was changed). */
char miss_marker;

/* recording() of _session: the session when this call should be recorded, Py_None when it
 * passes through, NULL on error (borrowed). */

PyObject *
recording(void)
{
    PyObject *s = var_get(C.session_var);
    if (s == NULL)
        return NULL;
    if (s == Py_None)
        return Py_None;
    if (Py_TYPE(s) != C.session_type) /* the Python code decides */
        return MISS;
    PyObject *busy = SLOT(s, C.s_busy);
    if (busy == NULL)
        return MISS;
    if (busy != Py_False) {
        if (busy == Py_True)
            return Py_None;
        return MISS;
    }
    PyObject *stack = var_get(C.stack_var);
    if (stack == NULL)
        return NULL;
    if (stack == C.empty_stack) {
        PyObject *ex = var_get(C.execution_var);
        if (ex == NULL)
            return NULL;
        if (ex == Py_None)
            return Py_None;
        if (Py_TYPE(ex) != C.execution_type || SLOT(ex, C.ex_entry) == NULL)
            return MISS;
        if (SLOT(ex, C.ex_entry) == Py_None)
            return Py_None;
    }
    return s;
}

static PyObject *record_found(PyObject *session, PyObject *ex, PyObject *entry, PyObject *base,
                              PyObject *dist, PyObject *frame, SiteStore *st, LazyOut *out);

/* record(session, label, dist, frame) for an unshaped site: a new reference to the value,
 * MISS (nothing changed), or NULL with an exception set. */
PyObject *
record_core(PyObject *session, PyObject *label, PyObject *dist, PyObject *frame, LazyOut *out)
{
    if (Py_TYPE(session) != C.session_type || !PyFrame_Check(frame))
        return MISS;
    PyObject *ex = var_get(C.execution_var);
    if (ex == NULL)
        return NULL;
    if (Py_TYPE(ex) != C.execution_type)
        return MISS; /* no execution (or a subclass): the Python path */
    PyObject *entry = SLOT(ex, C.ex_entry);
    PyObject *frames = SLOT(session, C.s_frames);
    if (entry == NULL || frames == NULL || !PyDict_CheckExact(frames))
        return MISS;
    SiteStore st = {NULL, NULL};
    int live;
    PyObject *base = call_site(session, label, frame, frames, entry, &st, &live);
    if (base == NULL || base == MISS)
        return base;
    Py_INCREF(base); /* a store in Session.sites may drop the memo's reference */
    if (out != NULL)
        out->live = live;
    PyObject *value = record_found(session, ex, entry, base, dist, frame, &st, live ? out : NULL);
    Py_DECREF(base);
    store_clear(&st);
    return value;
}

static PyObject *
record_found(PyObject *session, PyObject *ex, PyObject *entry, PyObject *base, PyObject *dist,
             PyObject *frame, SiteStore *st, LazyOut *out)
{
    /* names: only a base known to have none (session.name_for's cache) */
    PyObject *names = SLOT(session, C.s_names);
    if (names == NULL || !PyTuple_CheckExact(names))
        return MISS;
    if (PyTuple_GET_SIZE(names) != 0) {
        PyObject *cache = SLOT(session, C.s_name_cache);
        if (cache == NULL || !PyDict_CheckExact(cache))
            return MISS;
        PyObject *named = PyDict_GetItemWithError(cache, base);
        if (named == NULL)
            return PyErr_Occurred() ? NULL : MISS;
        if (named != Py_None)
            return MISS;
    }
    /* send_sample: the plain prior-recording stack */
    PyObject *stack = var_get(C.stack_var);
    if (stack == NULL)
        return NULL;
    if (Py_TYPE(stack) != C.stack_type)
        return MISS;
    PyObject *recorder = SLOT(stack, C.st_recorder);
    if (recorder == NULL || recorder == Py_None)
        return MISS;
    /* Execution.next_address: a site visited before, within max_choices */
    PyObject *choices_obj = SLOT(ex, C.ex_choices), *max_obj = SLOT(ex, C.ex_max);
    PyObject *counters = SLOT(ex, C.ex_counters), *rng = SLOT(ex, C.ex_rng);
    PyObject *deferred = SLOT(ex, C.ex_deferred);
    if (choices_obj == NULL || max_obj == NULL || counters == NULL || rng == NULL ||
        deferred == NULL || !PyLong_CheckExact(choices_obj) || !PyLong_CheckExact(max_obj) ||
        !PyDict_CheckExact(counters) || (deferred != Py_None && Py_TYPE(deferred) != &BatchType))
        return MISS;
    Py_ssize_t choices = PyLong_AsSsize_t(choices_obj);
    Py_ssize_t max_choices = PyLong_AsSsize_t(max_obj);
    if ((choices == -1 || max_choices == -1) && PyErr_Occurred()) {
        PyErr_Clear();
        return MISS;
    }
    if (deferred != Py_None) /* draws counted in C since (_accel_lazy.c) */
        choices = batch_choices(deferred);
    if (choices >= max_choices || choices == PY_SSIZE_T_MAX)
        return MISS; /* the limit: the Python path raises TraceLimitError */
    PyObject *trace = PyObject_GetAttr(recorder, C.str_trace);
    if (trace == NULL)
        return NULL;
    PyObject *pending = Py_TYPE(trace) == C.trace_type ? SLOT(trace, C.tr_pending) : NULL;
    if (pending == NULL || !PyList_CheckExact(pending)) {
        Py_DECREF(trace);
        return MISS;
    }
    /* a draw taken in C is always deferred: counted lazily, in the open batch at the end of
     * the trace's pending records if there is one */
    int lazy = scalar_drawable(dist, rng);
    int open = lazy && deferred != Py_None && batch_open(deferred, trace) &&
               PyList_GET_SIZE(pending) > 0 &&
               PyList_GET_ITEM(pending, PyList_GET_SIZE(pending) - 1) == deferred;
    Py_ssize_t slot = open ? batch_find(deferred, base, dist) : -1;
    PyObject *counter = NULL;
    if (slot < 0) {
        PyObject *kind = PyObject_GetAttr(dist, C.str_name);
        if (kind == NULL) {
            Py_DECREF(trace);
            return NULL;
        }
        if (!PyUnicode_CheckExact(kind)) {
            Py_DECREF(kind);
            Py_DECREF(trace);
            return MISS;
        }
        PyObject *key = PyTuple_Pack(2, base, kind);
        Py_DECREF(kind);
        if (key == NULL) {
            Py_DECREF(trace);
            return NULL;
        }
        counter = PyDict_GetItemWithError(counters, key);
        Py_DECREF(key);
        if (counter == NULL) {
            Py_DECREF(trace);
            return PyErr_Occurred() ? NULL : MISS; /* a first visit: the Python path */
        }
        if (!PyList_CheckExact(counter) || PyList_GET_SIZE(counter) != 2 ||
            !PyLong_CheckExact(PyList_GET_ITEM(counter, 0)) ||
            !PyList_CheckExact(PyList_GET_ITEM(counter, 1)) ||
            PyList_GET_SIZE(PyList_GET_ITEM(counter, 1)) < 1) {
            Py_DECREF(trace);
            return MISS;
        }
    }
    /* ---- commit: from here on this is the recording itself ---- */
    PyObject *value = NULL, *address = NULL, *n_obj = NULL, *batch = NULL;
    /* held while Python code (the draw) runs: the context variables' values */
    Py_INCREF(session);
    Py_INCREF(ex);
    Py_INCREF(recorder);
    Py_XINCREF(counter);
    if (store_site(session, st, entry, base, frame) < 0)
        goto done;
    if (lazy) {
        if (!open) { /* a new batch, after what the Python code appended meanwhile */
            if (flush_deferred(ex) < 0)
                goto done;
            batch = batch_new(trace, choices);
            if (batch == NULL || PyList_Append(SLOT(trace, C.tr_pending), batch) < 0)
                goto done;
            Py_INCREF(batch);
            Py_SETREF(SLOT(ex, C.ex_deferred), batch);
        }
        else {
            batch = deferred;
            Py_INCREF(batch);
        }
        if (slot < 0 && (slot = batch_add_slot(batch, base, dist, counter)) < 0)
            goto done;
        value = draw_lazily(batch, slot, session, dist, rng);
        if (value != NULL && out != NULL)
            *out = (LazyOut){batch, batch_serial(batch), slot, out->live};
        goto done;
    }
    /* counted at once: the deferred visits are written first (Execution.flush_deferred) */
    if (flush_deferred(ex) < 0)
        goto done;
    Py_ssize_t visits = PyLong_AsSsize_t(PyList_GET_ITEM(counter, 0));
    if (visits == -1 && PyErr_Occurred())
        goto done;
    PyObject *new_choices = PyLong_FromSsize_t(choices + 1);
    if (new_choices == NULL)
        goto done;
    Py_SETREF(SLOT(ex, C.ex_choices), new_choices);
    Py_ssize_t n = visits + 1;
    n_obj = PyLong_FromSsize_t(n);
    if (n_obj == NULL)
        goto done;
    Py_INCREF(n_obj);
    if (PyList_SetItem(counter, 0, n_obj) < 0) /* steals the extra reference */
        goto done;
    PyObject *fulls = PyList_GET_ITEM(counter, 1);
    if (n < PyList_GET_SIZE(fulls)) {
        address = PyList_GET_ITEM(fulls, n);
        Py_INCREF(address);
    }
    else {
        PyObject *digits = PyObject_Str(n_obj);
        if (digits == NULL)
            goto done;
        address = PyUnicode_Concat(PyList_GET_ITEM(fulls, 0), digits);
        Py_DECREF(digits);
        if (address == NULL)
            goto done;
        if (n == PyList_GET_SIZE(fulls) && n <= C.cached_visits && PyList_Append(fulls, address) < 0)
            goto done;
    }
    /* session.busy = True around the draw (record's try/finally) */
    Py_INCREF(Py_True);
    Py_SETREF(SLOT(session, C.s_busy), Py_True);
    value = PyObject_CallMethodOneArg(dist, C.str_sample, rng);
    pending = SLOT(trace, C.tr_pending); /* read after the draw, as send_sample */
    if (value != NULL) {
        int deferred_value = 0;
        if (PyFloat_CheckExact(value) || PyLong_CheckExact(value)) {
            PyObject *scalar = PyObject_GetAttr(dist, C.str_is_scalar);
            deferred_value = scalar == NULL ? -1 : PyObject_IsTrue(scalar);
            Py_XDECREF(scalar);
        }
        int ok;
        if (deferred_value < 0)
            ok = 0;
        else if (deferred_value) {
            PyObject *record = PyTuple_Pack(5, address, base, dist, value, Py_True);
            ok = record != NULL && pending != NULL && PyList_Append(pending, record) == 0;
            Py_XDECREF(record);
        }
        else {
            PyObject *r = PyObject_CallFunctionObjArgs(C.record_message, recorder, address, base,
                                                       dist, value, NULL);
            ok = r != NULL;
            Py_XDECREF(r);
        }
        if (!ok)
            Py_CLEAR(value);
    }
    Py_INCREF(Py_False);
    Py_SETREF(SLOT(session, C.s_busy), Py_False);
done:
    Py_XDECREF(batch);
    Py_XDECREF(counter);
    Py_XDECREF(n_obj);
    Py_XDECREF(address);
    Py_DECREF(trace);
    Py_DECREF(recorder);
    Py_DECREF(ex);
    Py_DECREF(session);
    return value;
}

/* ------------------------------------------------------------------- Record --- */

typedef struct {
    PyObject_HEAD
    PyObject *fallback;
    vectorcallfunc vectorcall;
} RecordObject;

static PyObject *
Record_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    RecordObject *r = (RecordObject *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (C.ready && kwnames == NULL && (nargs == 4 || nargs == 5)) {
        PyObject *label = args[1];
        if (nargs == 5 && !(PyTuple_CheckExact(args[4]) && PyTuple_GET_SIZE(args[4]) == 0)) {
            /* a vector site: its label with the shape, from shaped_label's cache */
            PyObject *key = PyTuple_Pack(2, label, args[4]);
            if (key == NULL)
                return NULL;
            label = PyDict_GetItemWithError(C.shaped, key);
            Py_DECREF(key);
            if (label == NULL && PyErr_Occurred())
                return NULL;
        }
        if (label != NULL) {
            Py_INCREF(label);
            PyObject *value = record_core(args[0], label, args[2], args[3], NULL);
            Py_DECREF(label);
            if (value != MISS)
                return value;
        }
    }
    return PyObject_Vectorcall(r->fallback, args, nargsf, kwnames);
}

static PyObject *
Record_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *fallback;
    if (!PyArg_ParseTuple(args, "O:Record", &fallback))
        return NULL;
    RecordObject *self = (RecordObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    Py_INCREF(fallback);
    self->fallback = fallback;
    self->vectorcall = Record_vectorcall;
    return (PyObject *)self;
}

static int
Record_traverse(RecordObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    return 0;
}

static int
Record_clear(RecordObject *self)
{
    Py_CLEAR(self->fallback);
    return 0;
}

static void
Record_dealloc(RecordObject *self)
{
    PyObject_GC_UnTrack(self);
    Record_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef Record_members[] = {
    {"fallback", T_OBJECT, offsetof(RecordObject, fallback), READONLY, "the Python record"},
    {NULL},
};

static PyTypeObject RecordType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rotalumis.intercept._accel.Record",
    .tp_basicsize = sizeof(RecordObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "record(session, label, dist, frame, shape=()) with a compiled common case.",
    .tp_new = Record_new,
    .tp_traverse = (traverseproc)Record_traverse,
    .tp_clear = (inquiry)Record_clear,
    .tp_dealloc = (destructor)Record_dealloc,
    .tp_vectorcall_offset = offsetof(RecordObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_members = Record_members,
};

/* ------------------------------------------------------------------- module --- */

static PyMethodDef module_methods[] = {
    {"set_class_attrs", set_class_attrs, METH_VARARGS,
     "set_class_attrs(cls, names, values, expected, missing) -> (previous, skipped): "
     "class attributes set (or removed: missing), then PyType_Modified."},
    {"fast_repeats", fast_repeats, METH_NOARGS,
     "fast_repeats() -> int: calls that repeated a remembered one (the compiled fast path)."},
    {"forget_calls", forget_calls, METH_VARARGS,
     "forget_calls([session]): the wrappers forget their remembered calls (frames, "
     "executions): all, or those of the session."},
    {"replace_items", replace_items, METH_O,
     "replace_items([(namespace, key, old, new), ...]): namespace[key] = new where it is old."},
    {"configure_torch", configure_torch, METH_VARARGS,
     "configure_torch(get_default_dtype, strided, Size, fill): what the torch wrappers read."},
    {"configure_draws", configure_draws, METH_VARARGS,
     "configure_draws(Uniform, Categorical, RNG): the scalar draws taken in C."},
    {"configure_settle", configure_settle, METH_VARARGS,
     "configure_settle(Message): the class Trace.settle makes (its slots)."},
    {"settle", settle, METH_O,
     "settle(trace): Trace.settle compiled; False when the Python code must run it."},
    {"configure", configure, METH_VARARGS,
     "configure(session_var, stack_var, execution_var, empty_stack, Session, _Stack, "
     "Execution, Trace, record_message, cached_visits, addresses, max_depth, sites_limit, "
     "suspendable, shaped): the objects and constants the fast path reads."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rotalumis.intercept._accel",
    .m_doc = "The compiled common case of intercepted draws (pure-Python fallback: "
             "rotalumis.intercept._session).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__accel(void)
{
    if (PyType_Ready(&RecordType) < 0 || PyType_Ready(&WrapperType) < 0 ||
        PyType_Ready(&BatchType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RecordType);
    Py_INCREF(&WrapperType);
    if (PyModule_AddObject(m, "Record", (PyObject *)&RecordType) < 0 ||
        PyModule_AddObject(m, "Wrapper", (PyObject *)&WrapperType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
