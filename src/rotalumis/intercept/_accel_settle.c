/* Scalar draws and Trace.settle, compiled (see _accel.c). */
#include "_accel.h"

/* -------------------------------------------------------------------- draws --- */

PyObject *
configure_draws(PyObject *module, PyObject *args)
{
    PyObject *uniform, *categorical, *rng;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyType_Type, &uniform, &PyType_Type, &categorical,
                          &PyType_Type, &rng))
        return NULL;
    C.uniform_type = (PyTypeObject *)uniform;
    C.categorical_type = (PyTypeObject *)categorical;
    C.rng_type = (PyTypeObject *)rng;
    if (slot_offset(C.uniform_type, "_low", &C.u_low) < 0 ||
        slot_offset(C.uniform_type, "_high", &C.u_high) < 0 ||
        slot_offset(C.categorical_type, "_cum", &C.c_cum) < 0 ||
        slot_offset(C.categorical_type, "_weights", &C.c_weights) < 0 ||
        slot_offset(C.rng_type, "py", &C.r_py) < 0)
        return NULL;
    C.str_random = PyUnicode_InternFromString("random");
    if (C.str_random == NULL)
        return NULL;
    Py_INCREF(uniform);
    Py_INCREF(categorical);
    Py_INCREF(rng);
    C.draws_ready = 1;
    Py_RETURN_NONE;
}

/* bisect.bisect_right(a, x) and bisect.bisect_left(a, x) on a list, with the same
 * comparisons; -1 on error. */
static Py_ssize_t
bisect(PyObject *a, PyObject *x, int right)
{
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(a);
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        PyObject *item = PyList_GET_ITEM(a, mid);
        Py_INCREF(item);
        int less = right ? PyObject_RichCompareBool(x, item, Py_LT)
                         : PyObject_RichCompareBool(item, x, Py_LT);
        Py_DECREF(item);
        if (less < 0)
            return -1;
        if (right ? less : !less)
            hi = mid;
        else
            lo = mid + 1;
        if (hi > PyList_GET_SIZE(a)) /* a comparison changed the list */
            hi = PyList_GET_SIZE(a);
    }
    return lo;
}

/* Whether draw_scalar(dist, rng) draws (does not return MISS). */
int
scalar_drawable(PyObject *dist, PyObject *rng)
{
    if (!C.draws_ready || Py_TYPE(rng) != C.rng_type || SLOT(rng, C.r_py) == NULL)
        return 0;
    if (Py_TYPE(dist) == C.uniform_type) {
        PyObject *lo = SLOT(dist, C.u_low), *hi = SLOT(dist, C.u_high);
        return lo != NULL && hi != NULL && PyFloat_CheckExact(lo) && PyFloat_CheckExact(hi);
    }
    if (Py_TYPE(dist) == C.categorical_type) {
        PyObject *cum = SLOT(dist, C.c_cum), *weights = SLOT(dist, C.c_weights);
        return cum != NULL && weights != NULL && weights != Py_None && PyList_CheckExact(cum) &&
               PyList_GET_SIZE(cum) != 0;
    }
    return 0;
}

/* py.random() for the engine's random.Random (core.rng._EngineRandom, whose random is
 * _random.Random's own C method): when the class's attribute is a C method without
 * arguments (or, on a plain random.Random, interception's Wrapper around one, which passes
 * the draw's call to it: the session is busy) and no instance attribute shadows it, the
 * method is called here directly: the same call without the lookup. */
#if PY_VERSION_HEX < 0x030C0000
/* What engine_random found last (one engine stream draws thousands of times in a row):
 * the instance, its type's version tag and its dict with the dict's version, which
 * together fix every input of the lookup below (a type's version tag changes with any
 * change of it or its bases, a dict's version with any change of it, and neither is ever
 * given to another type or dict), and the C method that lookup gave. Identities only. */
static struct {
    PyObject *py, *dict;
    unsigned int type_tag;
    uint64_t dict_version;
    PyCFunction meth;
} last_random;
#endif

