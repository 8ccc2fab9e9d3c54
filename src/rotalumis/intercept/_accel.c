/* The compiled hot path of interception (see docs/interception.md, "The compiled hot path").
 *
 * Two objects, both thin C versions of the common case of Python code that stays the
 * reference and the fallback:
 *
 *   Record(fallback)  -- rotalumis.intercept._session.record: the call site found in the
 *                        session's live-frame memo, an unnamed site, the plain
 *                        prior-recording stack, a site already visited in this execution.
 *   Wrapper(...)      -- the random / numpy.random wrappers (_make_wrapper): recording(),
 *                        the argument memo of site_for, the caller's frame, then Record.
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
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <frameobject.h>

#if PY_VERSION_HEX < 0x030B0000
#error "the interception accelerator needs CPython 3.11 or newer (PyFrame_GetLasti)"
#endif

/* ---------------------------------------------------------------- configuration --- */

typedef struct {
    PyObject *session_var, *stack_var, *execution_var; /* ContextVars */
    PyObject *empty_stack;
    PyTypeObject *session_type, *stack_type, *execution_type, *trace_type;
    PyObject *record_message; /* runtime.record_message(recorder, address, base, dist, value) */
    Py_ssize_t cached_visits;
    PyObject *addresses;  /* _address.ADDRESSES: site_address's cache by its key */
    Py_ssize_t max_depth; /* _address.MAX_DEPTH */
    Py_ssize_t sites_limit;
    int suspendable;      /* co_flags of frames whose callers can change */
    PyObject *shaped;     /* _session._SHAPED: shaped_label's cache */
    /* slot offsets */
    Py_ssize_t s_busy, s_frames, s_sites, s_names, s_name_cache;
    Py_ssize_t st_recorder;
    Py_ssize_t ex_entry, ex_choices, ex_max, ex_counters, ex_rng;
    Py_ssize_t tr_pending;
    /* interned names */
    PyObject *str_name, *str_sample, *str_is_scalar, *str_trace;
    int ready;
    /* torch (configure_torch): torch.get_default_dtype, torch.strided, torch.Size, the
     * Python fill(tensor, value, shape) of _torch_sites */
    PyObject *default_dtype, *strided, *fill;
    PyTypeObject *size_type;
    PyObject *str_layout, *str_dtype, *str_shape, *str_fill_;
    int torch_ready;
    /* Trace.settle (configure_settle): Message and the slot offsets it fills */
    PyTypeObject *message_type;
    Py_ssize_t tr_variables, tr_log_prior, tr_by_address;
    Py_ssize_t m_slots[12];
    PyObject *str_log_prob_sum, *str_kind_sample;
    int settle_ready;
    /* draws (configure_draws): Uniform, Categorical, RNG and their slots */
    PyTypeObject *uniform_type, *categorical_type, *rng_type;
    Py_ssize_t u_low, u_high, c_cum, c_weights, r_py;
    PyObject *str_random;
    int draws_ready;
} Config;

static Config C;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

static int
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

static PyObject *
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
static PyObject *
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
static char miss_marker;
#define MISS ((PyObject *)&miss_marker)

/* recording() of _session: the session when this call should be recorded, Py_None when it
 * passes through, NULL on error (borrowed). */
static PyObject *
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

/* What _call_site stores in Session.sites after a stack walk, done when the recording
 * commits (so that a miss after the walk leaves the memo as it was). */
typedef struct {
    PyObject *key;    /* (id(code), lasti, label), or NULL: nothing to store */
    PyObject *parent; /* the parent frame */
} SiteStore;

static void
store_clear(SiteStore *st)
{
    Py_CLEAR(st->key);
    Py_CLEAR(st->parent);
}

/* _call_site's store: sites[key] = (parent, parent.f_lasti, entry, base, frame). */
static int
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
 * NULL on error. */
