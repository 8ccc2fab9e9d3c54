/* Deferred counting of compiled scalar draws (see _accel.c and docs/interception.md,
 * "Lazy addressing").
 *
 * A site's instance number (the n of base__Kind__n) depends only on the order of the visits
 * to its (base, kind) within the execution, and Execution.choices only on how many sites
 * were visited. So a run of compiled draws of Uniform / Categorical sites (whose value is
 * drawn in C and always deferred) is kept as one Batch, an entry of Trace.pending: per
 * draw, the site's slot, its instance number (counted in C from the counter's visits when
 * the slot was made) and the value; no tuple, no Python integer, no address string. The
 * Python state catches up when anything else could read it: Execution.flush_deferred()
 * (called by next_address, so by every site the Python code records, and by whoever clears
 * the counters) writes the visits into the counters and choices and closes the batch; a
 * draw the compiled path records at once closes it the same way; Trace.settle makes the
 * batch's records (address, base, dist, value, True) in order, as if they had been
 * appended one by one. A closed batch is never appended to again: the next draw starts a
 * new one, after whatever the Python code appended meanwhile. */
#include "_accel.h"

typedef struct {
    PyObject *counter; /* the execution's [visits, addresses] list */
    Py_ssize_t visits; /* counter[0] when the batch took it, plus flushed visits */
    Py_ssize_t delta;  /* visits not yet written into counter[0] */
} Count;

typedef struct {
    PyObject *base, *dist; /* the slot's key (strong references) */
    Py_ssize_t count;      /* index of its Count */
} Slot;

typedef struct {
    Py_ssize_t slot, n;
    PyObject *value;
} Entry;

typedef struct {
    PyObject_HEAD
    void *trace; /* identity only: the trace whose pending list holds this batch */
    unsigned long long serial; /* unique per batch (the Wrappers' caches compare it) */
    Py_ssize_t choices;
    int closed, settled; /* settled: its records were made (it is no longer pending) */
    Count *counts;
    Py_ssize_t n_counts, cap_counts;
    Slot *slots;
    Py_ssize_t n_slots, cap_slots;
    Py_ssize_t *table; /* open addressing on (base, dist): slot index + 1, 0 empty */
    Py_ssize_t table_size;
    Entry *entries;
    Py_ssize_t n_entries, cap_entries;
} BatchObject;

/* The entries buffer of the last batch freed, kept for the next one (one execution's
 * batch after another's: no regrowth from 64 entries each time). */
static Entry *spare_entries = NULL;
static Py_ssize_t spare_cap = 0;

static Py_ssize_t
pair_hash(PyObject *base, PyObject *dist)
{
    size_t h = ((size_t)base >> 4) * 0x9E3779B97F4A7C15ULL ^ ((size_t)dist >> 4);
    h ^= h >> 31;
    return (Py_ssize_t)(h & PY_SSIZE_T_MAX);
}

Py_ssize_t
batch_find(PyObject *op, PyObject *base, PyObject *dist)
{
    BatchObject *b = (BatchObject *)op;
    if (b->table_size == 0)
        return -1;
    Py_ssize_t mask = b->table_size - 1, i = pair_hash(base, dist) & mask;
    for (;;) {
        Py_ssize_t k = b->table[i];
        if (k == 0)
            return -1;
        Slot *s = &b->slots[k - 1];
        if (s->base == base && s->dist == dist)
            return k - 1;
        i = (i + 1) & mask;
    }
}

static int
table_grow(BatchObject *b)
{
    Py_ssize_t size = b->table_size ? 2 * b->table_size : 16;
    Py_ssize_t *table = PyMem_Calloc((size_t)size, sizeof(Py_ssize_t));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < b->n_slots; k++) {
        Py_ssize_t i = pair_hash(b->slots[k].base, b->slots[k].dist) & (size - 1);
        while (table[i] != 0)
            i = (i + 1) & (size - 1);
        table[i] = k + 1;
    }
    PyMem_Free(b->table);
    b->table = table;
    b->table_size = size;
    return 0;
}

static int
reserve(void **items, Py_ssize_t *cap, Py_ssize_t used, size_t item)
{
    if (used < *cap)
        return 0;
    Py_ssize_t size = *cap ? 2 * *cap : 64;
    void *grown = PyMem_Realloc(*items, (size_t)size * item);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *items = grown;
    *cap = size;
    return 0;
}

/* A new slot for (base, dist) counted by counter (a [visits, addresses] list whose visits
 * are current: no open batch counts it elsewhere); its index or -1. */
