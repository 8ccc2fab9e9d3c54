/* The compiled wrappers (see _accel.c): random / numpy.random and torch. */
#include "_accel.h"

static PyObject *torch_vectorcall(WrapperObject *w, PyObject *const *args, Py_ssize_t nargs);

/* ---- the remembered calls (FastEntry) ---- */

static FastEntry *
fast_entry(WrapperObject *w, void *code, int lasti)
{
    size_t h = ((size_t)code >> 4) ^ ((size_t)lasti * 0x9E3779B1u);
    return &w->fast[(h ^ (h >> 7)) & (FAST_SLOTS - 1)];
}

/* The frame's code, borrowed (the frame holds it). */
static void *
frame_code(PyFrameObject *frame)
{
    PyCodeObject *code = PyFrame_GetCode(frame);
    Py_DECREF(code);
    return code;
}

/* The current context's variable mapping (borrowed), or NULL where it cannot be read.
 * CPython 3.11's context object (Include/internal/pycore_context.h) keeps its variables in
 * an immutable mapping (a HAMT) that every ContextVar.set in the context replaces, so one
 * mapping object, held (never reused while held), has one value of each variable: a
 * remembered call whose mapping is current needs no read of the session, handler-stack
 * and execution variables. Other versions read the variables. */
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
typedef struct {
    PyObject_HEAD
    PyObject *ctx_prev;
    PyObject *ctx_vars;
    PyObject *ctx_weakreflist;
    int ctx_entered;
} Context311;

/* CPython 3.11's interpreter frame (Include/internal/pycore_frame.h), read-only here. */
typedef struct Frame311 {
    PyObject *f_func, *f_globals, *f_builtins, *f_locals;
    PyCodeObject *f_code;
    PyFrameObject *frame_obj;
    struct Frame311 *previous;
    _Py_CODEUNIT *prev_instr;
    int stacktop;
    char is_entry; /* bool */
    char owner;
} Frame311;

/* PyFrame_GetLasti's value (the byte offset of the last instruction, or -1). */
static inline int
frame311_lasti(Frame311 *frame)
{
    int lasti = (int)(frame->prev_instr - _PyCode_CODE(frame->f_code));
    return lasti < 0 ? -1 : lasti * (int)sizeof(_Py_CODEUNIT);
}

static PyObject *
context_vars(void)
{
    PyObject *ctx = PyThreadState_GET()->context;
    if (ctx == NULL || !PyContext_CheckExact(ctx))
        return NULL;
    return ((Context311 *)ctx)->ctx_vars;
}
#else
static PyObject *
context_vars(void)
{
    return NULL;
}
#endif

static void
fast_clear(FastEntry *f)
{
    Py_CLEAR(f->vars);
    Py_CLEAR(f->frame);
    Py_CLEAR(f->self);
    Py_CLEAR(f->session);
    Py_CLEAR(f->stack);
    Py_CLEAR(f->ex);
    Py_CLEAR(f->entry);
    Py_CLEAR(f->site);
    for (int i = 0; i < FAST_ARGS; i++)
        Py_CLEAR(f->args[i]);
    f->batch = NULL;
}

/* The wrappers whose fast entries hold calls (frames, executions): forget_calls() clears
 * them when the last intercepting context ends, so that nothing of a finished run (a
 * frame's locals) stays alive through a wrapper. */
#define REMEMBERING_MAX 64
static WrapperObject *remembering[REMEMBERING_MAX];
static int n_remembering = 0;

static void
forget(WrapperObject *w)
{
    for (int k = 0; k < FAST_SLOTS; k++)
        fast_clear(&w->fast[k]);
    if (w->remembering) {
        w->remembering = 0;
        for (int i = 0; i < n_remembering; i++)
            if (remembering[i] == w) {
                remembering[i] = remembering[--n_remembering];
                break;
            }
    }
}

/* How many calls repeated a remembered one (fast_call), for tests: a remembered call that
 * is never found again still records correctly, only slowly. */
static unsigned long long n_fast_repeats = 0;

PyObject *
fast_repeats(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromUnsignedLongLong(n_fast_repeats);
}

/* forget_calls(): every wrapper forgets every call; forget_calls(session): the calls
 * remembered in that session only (it ended: none of them can repeat). */