static PyObject *
engine_random(PyObject *py)
{
#if PY_VERSION_HEX < 0x030C0000
    PyTypeObject *type = Py_TYPE(py);
    PyObject **dictptr = NULL;
    if (py == last_random.py && (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) &&
        type->tp_version_tag == last_random.type_tag &&
        (dictptr = _PyObject_GetDictPtr(py)) != NULL && *dictptr == last_random.dict &&
        ((PyDictObject *)*dictptr)->ma_version_tag == last_random.dict_version)
        return last_random.meth(py, NULL);
    last_random.py = NULL;
#endif
    PyObject *attr = _PyType_Lookup(Py_TYPE(py), C.str_random); /* borrowed */
    if (attr != NULL && Py_TYPE(attr) == &WrapperType)
        attr = ((WrapperObject *)attr)->original;
    if (attr != NULL && Py_IS_TYPE(attr, &PyMethodDescr_Type)) {
        PyMethodDescrObject *d = (PyMethodDescrObject *)attr;
        PyObject **dict = _PyObject_GetDictPtr(py);
        if (d->d_method->ml_flags == METH_NOARGS && PyObject_TypeCheck(py, PyDescr_TYPE(d)) &&
            (dict == NULL || *dict == NULL ||
             (PyDict_CheckExact(*dict) && PyDict_GetItemWithError(*dict, C.str_random) == NULL &&
              !PyErr_Occurred()))) {
#if PY_VERSION_HEX < 0x030C0000
            if (dict != NULL && *dict != NULL &&
                (Py_TYPE(py)->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
                last_random.py = py;
                last_random.dict = *dict;
                last_random.type_tag = Py_TYPE(py)->tp_version_tag;
                last_random.dict_version = ((PyDictObject *)*dict)->ma_version_tag;
                last_random.meth = d->d_method->ml_meth;
            }
#endif
            return d->d_method->ml_meth(py, NULL);
        }
        if (PyErr_Occurred())
            return NULL;
    }
    return PyObject_CallMethodNoArgs(py, C.str_random);
}

/* dist.sample(rng) of a scalar Uniform or Categorical (whose cumulative weights exist), the
 * same operations on the same uniform rng.py.random() as their Python sample: a new
 * reference, MISS (call dist.sample), or NULL on error. A value returned here is a
 * scalar site's (is_scalar holds). */
PyObject *
draw_scalar(PyObject *dist, PyObject *rng)
{
    if (!C.draws_ready || Py_TYPE(rng) != C.rng_type)
        return MISS;
    PyObject *py = SLOT(rng, C.r_py);
    if (py == NULL)
        return MISS;
    if (Py_TYPE(dist) == C.uniform_type) {
        PyObject *lo = SLOT(dist, C.u_low), *hi = SLOT(dist, C.u_high);
        if (lo == NULL || hi == NULL || !PyFloat_CheckExact(lo) || !PyFloat_CheckExact(hi))
            return MISS;
        double low = PyFloat_AS_DOUBLE(lo), width = PyFloat_AS_DOUBLE(hi) - low;
        PyObject *u = engine_random(py);
        if (u == NULL)
            return NULL;
        if (!PyFloat_CheckExact(u)) {
            Py_DECREF(u);
            PyErr_SetString(PyExc_TypeError, "the engine's random() returned a non-float");
            return NULL;
        }
        if (low == 0.0 && width == 1.0)
            return u; /* 0.0 + 1.0 * u is u itself (u >= 0) */
        /* lo + (hi - lo) * u, rounded after each operation as Python does (volatile: no
         * fused multiply-add) */
        volatile double scaled = width * PyFloat_AS_DOUBLE(u);
        Py_DECREF(u);
        return PyFloat_FromDouble(low + scaled);
    }
    if (Py_TYPE(dist) == C.categorical_type) {
        PyObject *cum = SLOT(dist, C.c_cum), *weights = SLOT(dist, C.c_weights);
        if (cum == NULL || weights == NULL || weights == Py_None || !PyList_CheckExact(cum) ||
            PyList_GET_SIZE(cum) == 0)
            return MISS;
        Py_INCREF(cum);
        PyObject *total = PyList_GET_ITEM(cum, PyList_GET_SIZE(cum) - 1);
        Py_INCREF(total);
        PyObject *out = NULL, *x = NULL;
        PyObject *u = engine_random(py);
        if (u == NULL)
            goto done;
        x = PyNumber_Multiply(u, total);
        Py_DECREF(u);
        if (x == NULL)
            goto done;
        Py_ssize_t k = bisect(cum, x, 1);
        if (k >= PyList_GET_SIZE(cum)) /* u * total rounded up to total */
            k = bisect(cum, total, 0);
        if (k >= 0)
            out = PyLong_FromSsize_t(k);
    done:
        Py_XDECREF(x);
        Py_DECREF(total);
        Py_DECREF(cum);
        return out;
    }
    return MISS;
}

/* record_core once the call site is known: send_sample on the plain prior-recording stack. */

/* ------------------------------------------------------------------- settle --- */

/* Message's slots in the order of m_slots, and the value each gets in Trace.settle. */
static const char *const MESSAGE_SLOTS[12] = {
    "kind", "name", "address", "base_address", "distribution", "value",
    "control", "observed", "log_prob", "stop", "proposal_log_prob", "meta",
};

PyObject *
configure_settle(PyObject *module, PyObject *args)
{
    PyObject *message_type;
    if (!C.ready) {
        PyErr_SetString(PyExc_RuntimeError, "configure_settle: configure() first");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!", &PyType_Type, &message_type))
        return NULL;
    PyTypeObject *mt = (PyTypeObject *)message_type;
    Py_ssize_t offsets[12];
    for (int i = 0; i < 12; i++)
        if (slot_offset(mt, MESSAGE_SLOTS[i], &offsets[i]) < 0)
            return NULL;
    if (mt->tp_dictoffset != 0 || mt->tp_itemsize != 0) {
        PyErr_SetString(PyExc_TypeError, "configure_settle: Message must have __slots__ only");
        return NULL;
    }
    if (slot_offset(C.trace_type, "_variables", &C.tr_variables) < 0 ||
        slot_offset(C.trace_type, "_log_prior", &C.tr_log_prior) < 0 ||
        slot_offset(C.trace_type, "_by_address", &C.tr_by_address) < 0)
        return NULL;
    C.str_log_prob_sum = PyUnicode_InternFromString("log_prob_sum");
    C.str_kind_sample = PyUnicode_InternFromString("sample");
    if (C.str_log_prob_sum == NULL || C.str_kind_sample == NULL)
        return NULL;
    memcpy(C.m_slots, offsets, sizeof(offsets));
    Py_INCREF(message_type);
    C.message_type = mt;
    C.settle_ready = 1;
    Py_RETURN_NONE;
}

/* One record made into its Message, appended to variables; *log_prior += its log_prob. */
static int
settle_one(PyObject *address, PyObject *base, PyObject *dist, PyObject *value,
           PyObject *control, PyObject *variables, PyObject **log_prior)
{
    PyObject *msg = C.message_type->tp_alloc(C.message_type, 0);
    if (msg == NULL)
        return -1;
    PyObject *fields[12] = {C.str_kind_sample, Py_None, address, base, dist, value, control,
                            Py_False, Py_None, Py_False, Py_None, Py_None};
    for (int j = 0; j < 12; j++) {
        Py_INCREF(fields[j]);
        SLOT(msg, C.m_slots[j]) = fields[j];
    }
    PyObject *lp = PyObject_CallMethodOneArg(dist, C.str_log_prob_sum, value);
    if (lp == NULL) {
        Py_DECREF(msg);
        return -1;
    }
    Py_INCREF(lp);
    Py_SETREF(SLOT(msg, C.m_slots[8]), lp);
    PyObject *sum = PyNumber_InPlaceAdd(*log_prior, lp);
    Py_DECREF(lp);
    if (sum == NULL) {
        Py_DECREF(msg);
        return -1;
    }
    Py_SETREF(*log_prior, sum);
    int appended = PyList_Append(variables, msg);
    Py_DECREF(msg);
    return appended;
}

/* Trace.settle (core/trace.py) for a Trace whose slots hold what __init__ put there (lists,
 * records of 5): each pending record (address, base, dist, value, control) becomes
 * Message("sample", None, address, base, dist, value, control) with log_prob =
 * dist.log_prob_sum(value), appended in order, log_prior += log_prob in the same order.
 * Returns True when done, False when the Python settle must run (nothing was changed). */
PyObject *
settle(PyObject *module, PyObject *trace)
{
    if (!C.settle_ready || Py_TYPE(trace) != C.trace_type)
        Py_RETURN_FALSE;
    PyObject *pending = SLOT(trace, C.tr_pending), *variables = SLOT(trace, C.tr_variables);
    PyObject *log_prior = SLOT(trace, C.tr_log_prior);
    if (pending == NULL || variables == NULL || log_prior == NULL ||
        !PyList_CheckExact(pending) || !PyList_CheckExact(variables))
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pending); i++) {
        PyObject *r = PyList_GET_ITEM(pending, i);
        if (!(PyTuple_CheckExact(r) && PyTuple_GET_SIZE(r) == 5) && Py_TYPE(r) != &BatchType)
            Py_RETURN_FALSE;
    }
    PyObject *fresh = PyList_New(0);
    if (fresh == NULL)
        return NULL;
    Py_INCREF(pending); /* self.pending = [] first, as settle does */
    Py_SETREF(SLOT(trace, C.tr_pending), fresh);
    Py_INCREF(variables);
    Py_INCREF(log_prior);
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pending); i++) {
        PyObject *r = PyList_GET_ITEM(pending, i);
        if (Py_TYPE(r) != &BatchType) {
            if (settle_one(PyTuple_GET_ITEM(r, 0), PyTuple_GET_ITEM(r, 1), PyTuple_GET_ITEM(r, 2),
                           PyTuple_GET_ITEM(r, 3), PyTuple_GET_ITEM(r, 4), variables,
                           &log_prior) < 0)
                goto done;
            continue;
        }
        Py_INCREF(r); /* a batch (_accel_lazy.c): its records in order */
        for (Py_ssize_t k = 0; k < batch_size(r); k++) {
            PyObject *base, *dist, *value;
            PyObject *address = batch_record(r, k, &base, &dist, &value);
            if (address == NULL) {
                Py_DECREF(r);
                goto done;
            }
            int ok = value == NULL || /* a draw that raised: no record */
                     settle_one(address, base, dist, value, Py_True, variables, &log_prior) == 0;
            Py_DECREF(address);
            if (!ok) {
                Py_DECREF(r);
                goto done;
            }
        }
        Py_DECREF(r);
    }
    Py_INCREF(log_prior);
    Py_SETREF(SLOT(trace, C.tr_log_prior), log_prior);
    Py_INCREF(Py_None);
    Py_XSETREF(SLOT(trace, C.tr_by_address), Py_None);
    result = Py_True;
    Py_INCREF(result);
done:
    Py_DECREF(log_prior);
    Py_DECREF(variables);
    Py_DECREF(pending);
    return result;
}