Py_ssize_t
batch_add_slot(PyObject *op, PyObject *base, PyObject *dist, PyObject *counter)
{
    BatchObject *b = (BatchObject *)op;
    Py_ssize_t c = 0;
    while (c < b->n_counts && b->counts[c].counter != counter)
        c++;
    if (c == b->n_counts) {
        Py_ssize_t visits = PyLong_AsSsize_t(PyList_GET_ITEM(counter, 0));
        if (visits == -1 && PyErr_Occurred())
            return -1;
        if (reserve((void **)&b->counts, &b->cap_counts, b->n_counts, sizeof(Count)) < 0)
            return -1;
        Py_INCREF(counter);
        b->counts[c] = (Count){counter, visits, 0};
        b->n_counts++;
    }
    if (2 * (b->n_slots + 1) > b->table_size && table_grow(b) < 0)
        return -1;
    if (reserve((void **)&b->slots, &b->cap_slots, b->n_slots, sizeof(Slot)) < 0)
        return -1;
    Py_ssize_t k = b->n_slots++;
    Py_INCREF(base);
    Py_INCREF(dist);
    b->slots[k] = (Slot){base, dist, c};
    Py_ssize_t mask = b->table_size - 1, i = pair_hash(base, dist) & mask;
    while (b->table[i] != 0)
        i = (i + 1) & mask;
    b->table[i] = k + 1;
    return k;
}

/* Counts one visit of slot k (choices and the instance number): returns its entry's index
 * (its value not yet set) or -1. */
Py_ssize_t
batch_visit(PyObject *op, Py_ssize_t k)
{
    BatchObject *b = (BatchObject *)op;
    if (reserve((void **)&b->entries, &b->cap_entries, b->n_entries, sizeof(Entry)) < 0)
        return -1;
    Count *c = &b->counts[b->slots[k].count];
    c->delta++;
    b->choices++;
    Py_ssize_t e = b->n_entries++;
    b->entries[e] = (Entry){k, c->visits + c->delta, NULL};
    return e;
}

/* The drawn value of entry e (steals nothing: a new reference is taken). */
void
batch_set_value(PyObject *op, Py_ssize_t e, PyObject *value)
{
    Py_INCREF(value);
    ((BatchObject *)op)->entries[e].value = value;
}

int
batch_open(PyObject *op, PyObject *trace)
{
    BatchObject *b = (BatchObject *)op;
    return !b->closed && b->trace == (void *)trace;
}

unsigned long long
batch_serial(PyObject *op)
{
    return ((BatchObject *)op)->serial;
}


/* One visit of slot k of an open batch: count it, draw the value in C (session.busy set
 * around the draw, as record does), keep it; a new reference to the value or NULL. */
PyObject *
draw_lazily(PyObject *batch, Py_ssize_t slot, PyObject *session, PyObject *dist, PyObject *rng)
{
    Py_ssize_t e = batch_visit(batch, slot);
    if (e < 0)
        return NULL;
    Py_INCREF(Py_True);
    Py_SETREF(SLOT(session, C.s_busy), Py_True);
    PyObject *value = draw_scalar(dist, rng);
    if (value == MISS) { /* scalar_drawable said it would draw */
        PyErr_SetString(PyExc_SystemError, "interception: a scalar draw changed");
        value = NULL;
    }
    if (value != NULL)
        batch_set_value(batch, e, value);
    Py_INCREF(Py_False);
    Py_SETREF(SLOT(session, C.s_busy), Py_False);
    return value;
}

/* A remembered call's draw (fast_call of _accel_wrapper.c): when the batch is still the one
 * of that serial number, open, pending and under max_choices, and the draw is taken in C,
 * draw_lazily; MISS (nothing changed) otherwise. In this file, where the checks and the
 * counting inline into one function. */
PyObject *
batch_draw_again(PyObject *op, unsigned long long serial, PyObject *max_obj, Py_ssize_t slot,
                 PyObject *session, PyObject *dist, PyObject *rng)
{
    BatchObject *b = (BatchObject *)op;
    /* open and still pending: the Python code never appends a record to a trace's pending
     * list without counting it (Execution.next_address, which closes the open batch), and
     * settling marks the batch */
    if (Py_TYPE(op) != &BatchType || b->serial != serial || b->closed || b->settled ||
        !PyLong_CheckExact(max_obj))
        return MISS;
    Py_ssize_t max_choices = PyLong_AsSsize_t(max_obj);
    if (max_choices == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return MISS;
    }
    if (b->choices >= max_choices)
        return MISS;
    /* drawn first (draw_scalar returns MISS before any draw when it would not draw), then
     * counted: scalar_drawable's checks are not made twice */
    Py_INCREF(Py_True);
    Py_SETREF(SLOT(session, C.s_busy), Py_True);
    PyObject *value = draw_scalar(dist, rng);
    Py_INCREF(Py_False);
    Py_SETREF(SLOT(session, C.s_busy), Py_False);
    if (value == NULL || value == MISS)
        return value;
    Py_ssize_t e = batch_visit(op, slot);
    if (e < 0) {
        Py_DECREF(value);
        return NULL;
    }
    batch_set_value(op, e, value);
    return value;
}