PyObject *
forget_calls(PyObject *module, PyObject *args)
{
    PyObject *session = NULL;
    if (!PyArg_UnpackTuple(args, "forget_calls", 0, 1, &session))
        return NULL;
    if (session == NULL) {
        while (n_remembering > 0)
            forget(remembering[n_remembering - 1]);
        Py_RETURN_NONE;
    }
    for (int i = 0; i < n_remembering; i++) {
        WrapperObject *w = remembering[i];
        for (int k = 0; k < FAST_SLOTS; k++)
            if (w->fast[k].session == session)
                fast_clear(&w->fast[k]);
    }
    Py_RETURN_NONE;
}

/* Remembers a call whose draw was counted lazily (record_core filled *lazy). */
static void
fast_store(WrapperObject *w, PyFrameObject *frame, PyObject *const *args, Py_ssize_t nargs,
           PyObject *session, PyObject *site, LazyOut *lazy)
{
    if (nargs - 1 > FAST_ARGS)
        return;
    if (!w->remembering) {
        if (n_remembering == REMEMBERING_MAX)
            return;
        remembering[n_remembering++] = w;
        w->remembering = 1;
    }
    PyObject *vars = context_vars(); /* read with the variables below, no Python between */
    PyObject *now = var_get(C.session_var);
    PyObject *stack = var_get(C.stack_var), *ex = var_get(C.execution_var);
    if (now == NULL)
        PyErr_Clear();
    if (now != session)
        vars = NULL; /* the record's Python code set the session variable: read them */
    if (stack == NULL || ex == NULL || Py_TYPE(ex) != C.execution_type ||
        SLOT(ex, C.ex_entry) == NULL || SLOT(ex, C.ex_deferred) != lazy->batch) {
        PyErr_Clear(); /* only a cache */
        return;
    }
    int lasti = PyFrame_GetLasti(frame), parent_lasti = 0;
    void *code = frame_code(frame);
    PyObject *held = (PyObject *)frame;
    if (lazy->live == 2) { /* the parent frame stands for the call site */
        PyFrameObject *parent = PyFrame_GetBack(frame);
        if (parent == NULL)
            return;
        parent_lasti = PyFrame_GetLasti(parent);
        held = (PyObject *)parent;
        Py_DECREF(parent); /* alive: it is on the stack (held below) */
    }
    else if (lazy->live != 1)
        return;
    FastEntry *f = fast_entry(w, code, lasti);
    fast_clear(f);
    f->code = code;
    f->by_parent = lazy->live == 2;
    f->parent_lasti = parent_lasti;
    PyObject *refs[7] = {held, args[0], session, stack, ex, SLOT(ex, C.ex_entry), site};
    for (int i = 0; i < 7; i++)
        Py_INCREF(refs[i]);
    f->frame = refs[0];
    f->self = refs[1];
    f->session = refs[2];
    f->stack = refs[3];
    f->ex = refs[4];
    f->entry = refs[5];
    f->site = refs[6];
    Py_XINCREF(vars);
    f->vars = vars;
    f->nargs = nargs - 1;
    for (Py_ssize_t i = 1; i < nargs; i++) {
        Py_INCREF(args[i]);
        f->args[i - 1] = args[i];
    }
    f->lasti = lasti;
    f->batch = lazy->batch;
    f->serial = lazy->serial;
    f->slot = lazy->slot;
}

/* ``convert(value)``, stealing ``value`` (NULL passes through): float(x) and int(x) of a
 * float and an int return x itself, so those are not called. */
static PyObject *
converted(PyObject *convert, PyObject *value)
{
    if (value == NULL)
        return NULL;
    if ((convert == (PyObject *)&PyFloat_Type && PyFloat_CheckExact(value)) ||
        (convert == (PyObject *)&PyLong_Type && PyLong_CheckExact(value)))
        return value;
    PyObject *out = PyObject_CallOneArg(convert, value);
    Py_DECREF(value);
    return out;
}

/* The same arguments as the remembered call (its memo key would be the same). */
static int
fast_same_args(FastEntry *f, PyObject *const *args, Py_ssize_t nargs)
{
    if (f->nargs != nargs - 1)
        return 0;
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyObject *a = args[i], *b = f->args[i - 1];
        if (a != b && !(PyFloat_CheckExact(a) && PyFloat_CheckExact(b) &&
                        PyFloat_AS_DOUBLE(a) == PyFloat_AS_DOUBLE(b)))
            return 0;
    }
    return 1;
}

