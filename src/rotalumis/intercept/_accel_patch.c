/* Installing and removing the patches, compiled (see _patching.py, whose Python code stays
 * the reference and the fallback): every model execution that intercepts installs ~110
 * class attributes and ~120 module aliases on entry and puts them back on exit, which in
 * Python costs ~100-200 us per execution (tens of ns per draw of a 2,000-draw simulator). */
#include "_accel.h"

/* set_class_attrs(cls, names, values, expected, missing): cls.__dict__[names[i]] =
 * values[i] for each i (removed when values[i] is missing); expected (a tuple, or None:
 * always) gives the value each attribute must still have (missing: absent) for it to be
 * replaced. Then PyType_Modified(cls), as
 * type.__setattr__ does after each (the names are never dunders). Returns (the previous
 * values, missing where absent; the indices left alone). */
PyObject *
set_class_attrs(PyObject *module, PyObject *args)
{
    PyObject *cls, *names, *values, *expected, *missing;
    if (!PyArg_ParseTuple(args, "O!O!O!OO", &PyType_Type, &cls, &PyTuple_Type, &names,
                          &PyTuple_Type, &values, &expected, &missing))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (PyTuple_GET_SIZE(values) != n ||
        (expected != Py_None && (!PyTuple_Check(expected) || PyTuple_GET_SIZE(expected) != n))) {
        PyErr_SetString(PyExc_ValueError, "set_class_attrs: tuples of one length expected");
        return NULL;
    }
    PyObject *dict = ((PyTypeObject *)cls)->tp_dict;
    if (dict == NULL || !PyDict_Check(dict)) {
        PyErr_SetString(PyExc_TypeError, "set_class_attrs: the class has no namespace dict");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(name) ||
            (PyUnicode_GET_LENGTH(name) > 4 && PyUnicode_READ_CHAR(name, 0) == '_' &&
             PyUnicode_READ_CHAR(name, 1) == '_')) {
            PyErr_SetString(PyExc_ValueError, "set_class_attrs: plain attribute names only");
            return NULL;
        }
    }
    PyObject *previous = PyTuple_New(n), *skipped = PyList_New(0);
    if (previous == NULL || skipped == NULL)
        goto error;
    Py_INCREF(cls);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i), *value = PyTuple_GET_ITEM(values, i);
        PyObject *now = PyDict_GetItemWithError(dict, name);
        if (now == NULL && PyErr_Occurred())
            goto error_cls;
        if (now == NULL)
            now = missing;
        Py_INCREF(now);
        PyTuple_SET_ITEM(previous, i, now);
        if (expected != Py_None && now != PyTuple_GET_ITEM(expected, i)) {
            PyObject *index = PyLong_FromSsize_t(i);
            int r = index == NULL ? -1 : PyList_Append(skipped, index);
            Py_XDECREF(index);
            if (r < 0)
                goto error_cls;
            continue;
        }
        int r;
        if (value == missing)
            r = now == missing ? 0 : PyDict_DelItem(dict, name);
        else
            r = PyDict_SetItem(dict, name, value);
        if (r < 0)
            goto error_cls;
    }
    PyType_Modified((PyTypeObject *)cls);
    Py_DECREF(cls);
    return Py_BuildValue("(NN)", previous, skipped);
error_cls:
    PyType_Modified((PyTypeObject *)cls);
    Py_DECREF(cls);
error:
    Py_XDECREF(previous);
    Py_XDECREF(skipped);
    return NULL;
}

/* replace_items(entries): for each (namespace, key, old, new) of the list, where
 * namespace.get(key) is old: namespace[key] = new (AliasPatch.apply / restore). */
PyObject *
replace_items(PyObject *module, PyObject *entries)
{
    if (!PyList_Check(entries)) {
        PyErr_SetString(PyExc_TypeError, "replace_items: a list expected");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(entries); i++) {
        PyObject *e = PyList_GET_ITEM(entries, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 4 || !PyDict_Check(PyTuple_GET_ITEM(e, 0))) {
            PyErr_SetString(PyExc_TypeError, "replace_items: (dict, key, old, new) entries");
            return NULL;
        }
        PyObject *ns = PyTuple_GET_ITEM(e, 0), *key = PyTuple_GET_ITEM(e, 1);
        Py_INCREF(e);
        PyObject *now = PyDict_GetItemWithError(ns, key);
        int r = 0;
        if (now == NULL && PyErr_Occurred())
            r = -1;
        else if (now != NULL && now == PyTuple_GET_ITEM(e, 2))
            r = PyDict_SetItem(ns, key, PyTuple_GET_ITEM(e, 3));
        Py_DECREF(e);
        if (r < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}