Py_ssize_t
batch_choices(PyObject *op)
{
    return ((BatchObject *)op)->choices;
}

/* ex.choices = the batch's count, each counter's visits written; the batch is closed. The
 * caller has taken it out of ex.deferred. */
int
batch_flush(PyObject *op, PyObject *ex)
{
    BatchObject *b = (BatchObject *)op;
    if (b->closed)
        return 0;
    b->closed = 1;
    for (Py_ssize_t i = 0; i < b->n_counts; i++) {
        Count *c = &b->counts[i];
        if (c->delta == 0)
            continue;
        c->visits += c->delta;
        c->delta = 0;
        PyObject *v = PyLong_FromSsize_t(c->visits);
        if (v == NULL || PyList_SetItem(c->counter, 0, v) < 0)
            return -1;
    }
    PyObject *choices = PyLong_FromSsize_t(b->choices);
    if (choices == NULL)
        return -1;
    Py_XSETREF(SLOT(ex, C.ex_choices), choices);
    return 0;
}

/* Takes ex.deferred out and flushes it (Execution.flush_deferred). */
int
flush_deferred(PyObject *ex)
{
    PyObject *b = SLOT(ex, C.ex_deferred);
    if (b == NULL || b == Py_None)
        return 0;
    Py_INCREF(Py_None);
    SLOT(ex, C.ex_deferred) = Py_None; /* the reference moves to b */
    int r = Py_TYPE(b) == &BatchType ? batch_flush(b, ex) : 0;
    if (Py_TYPE(b) != &BatchType) {
        PyObject *out = PyObject_CallMethod(b, "flush", "O", ex);
        r = out == NULL ? -1 : 0;
        Py_XDECREF(out);
    }
    Py_DECREF(b);
    return r;
}

/* A new open batch for trace, counting choices from `choices`. */
PyObject *
batch_new(PyObject *trace, Py_ssize_t choices)
{
    BatchObject *b = PyObject_GC_New(BatchObject, &BatchType);
    if (b == NULL)
        return NULL;
    static unsigned long long serials = 0;
    b->trace = (void *)trace;
    b->serial = ++serials;
    b->choices = choices;
    b->closed = b->settled = 0;
    b->counts = NULL;
    b->slots = NULL;
    b->table = NULL;
    b->entries = NULL;
    b->n_counts = b->cap_counts = b->n_slots = b->cap_slots = b->table_size = 0;
    b->n_entries = b->cap_entries = 0;
    if (spare_entries != NULL) {
        b->entries = spare_entries;
        b->cap_entries = spare_cap;
        spare_entries = NULL;
        spare_cap = 0;
    }
    PyObject_GC_Track(b);
    return (PyObject *)b;
}

/* Entry i's record (address, base, dist, value, True), as Execution.next_address and
 * send_sample would have made it: a new tuple, or NULL. The address list is filled as
 * next_address fills it. */
static PyObject *
entry_address(BatchObject *b, Entry *e)
{
    Slot *s = &b->slots[e->slot];
    PyObject *fulls = PyList_GET_ITEM(b->counts[s->count].counter, 1);
    if (e->n < PyList_GET_SIZE(fulls)) {
        PyObject *a = PyList_GET_ITEM(fulls, e->n);
        Py_INCREF(a);
        return a;
    }
    PyObject *digits = PyUnicode_FromFormat("%zd", e->n);
    if (digits == NULL)
        return NULL;
    PyObject *a = PyUnicode_Concat(PyList_GET_ITEM(fulls, 0), digits);
    Py_DECREF(digits);
    if (a != NULL && e->n == PyList_GET_SIZE(fulls) && e->n <= C.cached_visits &&
        PyList_Append(fulls, a) < 0)
        Py_CLEAR(a);
    return a;
}

/* The number of records; the batch is marked settled (Trace.settle reads them). */
Py_ssize_t
batch_size(PyObject *op)
{
    ((BatchObject *)op)->settled = 1;
    return ((BatchObject *)op)->n_entries;
}