/* A call of a random Wrapper that repeats a remembered one: the same frame and
 * instruction (a live frame: the same call site; or the same code and instruction called
 * from the same live parent frame at the same instruction), instance and arguments (the same
 * distribution), session (not busy, no site names), handler stack and execution (its entry
 * unchanged), whose open batch is still the execution's, within max_choices. Then the
 * full path would find exactly the remembered site and slot: the draw is counted and
 * taken at once. MISS (nothing changed) otherwise, NULL on error. */
static PyObject *
fast_call(WrapperObject *w, PyObject *const *args, Py_ssize_t nargs)
{
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
    /* the caller's frame read where PyEval_GetFrame, PyFrame_GetCode, PyFrame_GetLasti
     * and PyFrame_GetBack read it (CPython 3.11), without their calls and references; a
     * frame whose frame object was never made cannot be a remembered one */
    Frame311 *cur = (Frame311 *)PyThreadState_GET()->cframe->current_frame;
    if (cur == NULL)
        return MISS;
    void *code = cur->f_code;
    int lasti = frame311_lasti(cur);
    FastEntry *f = fast_entry(w, code, lasti);
    if (f->code != code || f->lasti != lasti || f->self != args[0] ||
        !fast_same_args(f, args, nargs))
        return MISS;
    if (f->by_parent) {
        Frame311 *parent = cur->previous;
        if (parent == NULL || (PyObject *)parent->frame_obj != f->frame ||
            frame311_lasti(parent) != f->parent_lasti)
            return MISS;
    }
    else if ((PyObject *)cur->frame_obj != f->frame)
        return MISS;
#else
    PyFrameObject *frame = PyEval_GetFrame();
    if (frame == NULL)
        return MISS;
    int lasti = PyFrame_GetLasti(frame);
    void *code = frame_code(frame);
    FastEntry *f = fast_entry(w, code, lasti);
    if (f->code != code || f->lasti != lasti || f->self != args[0] ||
        !fast_same_args(f, args, nargs))
        return MISS;
    if (f->by_parent) {
        PyFrameObject *parent = PyFrame_GetBack(frame);
        int same = parent != NULL && (PyObject *)parent == f->frame &&
                   PyFrame_GetLasti(parent) == f->parent_lasti;
        Py_XDECREF(parent);
        if (!same)
            return MISS;
    }
    else if (f->frame != (PyObject *)frame)
        return MISS;
#endif
    PyObject *session = f->session, *ex = f->ex;
    PyObject *vars = context_vars();
    if (vars == NULL || vars != f->vars) { /* read and compare the variables */
        PyObject *now = var_get(C.session_var);
        if (now != session) /* NULL (an error) too: the full path reports it */
            return now == NULL ? (PyErr_Clear(), MISS) : MISS;
        PyObject *stack = var_get(C.stack_var);
        PyObject *ex_now = stack == NULL ? NULL : var_get(C.execution_var);
        if (ex_now == NULL)
            PyErr_Clear();
        if (stack != f->stack || ex_now != ex)
            return MISS;
    }
    PyObject *names = SLOT(session, C.s_names);
    if (SLOT(session, C.s_busy) != Py_False || names == NULL || !PyTuple_CheckExact(names) ||
        PyTuple_GET_SIZE(names) != 0)
        return MISS;
    if (SLOT(ex, C.ex_entry) != f->entry)
        return MISS;
    PyObject *batch = SLOT(ex, C.ex_deferred), *max_obj = SLOT(ex, C.ex_max);
    PyObject *rng = SLOT(ex, C.ex_rng);
    if (batch != f->batch || max_obj == NULL || rng == NULL)
        return MISS;
    PyObject *site = f->site, *dist = PyTuple_GET_ITEM(site, 0);
    PyObject *convert = PyTuple_GET_ITEM(site, 1);
    Py_INCREF(site); /* the entry may be replaced while the value converts */
    PyObject *value = batch_draw_again(batch, f->serial, max_obj, f->slot, session, dist, rng);
    if (value == MISS) {
        Py_DECREF(site);
        return MISS;
    }
    n_fast_repeats++;
    PyObject *out = converted(convert, value);
    Py_DECREF(site);
    return out;
}

