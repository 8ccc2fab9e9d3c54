/* Call sites of the compiled record (see _accel.c): the session's memos and the cache of
 * stack-walk chains. */
#include "_accel.h"

void
store_clear(SiteStore *st)
{
    Py_CLEAR(st->key);
    Py_CLEAR(st->parent);
}

/* _call_site's store: sites[key] = (parent, parent.f_lasti, entry, base, frame). */
int
store_site(PyObject *session, SiteStore *st, PyObject *entry, PyObject *base, PyObject *frame)
{
    if (st->key == NULL)
        return 0;
    PyObject *sites = SLOT(session, C.s_sites);
    PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)st->parent);
    int flags = code->co_flags;
    Py_DECREF(code);
    if (flags & C.suspendable)
        return 0;
    if (PyDict_GET_SIZE(sites) >= C.sites_limit)
        PyDict_Clear(sites);
    PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti((PyFrameObject *)st->parent));
    if (lasti == NULL)
        return -1;
    PyObject *value = PyTuple_Pack(5, st->parent, lasti, entry, base, frame);
    Py_DECREF(lasti);
    if (value == NULL)
        return -1;
    int r = PyDict_SetItem(sites, st->key, value);
    Py_DECREF(value);
    return r;
}

/* A cache in front of site_address's (ADDRESSES): the chain of (code, instruction) pairs of
 * a stack walk and the label, by identity, mapped to what ADDRESSES gave for the key made of
 * them (a new deep call path otherwise builds and hashes a tuple of 2 integers per frame on
 * every draw). Filled from ADDRESSES hits only: ADDRESSES's value for a key never changes
 * (site_address is a function of it) and the code objects of its keys are never freed
 * (core.address.KEPT), so an entry stays right. Direct-mapped; an entry holds its label and
 * address. */
#define CHAIN_DEPTH 256
#define CHAIN_SLOTS 4096

typedef struct {
    void *code;
    int lasti;
} Pair;

typedef struct {
    Py_hash_t hash;
    PyObject *label, *base; /* strong references; base may be None */
    Py_ssize_t n;
    Pair pairs[];
} Chain;

static Chain *chains[CHAIN_SLOTS];

static Py_hash_t
chain_hash(PyObject *label, const Pair *pairs, Py_ssize_t n)
{
    Py_uhash_t h = (Py_uhash_t)(uintptr_t)label * 0x9E3779B97F4A7C15ULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ (Py_uhash_t)(uintptr_t)pairs[i].code) * 0x100000001B3ULL;
        h = (h ^ (Py_uhash_t)(unsigned int)pairs[i].lasti) * 0x100000001B3ULL;
        h ^= h >> 29;
    }
    return (Py_hash_t)(h & 0x7FFFFFFFFFFFFFFFULL);
}

static void
chain_store(Py_hash_t hash, PyObject *label, const Pair *pairs, Py_ssize_t n, PyObject *base)
{
    Chain *c = PyMem_Malloc(sizeof(Chain) + (size_t)n * sizeof(Pair));
    if (c == NULL)
        return; /* only a cache */
    c->hash = hash;
    Py_INCREF(label);
    Py_INCREF(base);
    c->label = label;
    c->base = base;
    c->n = n;
    memcpy(c->pairs, pairs, (size_t)n * sizeof(Pair));
    Chain **slot = &chains[hash & (CHAIN_SLOTS - 1)];
    Chain *old = *slot;
    *slot = c;
    if (old != NULL) {
        Py_DECREF(old->label);
        Py_DECREF(old->base);
        PyMem_Free(old);
    }
}

/* site_address's cache lookup: the key built by the same stack walk; borrowed (None: a
 * draw of the engine's own), MISS when not cached, NULL on error. */
static PyObject *
cached_address(PyObject *frame, PyObject *entry, PyObject *label)
{
    Pair pairs[CHAIN_DEPTH];
    Py_ssize_t n = 0;
    PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)frame);
    pairs[n].code = code;
    pairs[n++].lasti = PyFrame_GetLasti((PyFrameObject *)frame);
    if (entry != Py_None && (PyObject *)code != entry) {
        PyFrameObject *f = PyFrame_GetBack((PyFrameObject *)frame);
        while (f != NULL && n < C.max_depth) {
            PyCodeObject *fcode = PyFrame_GetCode(f);
            pairs[n].code = fcode;
            pairs[n++].lasti = PyFrame_GetLasti(f);
            int at_entry = (PyObject *)fcode == entry;
            Py_DECREF(fcode); /* the frame holds it while the walk runs */
            PyFrameObject *back = at_entry ? NULL : PyFrame_GetBack(f);
            Py_DECREF(f);
            f = back;
        }
        Py_XDECREF(f);
    }
    Py_DECREF(code);
    Py_hash_t hash = chain_hash(label, pairs, n);
    Chain *c = chains[hash & (CHAIN_SLOTS - 1)];
    if (c != NULL && c->hash == hash && c->label == label && c->n == n &&
        memcmp(c->pairs, pairs, (size_t)n * sizeof(Pair)) == 0)
        return c->base;
    /* the key of site_address: (label, id(code), lasti, ...) */
    PyObject *key = PyTuple_New(1 + 2 * n);
    if (key == NULL)
        return NULL;
    Py_INCREF(label);
    PyTuple_SET_ITEM(key, 0, label);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *id = PyLong_FromVoidPtr(pairs[i].code);
        PyObject *at = id == NULL ? NULL : PyLong_FromLong(pairs[i].lasti);
        if (at == NULL) {
            Py_XDECREF(id);
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, 1 + 2 * i, id);
        PyTuple_SET_ITEM(key, 2 + 2 * i, at);
    }
    PyObject *hit = PyDict_GetItemWithError(C.addresses, key);
    Py_DECREF(key);
    if (hit == NULL)
        return PyErr_Occurred() ? NULL : MISS;
    chain_store(hash, label, pairs, n, hit);
    return hit;
}