static PyObject *
call_site(PyObject *session, PyObject *label, PyObject *frame, PyObject *frames, PyObject *entry,
          SiteStore *st)
{
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
            else if (eq)
                base = PyTuple_GET_ITEM(hit, 2);
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
                if (PyTuple_GET_ITEM(hit, 4) != frame) /* else _call_site remembers the frame */
                    base = PyTuple_GET_ITEM(hit, 3);
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

static PyObject *record_found(PyObject *session, PyObject *ex, PyObject *entry, PyObject *base,
                              PyObject *dist, PyObject *frame, SiteStore *st);

/* record(session, label, dist, frame) for an unshaped site: a new reference to the value,
 * MISS (nothing changed), or NULL with an exception set. */
static PyObject *
record_core(PyObject *session, PyObject *label, PyObject *dist, PyObject *frame)
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
    PyObject *base = call_site(session, label, frame, frames, entry, &st);
    if (base == NULL || base == MISS)
        return base;
    Py_INCREF(base); /* a store in Session.sites may drop the memo's reference */
    PyObject *value = record_found(session, ex, entry, base, dist, frame, &st);
    Py_DECREF(base);
    store_clear(&st);
    return value;
}


/* -------------------------------------------------------------------- draws --- */

static PyObject *
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

/* dist.sample(rng) of a scalar Uniform or Categorical (whose cumulative weights exist), the
 * same operations on the same uniform rng.py.random() as their Python sample: a new
 * reference, MISS (call dist.sample), or NULL on error. A value returned here is a
 * scalar site's (is_scalar holds). */