static PyObject *
Wrapper_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    WrapperObject *w = (WrapperObject *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (w->mode != WRAP_RANDOM) {
        if (!C.torch_ready || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0))
            goto fallback;
        PyObject *out = torch_vectorcall(w, args, nargs);
        if (out == MISS)
            goto fallback;
        if (out == Py_None) /* not recording (a borrowed marker) */
            goto original;
        return out;
    }
    if (!C.ready || nargs < 1)
        goto fallback;
    if (kwnames == NULL && nargs <= FAST_ARGS + 1) {
        PyObject *out = fast_call(w, args, nargs);
        if (out != MISS)
            return out;
    }
    PyObject *session = recording();
    if (session == NULL)
        return NULL;
    if (session == MISS)
        goto fallback;
    PyObject *self = args[0];
    if (session == Py_None)
        goto original;
    /* isinstance(self, skip_type); the global instance's class is random.Random itself
     * (no __class__ of its own), never a subclass of random.SystemRandom */
    if (w->skip_type != Py_None &&
        !(w->global_instance != Py_None && Py_TYPE(self) == Py_TYPE(w->global_instance) &&
          !PyType_IsSubtype(Py_TYPE(self), (PyTypeObject *)w->skip_type))) {
        int skip = PyObject_IsInstance(self, w->skip_type);
        if (skip < 0)
            return NULL;
        if (skip)
            goto original;
    }
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)
        goto fallback;
    /* site_for's memo key (memo_key): the arguments if all are floats, (int, *args) if
     * all are integers; otherwise the Python wrapper (not memoised) */
    int floats = 1, ints = 1;
    for (Py_ssize_t i = 1; i < nargs; i++) {
        floats &= PyFloat_CheckExact(args[i]);
        ints &= PyLong_CheckExact(args[i]);
    }
    if (!floats && !ints)
        goto fallback;
    Py_ssize_t offset = floats ? 0 : 1;
    PyObject *key = PyTuple_New(nargs - 1 + offset);
    if (key == NULL)
        return NULL;
    if (offset) {
        Py_INCREF(&PyLong_Type);
        PyTuple_SET_ITEM(key, 0, (PyObject *)&PyLong_Type);
    }
    for (Py_ssize_t i = 1; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(key, i - 1 + offset, args[i]);
    }
    PyObject *site = PyDict_GetItemWithError(w->memo, key);
    Py_DECREF(key);
    if (site == NULL) {
        if (PyErr_Occurred())
            return NULL;
        goto fallback;
    }
    if (!PyTuple_CheckExact(site) || PyTuple_GET_SIZE(site) != 3)
        goto fallback;
    PyObject *dist = PyTuple_GET_ITEM(site, 0), *convert = PyTuple_GET_ITEM(site, 1);
    PyObject *shape = PyTuple_GET_ITEM(site, 2);
    if (dist == Py_None || !PyTuple_CheckExact(shape) || PyTuple_GET_SIZE(shape) != 0)
        goto fallback;
    PyObject *label = self == w->global_instance ? w->module_label : w->class_label;
    PyFrameObject *frame = PyEval_GetFrame();
    if (frame == NULL)
        goto fallback;
    Py_INCREF(site); /* keeps dist and convert alive while the draw runs */
    LazyOut lazy = {NULL, 0, 0, 0};
    PyObject *value = record_core(session, label, dist, (PyObject *)frame, &lazy);
    if (value == MISS) {
        Py_DECREF(site);
        goto fallback;
    }
    if (value != NULL && lazy.batch != NULL)
        fast_store(w, frame, args, nargs, session, site, &lazy);
    PyObject *out = converted(convert, value);
    Py_DECREF(site);
    return out;
original:
    return PyObject_Vectorcall(w->original, args, nargsf, kwnames);
fallback:
    return PyObject_Vectorcall(w->fallback, args, nargsf, kwnames);
}

static PyObject *
Wrapper_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *fallback, *original, *memo, *module_label, *class_label, *global_instance,
        *skip_type;
    int mode = WRAP_RANDOM;
    if (!PyArg_ParseTuple(args, "OOO!UUOO|i:Wrapper", &fallback, &original, &PyDict_Type, &memo,
                          &module_label, &class_label, &global_instance, &skip_type, &mode))
        return NULL;
    if (mode < WRAP_RANDOM || mode > WRAP_TORCH_IN_PLACE) {
        PyErr_SetString(PyExc_ValueError, "Wrapper: unknown mode");
        return NULL;
    }
    WrapperObject *self = (WrapperObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    PyObject *fields[7] = {fallback, original, memo, module_label, class_label, global_instance,
                           skip_type};
    for (int i = 0; i < 7; i++)
        Py_INCREF(fields[i]);
    self->fallback = fallback;
    self->original = original;
    self->memo = memo;
    self->module_label = module_label;
    self->class_label = class_label;
    self->global_instance = global_instance;
    self->skip_type = skip_type;
    self->dict = NULL;
    self->vectorcall = Wrapper_vectorcall;
    self->mode = mode;
    return (PyObject *)self;
}