/* Record i of the batch: borrowed base, dist, value; a new reference to the address. */
PyObject *
batch_record(PyObject *op, Py_ssize_t i, PyObject **base, PyObject **dist, PyObject **value)
{
    BatchObject *b = (BatchObject *)op;
    Entry *e = &b->entries[i];
    *base = b->slots[e->slot].base;
    *dist = b->slots[e->slot].dist;
    *value = e->value;
    return entry_address(b, e);
}

static PyObject *
Batch_records(PyObject *op, PyObject *unused)
{
    BatchObject *b = (BatchObject *)op;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < b->n_entries; i++) {
        PyObject *base, *dist, *value;
        if (b->entries[i].value == NULL)
            continue; /* a draw that raised */
        PyObject *address = batch_record(op, i, &base, &dist, &value);
        if (address == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *r = PyTuple_Pack(5, address, base, dist, value, Py_True);
        Py_DECREF(address);
        if (r == NULL || PyList_Append(out, r) < 0) {
            Py_XDECREF(r);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(r);
    }
    return out;
}

static PyObject *
Batch_iter(PyObject *op)
{
    ((BatchObject *)op)->settled = 1; /* Trace.settle reads it */
    PyObject *records = Batch_records(op, NULL);
    if (records == NULL)
        return NULL;
    PyObject *it = PyObject_GetIter(records);
    Py_DECREF(records);
    return it;
}

static PyObject *
Batch_flush(PyObject *op, PyObject *ex)
{
    if (!C.ready || Py_TYPE(ex) != C.execution_type) {
        PyErr_SetString(PyExc_TypeError, "Batch.flush: expected an Execution");
        return NULL;
    }
    if (batch_flush(op, ex) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Batch_reduce(PyObject *op, PyObject *unused)
{
    /* pickled as its records: a list, which Trace.settle reads as a batch too */
    PyObject *records = Batch_records(op, NULL);
    if (records == NULL)
        return NULL;
    return Py_BuildValue("(O(N))", (PyObject *)&PyList_Type, records);
}

static Py_ssize_t
Batch_len(PyObject *op)
{
    return ((BatchObject *)op)->n_entries;
}

static int
Batch_traverse(BatchObject *b, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < b->n_counts; i++)
        Py_VISIT(b->counts[i].counter);
    for (Py_ssize_t i = 0; i < b->n_slots; i++)
        Py_VISIT(b->slots[i].dist);
    for (Py_ssize_t i = 0; i < b->n_entries; i++)
        Py_VISIT(b->entries[i].value);
    return 0;
}

static int
Batch_clear(BatchObject *b)
{
    Py_ssize_t n;
    n = b->n_entries;
    b->n_entries = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        Py_CLEAR(b->entries[i].value);
    n = b->n_slots;
    b->n_slots = 0;
    if (b->table != NULL)
        memset(b->table, 0, (size_t)b->table_size * sizeof(Py_ssize_t));
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_CLEAR(b->slots[i].base);
        Py_CLEAR(b->slots[i].dist);
    }
    n = b->n_counts;
    b->n_counts = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        Py_CLEAR(b->counts[i].counter);
    b->closed = 1;
    return 0;
}

static void
Batch_dealloc(BatchObject *b)
{
    PyObject_GC_UnTrack(b);
    Batch_clear(b);
    PyMem_Free(b->counts);
    PyMem_Free(b->slots);
    PyMem_Free(b->table);
    if (spare_entries == NULL && b->cap_entries <= (1 << 20)) {
        spare_entries = b->entries;
        spare_cap = b->cap_entries;
    }
    else
        PyMem_Free(b->entries);
    PyObject_GC_Del(b);
}

static PyMethodDef Batch_methods[] = {
    {"flush", Batch_flush, METH_O,
     "flush(execution): write the deferred visits into its counters and choices; close."},
    {"records", Batch_records, METH_NOARGS,
     "The (address, base, dist, value, control) records, in order."},
    {"__reduce__", Batch_reduce, METH_NOARGS, "Pickled as the list of its records."},
    {NULL},
};

static PySequenceMethods Batch_as_sequence = {.sq_length = Batch_len};

PyTypeObject BatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rotalumis.intercept._accel.Batch",
    .tp_basicsize = sizeof(BatchObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Compiled scalar draws whose instance numbers are counted in C (an entry of "
              "Trace.pending: iterating gives its records).",
    .tp_traverse = (traverseproc)Batch_traverse,
    .tp_clear = (inquiry)Batch_clear,
    .tp_dealloc = (destructor)Batch_dealloc,
    .tp_iter = Batch_iter,
    .tp_methods = Batch_methods,
    .tp_as_sequence = &Batch_as_sequence,
};