static PyObject *
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
        PyObject *u = PyObject_CallMethodNoArgs(py, C.str_random);
        if (u == NULL)
            return NULL;
        if (!PyFloat_CheckExact(u)) {
            Py_DECREF(u);
            PyErr_SetString(PyExc_TypeError, "the engine's random() returned a non-float");
            return NULL;
        }
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
        PyObject *u = PyObject_CallMethodNoArgs(py, C.str_random);
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
static PyObject *
record_found(PyObject *session, PyObject *ex, PyObject *entry, PyObject *base, PyObject *dist,
             PyObject *frame, SiteStore *st)
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
    if (choices_obj == NULL || max_obj == NULL || counters == NULL || rng == NULL ||
        !PyLong_CheckExact(choices_obj) || !PyLong_CheckExact(max_obj) ||
        !PyDict_CheckExact(counters))
        return MISS;
    Py_ssize_t choices = PyLong_AsSsize_t(choices_obj);
    Py_ssize_t max_choices = PyLong_AsSsize_t(max_obj);
    if ((choices == -1 || max_choices == -1) && PyErr_Occurred()) {
        PyErr_Clear();
        return MISS;
    }
    if (choices >= max_choices || choices == PY_SSIZE_T_MAX)
        return MISS; /* the limit: the Python path raises TraceLimitError */
    PyObject *kind = PyObject_GetAttr(dist, C.str_name);
    if (kind == NULL)
        return NULL;
    if (!PyUnicode_CheckExact(kind)) {
        Py_DECREF(kind);
        return MISS;
    }
    PyObject *key = PyTuple_Pack(2, base, kind);
    Py_DECREF(kind);
    if (key == NULL)
        return NULL;
    PyObject *counter = PyDict_GetItemWithError(counters, key);
    Py_DECREF(key);
    if (counter == NULL)
        return PyErr_Occurred() ? NULL : MISS; /* a first visit: the Python path */
    if (!PyList_CheckExact(counter) || PyList_GET_SIZE(counter) != 2 ||
        !PyLong_CheckExact(PyList_GET_ITEM(counter, 0)) ||
        !PyList_CheckExact(PyList_GET_ITEM(counter, 1)) ||
        PyList_GET_SIZE(PyList_GET_ITEM(counter, 1)) < 1)
        return MISS;
    Py_ssize_t visits = PyLong_AsSsize_t(PyList_GET_ITEM(counter, 0));
    if (visits == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return MISS;
    }
    PyObject *trace = PyObject_GetAttr(recorder, C.str_trace);
    if (trace == NULL)
        return NULL;
    if (Py_TYPE(trace) != C.trace_type || SLOT(trace, C.tr_pending) == NULL ||
        !PyList_CheckExact(SLOT(trace, C.tr_pending))) {
        Py_DECREF(trace);
        return MISS;
    }
    /* ---- commit: from here on this is the recording itself ---- */
    PyObject *value = NULL, *address = NULL, *n_obj = NULL;
    /* held while Python code (the draw) runs: the context variables' values */
    Py_INCREF(session);
    Py_INCREF(ex);
    Py_INCREF(recorder);
    if (store_site(session, st, entry, base, frame) < 0)
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
    value = draw_scalar(dist, rng);
    int scalar_draw = value != MISS && value != NULL;
    if (value == MISS)
        value = PyObject_CallMethodOneArg(dist, C.str_sample, rng);
    PyObject *pending = SLOT(trace, C.tr_pending); /* read after the draw, as send_sample */
    if (value != NULL) {
        int deferred = scalar_draw;
        if (!scalar_draw && (PyFloat_CheckExact(value) || PyLong_CheckExact(value))) {
            PyObject *scalar = PyObject_GetAttr(dist, C.str_is_scalar);
            deferred = scalar == NULL ? -1 : PyObject_IsTrue(scalar);
            Py_XDECREF(scalar);
        }
        int ok;
        if (deferred < 0)
            ok = 0;
        else if (deferred) {
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
            PyObject *value = record_core(args[0], label, args[2], args[3]);
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

/* ------------------------------------------------------------------ Wrapper --- */

typedef struct {
    PyObject_HEAD
    PyObject *fallback;        /* the Python wrapper (same arguments) */
    PyObject *original;        /* the patched function */
    PyObject *memo;            /* site_for's memo: memo_key(args) -> (dist, convert, shape) */
    PyObject *module_label;    /* label when self is global_instance */
    PyObject *class_label;
    PyObject *global_instance; /* None: none */
    PyObject *skip_type;       /* instances never intercepted (random.SystemRandom) or None */
    PyObject *dict;
    vectorcallfunc vectorcall;
    int mode;                  /* WRAP_RANDOM, WRAP_TORCH or WRAP_TORCH_IN_PLACE */
} WrapperObject;

enum { WRAP_RANDOM = 0, WRAP_TORCH = 1, WRAP_TORCH_IN_PLACE = 2 };

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

static PyTypeObject WrapperType = {
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


/* ------------------------------------------------------------------- settle --- */

/* Message's slots in the order of m_slots, and the value each gets in Trace.settle. */
static const char *const MESSAGE_SLOTS[12] = {
    "kind", "name", "address", "base_address", "distribution", "value",
    "control", "observed", "log_prob", "stop", "proposal_log_prob", "meta",
};

static PyObject *
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

/* Trace.settle (core/trace.py) for a Trace whose slots hold what __init__ put there (lists,
 * records of 5): each pending record (address, base, dist, value, control) becomes
 * Message("sample", None, address, base, dist, value, control) with log_prob =
 * dist.log_prob_sum(value), appended in order, log_prior += log_prob in the same order.
 * Returns True when done, False when the Python settle must run (nothing was changed). */
static PyObject *
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
        if (!PyTuple_CheckExact(r) || PyTuple_GET_SIZE(r) != 5)
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
        PyObject *dist = PyTuple_GET_ITEM(r, 2), *value = PyTuple_GET_ITEM(r, 3);
        PyObject *msg = C.message_type->tp_alloc(C.message_type, 0);
        if (msg == NULL)
            goto done;
        PyObject *fields[12] = {C.str_kind_sample, Py_None, PyTuple_GET_ITEM(r, 0),
                                PyTuple_GET_ITEM(r, 1), dist, value, PyTuple_GET_ITEM(r, 4),
                                Py_False, Py_None, Py_False, Py_None, Py_None};
        for (int j = 0; j < 12; j++) {
            Py_INCREF(fields[j]);
            SLOT(msg, C.m_slots[j]) = fields[j];
        }
        PyObject *lp = PyObject_CallMethodOneArg(dist, C.str_log_prob_sum, value);
        if (lp == NULL) {
            Py_DECREF(msg);
            goto done;
        }
        Py_INCREF(lp);
        Py_SETREF(SLOT(msg, C.m_slots[8]), lp);
        PyObject *sum = PyNumber_InPlaceAdd(log_prior, lp);
        Py_DECREF(lp);
        if (sum == NULL) {
            Py_DECREF(msg);
            goto done;
        }
        Py_SETREF(log_prior, sum);
        int appended = PyList_Append(variables, msg);
        Py_DECREF(msg);
        if (appended < 0)
            goto done;
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

/* ------------------------------------------------------------------- module --- */

static PyMethodDef module_methods[] = {
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
    if (PyType_Ready(&RecordType) < 0 || PyType_Ready(&WrapperType) < 0)
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