static int
Wrapper_traverse(WrapperObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    Py_VISIT(self->original);
    Py_VISIT(self->memo);
    Py_VISIT(self->module_label);
    Py_VISIT(self->class_label);
    Py_VISIT(self->global_instance);
    Py_VISIT(self->skip_type);
    Py_VISIT(self->dict);
    for (int k = 0; k < FAST_SLOTS; k++) {
        FastEntry *f = &self->fast[k];
        PyObject *refs[7] = {f->frame, f->self, f->session, f->stack, f->ex, f->entry, f->site};
        for (int i = 0; i < 7; i++)
            Py_VISIT(refs[i]);
        for (int i = 0; i < FAST_ARGS; i++)
            Py_VISIT(f->args[i]);
    }
    return 0;
}

static int
Wrapper_clear(WrapperObject *self)
{
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->original);
    Py_CLEAR(self->memo);
    Py_CLEAR(self->module_label);
    Py_CLEAR(self->class_label);
    Py_CLEAR(self->global_instance);
    Py_CLEAR(self->skip_type);
    Py_CLEAR(self->dict);
    forget(self);
    return 0;
}

static void
Wrapper_dealloc(WrapperObject *self)
{
    PyObject_GC_UnTrack(self);
    Wrapper_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* a function-like descriptor: bound to an instance, itself on the class */
static PyObject *
Wrapper_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyMemberDef Wrapper_members[] = {
    {"fallback", T_OBJECT, offsetof(WrapperObject, fallback), READONLY, "the Python wrapper"},
    {"__dictoffset__", T_PYSSIZET, offsetof(WrapperObject, dict), READONLY},
    {NULL},
};

static PyGetSetDef Wrapper_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict},
    {NULL},
};

PyTypeObject WrapperType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rotalumis.intercept._accel.Wrapper",
    .tp_basicsize = sizeof(WrapperObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "An intercepting wrapper with a compiled common case (see _make_wrapper).",
    .tp_new = Wrapper_new,
    .tp_traverse = (traverseproc)Wrapper_traverse,
    .tp_clear = (inquiry)Wrapper_clear,
    .tp_dealloc = (destructor)Wrapper_dealloc,
    .tp_vectorcall_offset = offsetof(WrapperObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = Wrapper_get,
    .tp_dictoffset = offsetof(WrapperObject, dict),
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_setattro = PyObject_GenericSetAttr,
    .tp_members = Wrapper_members,
    .tp_getset = Wrapper_getset,
};

PyObject *
configure_torch(PyObject *module, PyObject *args)
{
    PyObject *default_dtype, *strided, *size_type, *fill;
    if (!C.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure_torch: configure() first");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOO!O", &default_dtype, &strided, &PyType_Type, &size_type,
                          &fill))
        return NULL;
    C.str_layout = PyUnicode_InternFromString("layout");
    C.str_dtype = PyUnicode_InternFromString("dtype");
    C.str_shape = PyUnicode_InternFromString("shape");
    C.str_fill_ = PyUnicode_InternFromString("fill_");
    if (!C.str_layout || !C.str_dtype || !C.str_shape || !C.str_fill_)
        return NULL;
    Py_INCREF(default_dtype);
    Py_INCREF(strided);
    Py_INCREF(size_type);
    Py_INCREF(fill);
    C.default_dtype = default_dtype;
    C.strided = strided;
    C.size_type = (PyTypeObject *)size_type;
    C.fill = fill;
    C.torch_ready = 1;
    Py_RETURN_NONE;
}

/* A borrowed context variable value (the variables have defaults); NULL on error. */

/* ------------------------------------------------------------ torch wrappers --- */

/* The torch wrappers of _torch_patch (_make_wrapper and _site) for calls whose arguments
 * after the tensor (in-place methods) are plain numbers, all int or all float, and sizes
 * (tuples of ints), without keywords: the site memo's key (_torch_sites.memo_key) is
 *   function:  (torch.get_default_dtype(), kind, *args)
 *   in place:  (self.dtype, self.shape, kind, *args[1:])   (strided tensors only)
 * with kind int, float or None (no number). A hit is (dist, convert, shape); an in-place
 * method's convert is None: the value is written into the tensor (fill_, or _torch_sites.fill
 * for a tensor value). Returns a new reference to the result, Py_None (borrowed: not
 * recording, run the original), MISS (the Python wrapper), or NULL on error. */