/* The call-site address of record/_call_site, borrowed: from Session.frames (the live
 * frame and instruction), else Session.sites (code, instruction and label, checked against
 * the live parent frame) where using it stores nothing, else site_address's cache (the
 * stack walk), whose store in Session.sites is left in *st for the commit. MISS when the
 * Python code must find it (a first walk, an engine's draw) or store something at once;
 * NULL on error. *live: 1 when it came from Session.frames, 2 from Session.sites (the
 * frame's code and instruction, and its parent frame, which is never a suspendable one's). */
PyObject *
call_site(PyObject *session, PyObject *label, PyObject *frame, PyObject *frames, PyObject *entry,
          SiteStore *st, int *live)
{
    *live = 0;
    PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti((PyFrameObject *)frame));
    if (lasti == NULL)
        return NULL;
    PyObject *base = MISS;
    PyObject *at = PyDict_GetItemWithError(frames, frame);
    if (at != NULL && PyDict_CheckExact(at)) {
        PyObject *hit = PyDict_GetItemWithError(at, lasti);
        if (hit != NULL && PyTuple_CheckExact(hit) && PyTuple_GET_SIZE(hit) == 3 &&
            PyTuple_GET_ITEM(hit, 1) == entry) {
            int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(hit, 0), label, Py_EQ);
            if (eq < 0)
                base = NULL;
            else if (eq) {
                base = PyTuple_GET_ITEM(hit, 2);
                *live = 1;
            }
        }
    }
    PyObject *sites = SLOT(session, C.s_sites);
    if (base == MISS && !PyErr_Occurred() && sites != NULL && PyDict_CheckExact(sites)) {
        PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)frame);
        PyObject *code_id = PyLong_FromVoidPtr(code);
        Py_DECREF(code);
        PyObject *key = code_id == NULL ? NULL : PyTuple_Pack(3, code_id, lasti, label);
        Py_XDECREF(code_id);
        PyFrameObject *parent = PyFrame_GetBack((PyFrameObject *)frame);
        if (key == NULL)
            base = NULL;
        else {
            PyObject *hit = PyDict_GetItemWithError(sites, key);
            int valid = 0;
            if (hit != NULL && PyTuple_CheckExact(hit) && PyTuple_GET_SIZE(hit) == 5 &&
                parent != NULL && PyTuple_GET_ITEM(hit, 0) == (PyObject *)parent &&
                PyTuple_GET_ITEM(hit, 2) == entry && PyLong_CheckExact(PyTuple_GET_ITEM(hit, 1))) {
                long want = PyLong_AsLong(PyTuple_GET_ITEM(hit, 1));
                if (want == -1 && PyErr_Occurred())
                    PyErr_Clear();
                else
                    valid = want == PyFrame_GetLasti(parent);
            }
            if (PyErr_Occurred())
                base = NULL;
            else if (valid) {
                if (PyTuple_GET_ITEM(hit, 4) != frame) { /* else _call_site remembers the frame */
                    base = PyTuple_GET_ITEM(hit, 3);
                    *live = 2;
                }
            }
            else {
                base = cached_address(frame, entry, label);
                if (base != NULL && base != MISS && parent != NULL) {
                    st->key = key; /* stored at the commit, as _call_site does */
                    key = NULL;
                    st->parent = (PyObject *)parent;
                    parent = NULL;
                }
            }
        }
        Py_XDECREF(key);
        Py_XDECREF(parent);
    }
    Py_DECREF(lasti);
    if (base == MISS && PyErr_Occurred())
        base = NULL;
    if (base != NULL && base != MISS && !PyUnicode_CheckExact(base))
        base = MISS; /* None: a draw of the engine's own (PASS) */
    if (base == NULL || base == MISS)
        store_clear(st);
    return base;
}
