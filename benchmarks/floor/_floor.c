/* The floor of an intercepting wrapper written in C (benchmarks/bench_intercept_floor.py):
 * Floor(draw, level, var, memo, out) called with no arguments does, by level,
 *   0: draw()                                       (a C callable calling the original)
 *   1: + read a context variable (is a model running?)
 *   2: + look the calling frame up in a dict (the call site's address)
 *   3: + append (address, value) to a list (the recorded site)
 *   4: + count the visit: a per-address counter in a dict, its integer incremented
 *   5: "lazy addressing": 1 and 2 (the frame's dict value is a small integer, the id of the
 *      call site's base address), then append (id, value) to preallocated C arrays of
 *      ints and doubles and check a running total against a limit; no tuple, no count
 *      (the instance numbers would be made from the ids' order when the trace is read)
 *   6: 5 + what a real site adds around it: two more context-variable reads (the handler
 *      stack, the execution), the re-entrancy flag set and reset around the draw
 * and returns draw()'s value. Level 4 is less than what recording an addressed site needs
 * (no distribution, no instance address, no handler check, no limit), so its cost is a
 * lower bound for any design that records one addressed trace entry per draw. Not part of
 * rotalumis: built by the benchmark in a temporary folder. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

typedef struct {
    PyObject_HEAD
    PyObject *draw, *var, *memo, *out, *counts, *var2, *var3, *busy;
    int level;
    long *ids;
    double *values;
    Py_ssize_t used, size, limit;
    vectorcallfunc vectorcall;
} FloorObject;

static int
grow(FloorObject *f)
{
    Py_ssize_t size = f->size ? 2 * f->size : 4096;
    long *ids = PyMem_Realloc(f->ids, size * sizeof(long));
    if (ids == NULL)
        return -1;
    f->ids = ids;
    double *values = PyMem_Realloc(f->values, size * sizeof(double));
    if (values == NULL)
        return -1;
    f->values = values;
    f->size = size;
    return 0;
}

static PyObject *
lazy(FloorObject *f)
{
    PyObject *v;
    if (PyContextVar_Get(f->var, NULL, &v) < 0)
        return NULL;
    Py_DECREF(v);
    if (f->level >= 6) {
        if (PyContextVar_Get(f->var2, NULL, &v) < 0)
            return NULL;
        Py_DECREF(v);
        if (PyContextVar_Get(f->var3, NULL, &v) < 0)
            return NULL;
        Py_DECREF(v);
        if (f->busy != Py_False)
            return PyObject_CallNoArgs(f->draw);
    }
    PyObject *frame = (PyObject *)PyEval_GetFrame();
    PyObject *id = PyDict_GetItemWithError(f->memo, frame);
    if (id == NULL) {
        if (PyErr_Occurred())
            return NULL;
        id = PyLong_FromLong(PyDict_GET_SIZE(f->memo));
        if (id == NULL || PyDict_SetItem(f->memo, frame, id) < 0)
            return NULL;
        Py_DECREF(id);
    }
    if (f->used >= f->limit) {
        PyErr_SetString(PyExc_RuntimeError, "limit");
        return NULL;
    }
    if (f->used == f->size && grow(f) < 0)
        return PyErr_NoMemory();
    if (f->level >= 6) {
        Py_INCREF(Py_True);
        Py_SETREF(f->busy, Py_True);
    }
    PyObject *value = PyObject_CallNoArgs(f->draw);
    if (f->level >= 6) {
        Py_INCREF(Py_False);
        Py_SETREF(f->busy, Py_False);
    }
    if (value == NULL)
        return NULL;
    double x = PyFloat_AsDouble(value);
    if (x == -1.0 && PyErr_Occurred()) {
        Py_DECREF(value);
        return NULL;
    }
    f->ids[f->used] = PyLong_AsLong(id);
    f->values[f->used] = x;
    f->used++;
    return value;
}

static PyObject *
Floor_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    FloorObject *f = (FloorObject *)op;
    PyObject *address = Py_None;
    if (f->level >= 5)
        return lazy(f);
    if (f->level >= 1) {
        PyObject *v;
        if (PyContextVar_Get(f->var, NULL, &v) < 0)
            return NULL;
        Py_DECREF(v);
    }
    if (f->level >= 2) {
        PyObject *frame = (PyObject *)PyEval_GetFrame();
        address = PyDict_GetItemWithError(f->memo, frame);
        if (address == NULL) {
            if (PyErr_Occurred())
                return NULL;
            address = PyUnicode_FromString("forward:1/random.random");
            if (address == NULL || PyDict_SetItem(f->memo, frame, address) < 0)
                return NULL;
            Py_DECREF(address);
        }
    }
    PyObject *value = PyObject_CallNoArgs(f->draw);
    if (value == NULL || f->level < 3)
        return value;
    PyObject *rec = PyTuple_Pack(2, address, value);
    if (rec == NULL || PyList_Append(f->out, rec) < 0) {
        Py_XDECREF(rec);
        Py_DECREF(value);
        return NULL;
    }
    Py_DECREF(rec);
    if (f->level >= 4) {
        PyObject *n = PyDict_GetItemWithError(f->counts, address);
        long k = n == NULL ? 0 : PyLong_AsLong(n);
        PyObject *next = PyLong_FromLong(k + 1);
        if (next == NULL || PyDict_SetItem(f->counts, address, next) < 0) {
            Py_XDECREF(next);
            Py_DECREF(value);
            return NULL;
        }
        Py_DECREF(next);
    }
    return value;
}

static PyObject *
Floor_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *draw, *var, *memo, *out;
    int level;
    if (!PyArg_ParseTuple(args, "OiOO!O!", &draw, &level, &var, &PyDict_Type, &memo,
                          &PyList_Type, &out))
        return NULL;
    FloorObject *self = (FloorObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->counts = PyDict_New();
    if (self->counts == NULL)
        return NULL;
    Py_INCREF(draw);
    Py_INCREF(var);
    Py_INCREF(memo);
    Py_INCREF(out);
    self->draw = draw;
    self->var = var;
    self->memo = memo;
    self->out = out;
    self->level = level;
    self->var2 = PyContextVar_New("stack", Py_None);
    self->var3 = PyContextVar_New("execution", Py_None);
    if (self->var2 == NULL || self->var3 == NULL)
        return NULL;
    Py_INCREF(Py_False);
    self->busy = Py_False;
    self->limit = PY_SSIZE_T_MAX;
    self->vectorcall = Floor_vectorcall;
    return (PyObject *)self;
}

static void
Floor_dealloc(FloorObject *self)
{
    Py_XDECREF(self->draw);
    Py_XDECREF(self->var);
    Py_XDECREF(self->memo);
    Py_XDECREF(self->out);
    Py_XDECREF(self->counts);
    Py_XDECREF(self->var2);
    Py_XDECREF(self->var3);
    Py_XDECREF(self->busy);
    PyMem_Free(self->ids);
    PyMem_Free(self->values);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Floor_reset(FloorObject *self, PyObject *unused)
{
    self->used = 0; /* the buffer is kept */
    Py_RETURN_NONE;
}

static PyMethodDef Floor_methods[] = {
    {"reset", (PyCFunction)Floor_reset, METH_NOARGS, "empty the lazy buffer"},
    {NULL},
};

static PyTypeObject FloorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_floor.Floor",
    .tp_basicsize = sizeof(FloorObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = Floor_new,
    .tp_dealloc = (destructor)Floor_dealloc,
    .tp_vectorcall_offset = offsetof(FloorObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_methods = Floor_methods,
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, .m_name = "_floor", .m_size = -1};

PyMODINIT_FUNC
PyInit__floor(void)
{
    if (PyType_Ready(&FloorType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&FloorType);
    if (PyModule_AddObject(m, "Floor", (PyObject *)&FloorType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