static PyObject *
torch_vectorcall(WrapperObject *w, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t first = w->mode == WRAP_TORCH_IN_PLACE ? 1 : 0;
    if (nargs < first)
        return MISS;
    PyObject *kind = Py_None;
    for (Py_ssize_t i = first; i < nargs; i++) {
        PyObject *a = args[i];
        PyObject *t = (PyObject *)Py_TYPE(a);
        if (t == (PyObject *)&PyFloat_Type || t == (PyObject *)&PyLong_Type) {
            if (kind == Py_None)
                kind = t;
            else if (kind != t)
                return MISS;
        }
        else if (t == (PyObject *)&PyTuple_Type || t == (PyObject *)C.size_type) {
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(a); j++)
                if (!PyLong_CheckExact(PyTuple_GET_ITEM(a, j)))
                    return MISS;
        }
        else
            return MISS;
    }
    PyObject *session = recording();
    if (session == NULL || session == MISS || session == Py_None)
        return session;
    PyObject *self = first ? args[0] : NULL;
    PyObject *key = PyTuple_New(nargs - first + (first ? 3 : 2));
    if (key == NULL)
        return NULL;
    Py_ssize_t k = 0;
    if (first) {
        PyObject *layout = PyObject_GetAttr(self, C.str_layout);
        if (layout == NULL) {
            PyErr_Clear(); /* the Python wrapper decides */
            Py_DECREF(key);
            return MISS;
        }
        Py_DECREF(layout); /* torch.strided lives in torch: compared by identity */
        if (layout != C.strided) {
            Py_DECREF(key);
            return MISS;
        }
        PyObject *dtype = PyObject_GetAttr(self, C.str_dtype);
        if (dtype == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, k++, dtype);
        PyObject *shape = PyObject_GetAttr(self, C.str_shape);
        if (shape == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, k++, shape);
    }
    else {
        PyObject *dtype = PyObject_CallNoArgs(C.default_dtype);
        if (dtype == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, k++, dtype);
    }
    Py_INCREF(kind);
    PyTuple_SET_ITEM(key, k++, kind);
    for (Py_ssize_t i = first; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(key, k++, args[i]);
    }
    PyObject *site = PyDict_GetItemWithError(w->memo, key);
    Py_DECREF(key);
    if (site == NULL)
        return PyErr_Occurred() ? NULL : MISS;
    if (!PyTuple_CheckExact(site) || PyTuple_GET_SIZE(site) != 3)
        return MISS;
    PyObject *dist = PyTuple_GET_ITEM(site, 0), *convert = PyTuple_GET_ITEM(site, 1);
    PyObject *shape = PyTuple_GET_ITEM(site, 2);
    if (dist == Py_None || !PyTuple_CheckExact(shape) || (first != 0) != (convert == Py_None))
        return MISS;
    PyObject *label = w->module_label;
    if (PyTuple_GET_SIZE(shape) != 0) { /* shaped_label's cache; a miss: the Python path */
        PyObject *skey = PyTuple_Pack(2, label, shape);
        if (skey == NULL)
            return NULL;
        label = PyDict_GetItemWithError(C.shaped, skey);
        Py_DECREF(skey);
        if (label == NULL)
            return PyErr_Occurred() ? NULL : MISS;
    }
    PyFrameObject *frame = PyEval_GetFrame();
    if (frame == NULL)
        return MISS;
    Py_INCREF(site); /* keeps dist, convert and the label's key alive while the draw runs */
    Py_INCREF(label);
    PyObject *value = record_core(session, label, dist, (PyObject *)frame, NULL);
    Py_DECREF(label);
    PyObject *out = NULL;
    if (value == MISS)
        out = MISS;
    else if (value != NULL) {
        if (!first)
            out = PyObject_CallOneArg(convert, value);
        else if (PyFloat_CheckExact(value) || PyLong_CheckExact(value))
            out = PyObject_CallMethodOneArg(self, C.str_fill_, value);
        else
            out = PyObject_CallFunctionObjArgs(C.fill, self, value, shape, NULL);
        Py_DECREF(value);
    }
    Py_DECREF(site);
    return out;
}
