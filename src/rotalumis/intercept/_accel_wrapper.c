/* The compiled wrappers (see _accel.c): random / numpy.random and torch. */
#include "_accel.h"

static PyObject *torch_vectorcall(WrapperObject *w, PyObject *const *args, Py_ssize_t nargs);

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
    PyObject *session = recording();
    if (session == NULL)
        return NULL;
    if (session == MISS)
        goto fallback;
    PyObject *self = args[0];
    if (session == Py_None)
        goto original;
    if (w->skip_type != Py_None) {
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
    PyObject *value = record_core(session, label, dist, (PyObject *)frame);
    if (value == MISS) {
        Py_DECREF(site);
        goto fallback;
    }
    PyObject *out = value == NULL ? NULL : PyObject_CallOneArg(convert, value);
    Py_XDECREF(value);
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
    PyObject *value = record_core(session, label, dist, (PyObject *)frame);
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
