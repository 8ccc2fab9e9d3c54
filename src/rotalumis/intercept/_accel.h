/* Shared declarations of the interception accelerator (rotalumis.intercept._accel): one
 * extension built from _accel.c (configuration, the record core, Record, the module),
 * _accel_sites.c (call sites), _accel_wrapper.c (the wrappers, torch's included) and
 * _accel_settle.c (scalar draws, Trace.settle), _accel_lazy.c (deferred counting) and
 * _accel_patch.c (installing the patches). The design: _accel.c. */
#ifndef ROTALUMIS_ACCEL_H
#define ROTALUMIS_ACCEL_H

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
    Py_ssize_t ex_entry, ex_choices, ex_max, ex_counters, ex_rng, ex_deferred;
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

extern Config C;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* Marks "take the Python path" (nothing was changed). */
extern char miss_marker;
#define MISS ((PyObject *)&miss_marker)

/* What _call_site stores in Session.sites after a stack walk, done when the recording
 * commits (so that a miss after the walk leaves the memo as it was). */
typedef struct {
    PyObject *key;    /* (id(code), lasti, label), or NULL: nothing to store */
    PyObject *parent; /* the parent frame */
} SiteStore;

/* ------------------------------------------------------------------ Wrapper --- */

/* What a lazily counted draw leaves for the Wrapper's cache (record_core's out-parameter):
 * its batch (with the batch's serial number) and slot, when its call site came from the
 * live-frame memo (a frame's callers cannot change, so the frame and instruction stay that
 * site) or the parent-frame memo (the code and instruction under a live parent frame). */
typedef struct {
    PyObject *batch; /* borrowed; NULL: nothing to remember */
    unsigned long long serial;
    Py_ssize_t slot;
    int live; /* call_site's: 1 the live frame, 2 the code and the live parent frame */
} LazyOut;

/* One remembered call of a random Wrapper (see Wrapper_vectorcall): the same frame,
 * instruction, instance and arguments, in the same session, handler stack, execution and
 * open batch, is the same site and slot. Strong references but for the batch (checked by
 * identity in the execution and by its serial). */
#define FAST_ARGS 3
#define FAST_SLOTS 8
typedef struct {
    PyObject *frame, *self, *session, *stack, *ex, *entry, *site;
    PyObject *vars; /* the context's variable mapping then (see context_vars), or NULL */
    PyObject *args[FAST_ARGS];
    Py_ssize_t nargs, slot;
    PyObject *batch;
    unsigned long long serial;
    void *code; /* identity: the frame's code (kept alive by frame or parent) */
    int lasti, parent_lasti;
    int by_parent; /* frame is then the parent frame */
} FastEntry;

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
    int remembering;           /* listed in the wrappers whose fast entries hold calls */
    FastEntry fast[FAST_SLOTS];
} WrapperObject;

enum { WRAP_RANDOM = 0, WRAP_TORCH = 1, WRAP_TORCH_IN_PLACE = 2 };

extern PyTypeObject WrapperType;

int slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *out);
PyObject *var_get(PyObject *var);
PyObject *recording(void);
void store_clear(SiteStore *st);
int store_site(PyObject *session, SiteStore *st, PyObject *entry, PyObject *base, PyObject *frame);
PyObject *call_site(PyObject *session, PyObject *label, PyObject *frame, PyObject *frames,
                    PyObject *entry, SiteStore *st, int *live);
PyObject *record_core(PyObject *session, PyObject *label, PyObject *dist, PyObject *frame,
                      LazyOut *out);
PyObject *draw_scalar(PyObject *dist, PyObject *rng);
PyObject *configure_torch(PyObject *module, PyObject *args);
PyObject *configure_draws(PyObject *module, PyObject *args);
PyObject *configure_settle(PyObject *module, PyObject *args);
PyObject *settle(PyObject *module, PyObject *trace);
int scalar_drawable(PyObject *dist, PyObject *rng);
PyObject *set_class_attrs(PyObject *module, PyObject *args);
PyObject *forget_calls(PyObject *module, PyObject *args);
PyObject *fast_repeats(PyObject *module, PyObject *ignored);
PyObject *replace_items(PyObject *module, PyObject *entries);

/* ------------------------------------------------- deferred counting (_accel_lazy.c) --- */

extern PyTypeObject BatchType;
PyObject *batch_new(PyObject *trace, Py_ssize_t choices);
int batch_open(PyObject *batch, PyObject *trace);
Py_ssize_t batch_choices(PyObject *batch);
Py_ssize_t batch_find(PyObject *batch, PyObject *base, PyObject *dist);
Py_ssize_t batch_add_slot(PyObject *batch, PyObject *base, PyObject *dist, PyObject *counter);
Py_ssize_t batch_visit(PyObject *batch, Py_ssize_t slot);
void batch_set_value(PyObject *batch, Py_ssize_t entry, PyObject *value);
int flush_deferred(PyObject *ex);
unsigned long long batch_serial(PyObject *batch);
PyObject *draw_lazily(PyObject *batch, Py_ssize_t slot, PyObject *session, PyObject *dist,
                      PyObject *rng);
PyObject *batch_draw_again(PyObject *batch, unsigned long long serial, PyObject *max_obj,
                           Py_ssize_t slot, PyObject *session, PyObject *dist, PyObject *rng);
Py_ssize_t batch_size(PyObject *batch);
PyObject *batch_record(PyObject *batch, Py_ssize_t i, PyObject **base, PyObject **dist,
                       PyObject **value);

#endif
