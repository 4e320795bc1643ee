/*
 * module.c: txspawn._cspawn, the Python-facing glue of the C engine.
 *
 * The only file of the engine that includes <Python.h>.  It converts the
 * arguments prepared by txspawn/_engine/cengine.py into a plain struct txs_plan
 * (every allocation happens here, with the GIL held, before the spawn),
 * releases the GIL around the whole clone -> exec -> error-pipe section
 * (spawn.c), and builds the result.  The child (child.c) never sees a
 * Python object.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "plan.h"
#include "spawn.h"

#define TXS_NARGS 25

/* The flags of spawn()'s result. */
enum {
    TXS_FLAG_VFORK = 1,            /* CLONE_VM|CLONE_VFORK: vfork mode */
    TXS_FLAG_SLOTS_FOREIGN = 4,
    TXS_FLAG_CLONE3 = 8,
    TXS_FLAG_SLOTS_UNUSABLE = 16,
    TXS_FLAG_SHARED_VM = 32,       /* CLONE_VM, with or without CLONE_VFORK */
    /* The cgroup (issue 14): how the child was placed ... */
    TXS_FLAG_CGROUP_CLONE = 64,    /* clone3(CLONE_INTO_CGROUP) */
    TXS_FLAG_CGROUP_PROCS = 128,   /* the child wrote cgroup.procs */
    /* ... and why not by the clone (either outcome, also on a failure) */
    TXS_FLAG_CGROUP_KILLED = 256,  /* the cloned child was killed by the
                                      kernel before it ran */
    TXS_FLAG_CGROUP_NO_CLONE3 = 512, /* this spawn does not use clone3 */
};

/* The errno clone3(CLONE_INTO_CGROUP) was refused with, in the flags. */
#define TXS_CGROUP_ERRNO_SHIFT 16

/* Everything allocated for one spawn; freed by txs_plan_free(). */
struct txs_alloc {
    char **candidates;
    char **argv;
    char **envp;
    struct txs_fdop *ops;
    struct txs_rlimit *rlimits;
    gid_t *groups;
    int *slot_src;
    char **init_argv;
};

static void
txs_alloc_free(struct txs_alloc *a)
{
    PyMem_Free(a->candidates);
    PyMem_Free(a->argv);
    PyMem_Free(a->envp);
    PyMem_Free(a->ops);
    PyMem_Free(a->rlimits);
    PyMem_Free(a->groups);
    PyMem_Free(a->slot_src);
    PyMem_Free(a->init_argv);
}

static PyObject *
txs_need_tuple(PyObject *obj, const char *what)
{
    if (!PyTuple_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a tuple, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    return obj;
}

/* A tuple of bytes -> a NULL-terminated char * array pointing into the
   bytes objects (which the caller keeps alive for the whole call). */
static char **
txs_bytes_array(PyObject *obj, const char *what, int nonempty)
{
    if (txs_need_tuple(obj, what) == NULL) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(obj);
    if (nonempty && n == 0) {
        PyErr_Format(PyExc_ValueError, "%s must not be empty", what);
        return NULL;
    }
    char **out = PyMem_New(char *, (size_t)n + 1);
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(obj, i);
        if (!PyBytes_Check(item)) {
            PyErr_Format(PyExc_TypeError, "%s[%zd] must be bytes, not %.100s",
                         what, i, Py_TYPE(item)->tp_name);
            PyMem_Free(out);
            return NULL;
        }
        char *s = PyBytes_AS_STRING(item);
        if ((Py_ssize_t)strlen(s) != PyBytes_GET_SIZE(item)) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] contains a NUL byte",
                         what, i);
            PyMem_Free(out);
            return NULL;
        }
        out[i] = s;
    }
    out[n] = NULL;
    return out;
}

static int
txs_int(PyObject *obj, const char *what, long long lo, long long hi,
        long long *out)
{
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow || v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s out of range [%lld, %lld]", what,
                     lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* A tuple of ints -> a long long array. */
static long long *
txs_int_tuple(PyObject *obj, const char *what, Py_ssize_t *n)
{
    if (txs_need_tuple(obj, what) == NULL) {
        return NULL;
    }
    *n = PyTuple_GET_SIZE(obj);
    long long *out = PyMem_New(long long, (size_t)*n + 1);
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        if (txs_int(PyTuple_GET_ITEM(obj, i), what, LLONG_MIN, LLONG_MAX,
                    &out[i]) < 0) {
            PyMem_Free(out);
            return NULL;
        }
    }
    return out;
}

/* A tuple of k-tuples of ints -> a flat long long array. */
static long long *
txs_int_rows(PyObject *obj, const char *what, Py_ssize_t k, Py_ssize_t *n)
{
    if (txs_need_tuple(obj, what) == NULL) {
        return NULL;
    }
    *n = PyTuple_GET_SIZE(obj);
    long long *out = PyMem_New(long long, (size_t)(*n * k) + 1);
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        PyObject *row = PyTuple_GET_ITEM(obj, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != k) {
            PyErr_Format(PyExc_TypeError, "%s[%zd] must be a %zd-tuple", what,
                         i, k);
            PyMem_Free(out);
            return NULL;
        }
        for (Py_ssize_t j = 0; j < k; j++) {
            if (txs_int(PyTuple_GET_ITEM(row, j), what, LLONG_MIN, LLONG_MAX,
                        &out[i * k + j]) < 0) {
                PyMem_Free(out);
                return NULL;
            }
        }
    }
    return out;
}

static int
txs_convert_ops(PyObject *obj, struct txs_plan *plan, struct txs_alloc *a)
{
    Py_ssize_t n;
    long long *rows = txs_int_rows(obj, "ops", 3, &n);
    if (rows == NULL) {
        return -1;
    }
    a->ops = PyMem_New(struct txs_fdop, (size_t)n + 1);
    if (a->ops == NULL) {
        PyMem_Free(rows);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long code = rows[3 * i], fd = rows[3 * i + 1];
        long long target = rows[3 * i + 2];
        if (code < TXS_FDOP_DUP2 || code > TXS_FDOP_CLOSE_RANGE || fd < 0 ||
                fd > INT_MAX || target < 0 ||
                target > (long long)TXS_CLOSE_RANGE_MAX ||
                (code != TXS_FDOP_CLOSE_RANGE && target > INT_MAX)) {
            PyErr_Format(PyExc_ValueError, "ops[%zd] is not a valid fd op: "
                         "(%lld, %lld, %lld)", i, code, fd, target);
            PyMem_Free(rows);
            return -1;
        }
        a->ops[i].code = (int)code;
        a->ops[i].fd = (int)fd;
        a->ops[i].target = (unsigned)target;
    }
    PyMem_Free(rows);
    plan->ops = a->ops;
    plan->nops = (size_t)n;
    return 0;
}

static int
txs_convert_rlimits(PyObject *obj, struct txs_plan *plan, struct txs_alloc *a)
{
    Py_ssize_t n;
    long long *rows = txs_int_rows(obj, "rlimits", 3, &n);
    if (rows == NULL) {
        return -1;
    }
    a->rlimits = PyMem_New(struct txs_rlimit, (size_t)n + 1);
    if (a->rlimits == NULL) {
        PyMem_Free(rows);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (rows[3 * i] < 0 || rows[3 * i] > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "rlimits[%zd]: bad resource", i);
            PyMem_Free(rows);
            return -1;
        }
        a->rlimits[i].resource = (int)rows[3 * i];
        /* -1 is RLIM_INFINITY, as Python's resource module spells it. */
        a->rlimits[i].soft = (uint64_t)rows[3 * i + 1];
        a->rlimits[i].hard = (uint64_t)rows[3 * i + 2];
    }
    PyMem_Free(rows);
    plan->rlimits = a->rlimits;
    plan->nrlimits = (size_t)n;
    return 0;
}

static int
txs_convert_groups(PyObject *obj, struct txs_plan *plan, struct txs_alloc *a)
{
    if (obj == Py_None) {
        plan->set_groups = 0;
        return 0;
    }
    Py_ssize_t n;
    long long *rows = txs_int_tuple(obj, "groups", &n);
    if (rows == NULL) {
        return -1;
    }
    a->groups = PyMem_New(gid_t, (size_t)n + 1);
    if (a->groups == NULL) {
        PyMem_Free(rows);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= (long long)UINT32_MAX) {
            PyErr_Format(PyExc_ValueError, "groups[%zd] is not a gid", i);
            PyMem_Free(rows);
            return -1;
        }
        a->groups[i] = (gid_t)rows[i];
    }
    PyMem_Free(rows);
    plan->set_groups = 1;
    plan->groups = a->groups;
    plan->ngroups = (size_t)n;
    return 0;
}

static int
txs_convert_mask(PyObject *obj, struct txs_plan *plan)
{
    Py_ssize_t n;
    long long *rows = txs_int_tuple(obj, "signalMask", &n);
    if (rows == NULL) {
        return -1;
    }
    uint64_t mask = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (rows[i] < 1 || rows[i] > 64) {
            PyErr_Format(PyExc_ValueError, "signalMask[%zd]: no signal %lld",
                         i, rows[i]);
            PyMem_Free(rows);
            return -1;
        }
        mask |= (uint64_t)1 << (rows[i] - 1);
    }
    PyMem_Free(rows);
    plan->signal_mask = mask;
    return 0;
}

/* The parent fds slot mode sends: a tuple of ints. */
static int
txs_convert_slots(PyObject *obj, struct txs_slots *slots, struct txs_alloc *a)
{
    Py_ssize_t n;
    long long *rows = txs_int_tuple(obj, "slots", &n);
    if (rows == NULL) {
        return -1;
    }
    if (n > TXS_MAX_RECV) {
        PyErr_Format(PyExc_ValueError, "slots: at most %d fds", TXS_MAX_RECV);
        PyMem_Free(rows);
        return -1;
    }
    a->slot_src = PyMem_New(int, (size_t)n + 1);
    if (a->slot_src == NULL) {
        PyMem_Free(rows);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] > INT_MAX) {
            PyErr_Format(PyExc_ValueError, "slots[%zd] is not an fd", i);
            PyMem_Free(rows);
            return -1;
        }
        a->slot_src[i] = (int)rows[i];
    }
    PyMem_Free(rows);
    slots->src = a->slot_src;
    slots->n = (size_t)n;
    return 0;
}

/*
 * None, or the reserved socket: (fd, st_dev, st_ino, sender, sender st_dev,
 * sender st_ino, drain, owner pid).
 */
static int
txs_convert_reserved(PyObject *obj, struct txs_slots *slots)
{
    slots->slot_fd = -1;
    if (obj == Py_None) {
        return 0;
    }
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "reserved must be None or (fd, st_dev, st_ino, "
                        "sender, st_dev, st_ino, drain, pid)");
        return -1;
    }
    static const char *const names[8] = {
        "reserved fd", "reserved st_dev", "reserved st_ino", "sender fd",
        "sender st_dev", "sender st_ino", "drain fd", "owner pid"};
    long long v[8];
    for (int i = 0; i < 8; i++) {
        int fd = i == 0 || i == 3 || i == 6 || i == 7;
        if (txs_int(PyTuple_GET_ITEM(obj, i), names[i], 0,
                    fd ? INT_MAX : LLONG_MAX, &v[i]) < 0) {
            return -1;
        }
    }
    slots->slot_fd = (int)v[0];
    slots->slot_dev = (dev_t)v[1];
    slots->slot_ino = (ino_t)v[2];
    slots->sender = (int)v[3];
    slots->sender_dev = (dev_t)v[4];
    slots->sender_ino = (ino_t)v[5];
    slots->drain = (int)v[6];
    slots->owner = (pid_t)v[7];
    return 0;
}

/* None, or bytes without NUL (the child writes them as they are, but
   none of these files takes a NUL) -> *out; what names the item. */
static int
txs_opt_bytes(PyObject *obj, const char *what, struct txs_bytes *out)
{
    out->data = NULL;
    out->len = 0;
    if (obj == Py_None) {
        return 0;
    }
    if (!PyBytes_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "namespaces: %s must be None or bytes, "
                     "not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    out->data = PyBytes_AS_STRING(obj);
    out->len = (size_t)PyBytes_GET_SIZE(obj);
    if (memchr(out->data, '\0', out->len) != NULL) {
        PyErr_Format(PyExc_ValueError, "namespaces: %s contains a NUL byte",
                     what);
        return -1;
    }
    return 0;
}

/* The CLONE_NEW* flags a plan may ask for (never CLONE_NEWTIME: that one
   is unshared by the child, see child.c). */
#define TXS_CLONE_NEW_ALL (CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | \
                           CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | \
                           CLONE_NEWCGROUP)

/*
 * None, or txspawn._plan.namespaceplan.NamespacePlan's fields but init, in
 * order: (cloneFlags, uidMap, gidMap, setgroups, mapsByChild, earlyIds,
 * hostname, loopback, propagation, mountProc, timeOffsets); propagation 0
 * for unchanged, earlyIds None or (uid, gid).
 */
static int
txs_convert_namespaces(PyObject *obj, struct txs_plan *plan)
{
    struct txs_namespaces *ns = &plan->ns;
    if (obj == Py_None) {
        return 0;
    }
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 11) {
        PyErr_SetString(PyExc_TypeError,
                        "namespaces must be None or an 11-tuple (cloneFlags, "
                        "uidMap, gidMap, setgroups, mapsByChild, earlyIds, "
                        "hostname, loopback, propagation, mountProc, "
                        "timeOffsets)");
        return -1;
    }
    PyObject *const *item = &PyTuple_GET_ITEM(obj, 0);
    long long v;
    if (txs_int(item[0], "namespaces: cloneFlags", 0, TXS_CLONE_NEW_ALL,
                &v) < 0) {
        return -1;
    }
    if ((v & ~(long long)TXS_CLONE_NEW_ALL) != 0) {
        PyErr_Format(PyExc_ValueError, "namespaces: cloneFlags %#llx has "
                     "flags other than CLONE_NEW*", v);
        return -1;
    }
    ns->clone_flags = (uint64_t)v;
    if (txs_opt_bytes(item[1], "uidMap", &ns->uid_map) < 0 ||
            txs_opt_bytes(item[2], "gidMap", &ns->gid_map) < 0 ||
            txs_opt_bytes(item[3], "setgroups", &ns->setgroups) < 0 ||
            txs_opt_bytes(item[6], "hostname", &ns->hostname) < 0 ||
            txs_opt_bytes(item[10], "timeOffsets", &ns->time_offsets) < 0) {
        return -1;
    }
    if ((ns->uid_map.data != NULL) != !!(ns->clone_flags & CLONE_NEWUSER) ||
            (ns->uid_map.data == NULL &&
             (ns->gid_map.data != NULL || ns->setgroups.data != NULL))) {
        PyErr_SetString(PyExc_ValueError,
                        "namespaces: a uidMap comes with CLONE_NEWUSER, and "
                        "gidMap and setgroups only with a uidMap");
        return -1;
    }
    ns->maps_by_child = PyObject_IsTrue(item[4]);
    ns->loopback = PyObject_IsTrue(item[7]);
    ns->mount_proc = PyObject_IsTrue(item[9]);
    if (ns->maps_by_child < 0 || ns->loopback < 0 || ns->mount_proc < 0) {
        return -1;
    }
    if (item[5] != Py_None) {
        if (!PyTuple_Check(item[5]) || PyTuple_GET_SIZE(item[5]) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "namespaces: earlyIds must be None or (uid, gid)");
            return -1;
        }
        if (txs_int(PyTuple_GET_ITEM(item[5], 0), "namespaces: earlyIds uid",
                    0, (long long)UINT32_MAX - 1, &v) < 0) {
            return -1;
        }
        ns->early_uid = (uid_t)v;
        if (txs_int(PyTuple_GET_ITEM(item[5], 1), "namespaces: earlyIds gid",
                    0, (long long)UINT32_MAX - 1, &v) < 0) {
            return -1;
        }
        ns->early_gid = (gid_t)v;
        ns->early_ids = 1;
    }
    if (txs_int(item[8], "namespaces: propagation", 0, LONG_MAX, &v) < 0) {
        return -1;
    }
    if (v != 0 && v != MS_SLAVE && v != MS_PRIVATE && v != MS_SHARED) {
        PyErr_Format(PyExc_ValueError, "namespaces: propagation must be 0, "
                     "MS_SLAVE, MS_PRIVATE or MS_SHARED, not %lld", v);
        return -1;
    }
    ns->propagation = (unsigned long)v;
    return 0;
}

/* None, or (path, argv, statusFd): exec txspawn's init with argv (built by
   txspawn._engine.cengine), the status pipe moved to statusFd. */
static int
txs_convert_init(PyObject *obj, struct txs_plan *plan, struct txs_alloc *a)
{
    plan->status_fd = -1;
    plan->status_target = -1;
    if (obj == Py_None) {
        return 0;
    }
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "init must be None or (path, argv, statusFd)");
        return -1;
    }
    PyObject *path = PyTuple_GET_ITEM(obj, 0);
    if (!PyBytes_Check(path) ||
            (Py_ssize_t)strlen(PyBytes_AS_STRING(path)) !=
            PyBytes_GET_SIZE(path)) {
        PyErr_SetString(PyExc_TypeError,
                        "init path must be bytes without NUL");
        return -1;
    }
    if ((a->init_argv = txs_bytes_array(PyTuple_GET_ITEM(obj, 1),
                                        "init argv", 1)) == NULL) {
        return -1;
    }
    long long v;
    if (txs_int(PyTuple_GET_ITEM(obj, 2), "init statusFd", 0, INT_MAX,
                &v) < 0) {
        return -1;
    }
    plan->init_path = PyBytes_AS_STRING(path);
    plan->init_argv = a->init_argv;
    plan->status_target = (int)v;
    return 0;
}

/* None, or (dirFd, procsFd, useClone): the cgroup to place the child in
   (see txs_spawn in spawn.c); procsFd -1: opened under dirFd if needed. */
static int
txs_convert_cgroup(PyObject *obj, struct txs_cgroup *cgroup, int *given)
{
    *given = 0;
    if (obj == Py_None) {
        return 0;
    }
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "cgroup must be None or (dirFd, procsFd, useClone)");
        return -1;
    }
    long long dir_fd, procs_fd;
    if (txs_int(PyTuple_GET_ITEM(obj, 0), "cgroup dirFd", 0, INT_MAX,
                &dir_fd) < 0 ||
            txs_int(PyTuple_GET_ITEM(obj, 1), "cgroup procsFd", -1, INT_MAX,
                    &procs_fd) < 0) {
        return -1;
    }
    int use_clone = PyObject_IsTrue(PyTuple_GET_ITEM(obj, 2));
    if (use_clone < 0) {
        return -1;
    }
    cgroup->dir_fd = (int)dir_fd;
    cgroup->procs_fd = (int)procs_fd;
    cgroup->use_clone = use_clone;
    *given = 1;
    return 0;
}

/* None, or (stage, errno): tests' fault injection. */
static int
txs_convert_fault(PyObject *obj, struct txs_plan *plan)
{
    if (obj == Py_None) {
        return 0;
    }
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 2) {
        PyErr_SetString(PyExc_TypeError, "fault must be None or (stage, errno)");
        return -1;
    }
    long long stage, err;
    if (txs_int(PyTuple_GET_ITEM(obj, 0), "fault stage", 1, INT_MAX,
                &stage) < 0 ||
            txs_int(PyTuple_GET_ITEM(obj, 1), "fault errno", 1, 4095,
                    &err) < 0) {
        return -1;
    }
    plan->fault_stage = (int)stage;
    plan->fault_errno = (int)err;
    return 0;
}

/*
 * Test-only fault injection, compiled in always and inert unless armed by
 * _failAfterSpawn(step): the next spawn that reaches post-clone step `step`
 * fails there with MemoryError, as if that allocation had failed.  The steps
 * are every point after the clone where building the result can fail.
 * Process-wide (like the probe cache); read and written with the GIL held.
 */
enum {
    TXS_STEP_NONE = 0,
    TXS_STEP_RECORD = 1,    /* the bytes of a failed child's record */
    TXS_STEP_RESULT = 2,    /* the result tuple */
    TXS_NSTEPS = 2
};

static int txs_fail_step = TXS_STEP_NONE;

static int
txs_step_fails(int step)
{
    if (txs_fail_step != step) {
        return 0;
    }
    txs_fail_step = TXS_STEP_NONE;
    PyErr_NoMemory();
    return 1;
}

/* Get rid of the child of an outcome that will not be returned (with the
   Python error left as it is). */
static void
txs_discard_outcome(struct txs_outcome *out)
{
    if (out->pid <= 0 || out->record_len > 0) {
        return;  /* no child, or a failed one that txs_spawn reaped */
    }
    Py_BEGIN_ALLOW_THREADS
    txs_discard(out->pid, out->pidfd, 1);
    Py_END_ALLOW_THREADS
    out->pid = -1;
    out->pidfd = -1;
    if (out->status_fd >= 0) {
        close(out->status_fd);
        out->status_fd = -1;
    }
}

/* The cgroup part of spawn()'s flags. */
static long
txs_cgroup_flags(const struct txs_outcome *out)
{
    long flags = (long)out->cgroup_refused << TXS_CGROUP_ERRNO_SHIFT;
    if (out->cgroup_placement == TXS_PLACED_CLONE) {
        flags |= TXS_FLAG_CGROUP_CLONE;
    }
    else if (out->cgroup_placement == TXS_PLACED_PROCS) {
        flags |= TXS_FLAG_CGROUP_PROCS;
    }
    if (out->cgroup_killed) {
        flags |= TXS_FLAG_CGROUP_KILLED;
    }
    if (out->cgroup_no_clone3) {
        flags |= TXS_FLAG_CGROUP_NO_CLONE3;
    }
    return flags;
}

PyDoc_STRVAR(txs_spawn_doc,
"spawn(candidates, argv, envp, cwd, ops, errFd, slots, filesBound,\n"
"      reserved, newSession, ctty, processGroup, umask, rlimits,\n"
"      groups, groupsImplicit, gid, uid, deathSignal, signalMask,\n"
"      allow, namespaces, init, fault, cgroup)\n"
"    -> (pid, pidfd, record, flags, statusFd)\n"
"\n"
"Spawn one child; see txspawn/_cspawn.pyi.  record is None when the exec\n"
"succeeded, else the bytes read from the error pipe (the child has been\n"
"reaped).  Parent-side failures raise OSError.");

static PyObject *
txs_py_spawn(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != TXS_NARGS) {
        PyErr_Format(PyExc_TypeError, "spawn() takes %d arguments (%zd given)",
                     TXS_NARGS, nargs);
        return NULL;
    }
    struct txs_plan plan;
    struct txs_alloc a;
    struct txs_slots slots;
    struct txs_outcome out;
    struct txs_cgroup cgroup;
    int has_cgroup = 0;
    long long v;
    memset(&plan, 0, sizeof(plan));
    memset(&a, 0, sizeof(a));
    memset(&slots, 0, sizeof(slots));
    PyObject *result = NULL;

    if ((a.candidates = txs_bytes_array(args[0], "candidates", 1)) == NULL ||
            (a.argv = txs_bytes_array(args[1], "argv", 0)) == NULL ||
            (a.envp = txs_bytes_array(args[2], "envp", 0)) == NULL) {
        goto done;
    }
    plan.candidates = a.candidates;
    plan.argv = a.argv;
    plan.envp = a.envp;
    if (args[3] != Py_None) {
        if (!PyBytes_Check(args[3]) ||
                (Py_ssize_t)strlen(PyBytes_AS_STRING(args[3])) !=
                PyBytes_GET_SIZE(args[3])) {
            PyErr_SetString(PyExc_TypeError,
                            "cwd must be None or bytes without NUL");
            goto done;
        }
        plan.cwd = PyBytes_AS_STRING(args[3]);
    }
    if (txs_convert_ops(args[4], &plan, &a) < 0) {
        goto done;
    }
    if (txs_int(args[5], "errFd", -1, INT_MAX, &v) < 0) {
        goto done;
    }
    plan.err_target = (int)v;
    if (txs_convert_slots(args[6], &slots, &a) < 0) {
        goto done;
    }
    if (txs_int(args[7], "filesBound", 0, INT_MAX, &v) < 0) {
        goto done;
    }
    plan.files_bound = (unsigned)v;
    if (txs_convert_reserved(args[8], &slots) < 0) {
        goto done;
    }
    if (plan.files_bound > 0 && (slots.slot_fd < 0 ||
            plan.files_bound != (unsigned)slots.slot_fd + 1)) {
        PyErr_SetString(PyExc_ValueError,
                        "slot mode (filesBound > 0) needs the reserved "
                        "socket, and filesBound one above its fd");
        goto done;
    }
    if (plan.files_bound == 0 && plan.err_target < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "errFd must be an fd outside slot mode");
        goto done;
    }
    plan.new_session = PyObject_IsTrue(args[9]);
    plan.ctty = PyObject_IsTrue(args[10]);
    if (plan.new_session < 0 || plan.ctty < 0) {
        goto done;
    }
    if (txs_int(args[11], "processGroup", -1, INT_MAX, &v) < 0) {
        goto done;
    }
    plan.process_group = (pid_t)v;
    if (txs_int(args[12], "umask", -1, 0777, &v) < 0) {
        goto done;
    }
    plan.umask = (int)v;
    if (txs_convert_rlimits(args[13], &plan, &a) < 0 ||
            txs_convert_groups(args[14], &plan, &a) < 0) {
        goto done;
    }
    plan.groups_implicit = PyObject_IsTrue(args[15]);
    if (plan.groups_implicit < 0) {
        goto done;
    }
    if (txs_int(args[16], "gid", -1, (long long)UINT32_MAX - 1, &v) < 0) {
        goto done;
    }
    plan.gid = (gid_t)v;
    if (txs_int(args[17], "uid", -1, (long long)UINT32_MAX - 1, &v) < 0) {
        goto done;
    }
    plan.uid = (uid_t)v;
    if (txs_int(args[18], "deathSignal", 0, 64, &v) < 0) {
        goto done;
    }
    plan.death_signal = (int)v;
    if (txs_convert_mask(args[19], &plan) < 0) {
        goto done;
    }
    if (txs_int(args[20], "allow", 0, TXS_ALLOW_ALL, &v) < 0) {
        goto done;
    }
    unsigned allow = (unsigned)v;
    if (txs_convert_namespaces(args[21], &plan) < 0 ||
            txs_convert_init(args[22], &plan, &a) < 0 ||
            txs_convert_fault(args[23], &plan) < 0 ||
            txs_convert_cgroup(args[24], &cgroup, &has_cgroup) < 0) {
        goto done;
    }
    if ((args[21] != Py_None || plan.init_path != NULL) &&
            plan.files_bound > 0) {
        PyErr_SetString(PyExc_ValueError,
                        "namespaces and init need the error pipe: not in "
                        "slot mode (filesBound > 0)");
        goto done;
    }
    if (plan.init_path != NULL &&
            (plan.status_target == plan.err_target ||
             !(plan.ns.clone_flags & CLONE_NEWPID))) {
        PyErr_SetString(PyExc_ValueError,
                        "init needs a pid namespace and a statusFd other "
                        "than errFd");
        goto done;
    }

    int rc;
    /* From here to the end of the exec (or the failure record) no Python
       object is touched: other threads run while the child is set up. */
    Py_BEGIN_ALLOW_THREADS
    rc = txs_spawn(&plan, plan.files_bound > 0 ? &slots : NULL, allow,
                   has_cgroup ? &cgroup : NULL, &out);
    Py_END_ALLOW_THREADS

    if (rc < 0) {
        /* No child was created (txs_spawn fails only before the clone or
           at it).  With a cgroup, the exception carries the flags (why
           the clone did not place the child) as its cgroupFlags. */
        PyObject *exc = PyObject_CallFunction(
            PyExc_OSError, "is", out.err,
            out.what != NULL ? out.what : "spawn");
        if (exc != NULL && has_cgroup) {
            PyObject *flags = PyLong_FromLong(txs_cgroup_flags(&out));
            if (flags == NULL ||
                    PyObject_SetAttrString(exc, "cgroupFlags", flags) < 0) {
                Py_CLEAR(exc);
            }
            Py_XDECREF(flags);
        }
        if (exc != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            Py_DECREF(exc);
        }
        goto done;
    }
    /* From here a child may exist that only out knows of: every failure
       below must get rid of it (txs_discard_outcome), or nobody ever
       would.  (A failed child was reaped by txs_spawn, its pidfd closed.) */
    PyObject *record;
    if (out.record_len > 0) {
        record = txs_step_fails(TXS_STEP_RECORD)
                 ? NULL
                 : PyBytes_FromStringAndSize((const char *)out.record,
                                             (Py_ssize_t)out.record_len);
        if (record == NULL) {
            goto discard;
        }
    }
    else {
        record = Py_NewRef(Py_None);
    }
    if (txs_step_fails(TXS_STEP_RESULT)) {
        Py_DECREF(record);
        goto discard;
    }
    /* "N" gives record to the tuple, or releases it if that fails. */
    result = Py_BuildValue("iiNii", (int)out.pid, out.pidfd, record,
                           (out.used_vfork ? TXS_FLAG_VFORK : 0) |
                           (out.slots_foreign ? TXS_FLAG_SLOTS_FOREIGN : 0) |
                           (out.used_clone3 ? TXS_FLAG_CLONE3 : 0) |
                           (out.slots_unusable ? TXS_FLAG_SLOTS_UNUSABLE : 0) |
                           (out.used_vm ? TXS_FLAG_SHARED_VM : 0) |
                           txs_cgroup_flags(&out),
                           out.status_fd);
    if (result != NULL) {
        goto done;
    }

discard:
    txs_discard_outcome(&out);
done:
    txs_alloc_free(&a);
    return result;
}

PyDoc_STRVAR(txs_features_doc,
"features() -> dict[str, tuple[bool | None, str | None]]\n"
"\n"
"The C engine's cached probes: name -> (on, reason).  on is None while a\n"
"probe is not settled yet (the first spawn settles it); reason says why\n"
"a feature is off or unsettled.");

static PyObject *
txs_py_features(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    for (int i = 0; i < TXS_NFEATURES; i++) {
        const struct txs_feature *f = &txs_features[i];
        int state = f->state;
        const char *reason = state == TXS_ON ? NULL : f->reason;
        PyObject *on = state == TXS_UNKNOWN ? Py_None
                       : (state == TXS_ON ? Py_True : Py_False);
        PyObject *v = Py_BuildValue("(Oz)", on, reason);
        if (v == NULL || PyDict_SetItemString(d, f->name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

PyDoc_STRVAR(txs_selftest_doc,
"_clone3SelfTest() -> tuple[int, bool, bool]\n"
"\n"
"For tests: clone3(CLONE_VM|CLONE_VFORK) through the trampoline of a child\n"
"that writes to the parent's memory and returns 42.  Returns (wait status,\n"
"whether the write is visible, whether the child ran on its own stack);\n"
"OSError with the kernel's errno when clone3 is refused.");

static PyObject *
txs_py_selftest(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    int status = 0, ran = 0, on_stack = 0, rc;
    Py_BEGIN_ALLOW_THREADS
    rc = txs_clone3_selftest(&status, &ran, &on_stack);
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("(iNN)", status, PyBool_FromLong(ran),
                         PyBool_FromLong(on_stack));
}

PyDoc_STRVAR(txs_probecgroup_doc,
"probeCloneIntoCgroup(dirFd, /) -> int\n"
"\n"
"clone3(CLONE_VM|CLONE_VFORK|CLONE_INTO_CGROUP) of a child that _exits(0)\n"
"at once, into the cgroup v2 directory open on dirFd: the child's raw wait\n"
"status (0: it ran; SIGKILL: the kernel killed it before it ran), or\n"
"-errno when clone3 refused (-ENOSYS without the clone3 trampoline).\n"
"The child is reaped.  For `python -m txspawn info`.");

static PyObject *
txs_py_probecgroup(PyObject *module, PyObject *arg)
{
    (void)module;
    long long fd;
    if (txs_int(arg, "dirFd", 0, INT_MAX, &fd) < 0) {
        return NULL;
    }
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = txs_probe_clone_into_cgroup((int)fd);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(r);
}

PyDoc_STRVAR(txs_wait4_doc,
"wait4(pid, options, /) -> tuple[int, int, resource.struct_rusage]\n"
"\n"
"os.wait4, for the monitors' exit path: the same arguments, result, values\n"
"and errors (ChildProcessError for ECHILD, EINTR retried unless a signal\n"
"handler raises), built with fewer allocations.  The GIL is released only\n"
"when the call may block (options without WNOHANG).");

/* The module's state: resource.struct_rusage, looked up on the first
   wait4() (per module, so per interpreter). */
struct txs_state {
    PyTypeObject *struct_rusage;
};

static PyTypeObject *
txs_struct_rusage(PyObject *module)
{
    struct txs_state *state = PyModule_GetState(module);
    if (state->struct_rusage == NULL) {
        PyObject *resource = PyImport_ImportModule("resource");
        if (resource == NULL) {
            return NULL;
        }
        PyObject *type = PyObject_GetAttrString(resource, "struct_rusage");
        Py_DECREF(resource);
        if (type == NULL) {
            return NULL;
        }
        if (!PyType_Check(type)) {
            Py_DECREF(type);
            PyErr_SetString(PyExc_TypeError, "resource.struct_rusage is not a type");
            return NULL;
        }
        state->struct_rusage = (PyTypeObject *)type;
    }
    return state->struct_rusage;
}

static PyObject *
txs_rusage_new(PyTypeObject *type, const struct rusage *ru)
{
    PyObject *result = PyStructSequence_New(type);
    if (result == NULL) {
        return NULL;
    }
    /* The fields and conversions of os.wait4 (Modules/posixmodule.c): two
       float times, then the fourteen longs in struct order. */
    const long counters[] = {
        ru->ru_maxrss, ru->ru_ixrss,  ru->ru_idrss,  ru->ru_isrss,
        ru->ru_minflt, ru->ru_majflt, ru->ru_nswap,  ru->ru_inblock,
        ru->ru_oublock, ru->ru_msgsnd, ru->ru_msgrcv, ru->ru_nsignals,
        ru->ru_nvcsw,  ru->ru_nivcsw,
    };
    PyObject *item = PyFloat_FromDouble((double)ru->ru_utime.tv_sec +
                                        ru->ru_utime.tv_usec * 0.000001);
    if (item == NULL) {
        goto fail;
    }
    PyStructSequence_SET_ITEM(result, 0, item);
    item = PyFloat_FromDouble((double)ru->ru_stime.tv_sec +
                              ru->ru_stime.tv_usec * 0.000001);
    if (item == NULL) {
        goto fail;
    }
    PyStructSequence_SET_ITEM(result, 1, item);
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        item = PyLong_FromLong(counters[i]);
        if (item == NULL) {
            goto fail;
        }
        PyStructSequence_SET_ITEM(result, (Py_ssize_t)(2 + i), item);
    }
    return result;
fail:
    /* Unset items are NULL, which the structseq's dealloc skips. */
    Py_DECREF(result);
    return NULL;
}

static int
txs_as_int(PyObject *obj, int *out)
{
    long value = PyLong_AsLong(obj);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < INT_MIN || value > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "signed integer is out of range for C int");
        return -1;
    }
    *out = (int)value;
    return 0;
}

static PyObject *
txs_py_wait4(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "wait4() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    int pid, options;
    if (txs_as_int(args[0], &pid) < 0 || txs_as_int(args[1], &options) < 0) {
        return NULL;
    }
    PyTypeObject *type = txs_struct_rusage(module);
    if (type == NULL) {
        return NULL;
    }
    int status = 0;
    /* Zeroed: the kernel fills it only when it reports a child, and
       os.wait4 answers zeros for "no child changed state yet". */
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t got;
    for (;;) {
        if (options & WNOHANG) {
            got = wait4((pid_t)pid, &status, options, &ru);
        }
        else {
            Py_BEGIN_ALLOW_THREADS
            got = wait4((pid_t)pid, &status, options, &ru);
            Py_END_ALLOW_THREADS
        }
        if (got >= 0 || errno != EINTR) {
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            return NULL;
        }
    }
    if (got < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *rusage = txs_rusage_new(type, &ru);
    if (rusage == NULL) {
        return NULL;
    }
    return Py_BuildValue("(iiN)", (int)got, status, rusage);
}

PyDoc_STRVAR(txs_openpty_doc,
"openpty() -> (master, slave, name)\n\n"
"Open a new pseudo-terminal: the master non-blocking, both ends\n"
"close-on-exec, neither becoming the caller's controlling terminal, and\n"
"the slave's path (b'/dev/pts/N', as ptsname()).  Raises OSError, with\n"
"nothing left open.");

/* os.openpty() plus os.ttyname() and the master's F_SETFL come to a dozen
   syscalls (ttyname alone does TCGETS, fstat, readlink and stat); this is
   four: open the multiplexer already non-blocking and close-on-exec,
   unlock, ask for the number, and open the peer through the master
   (TIOCGPTPEER, Linux 4.13) rather than by path. */
static PyObject *
txs_py_openpty(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    int master = -1, slave = -1, number = 0, unlock = 0;
    char name[32];
    master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (master < 0) {
        goto fail;
    }
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
        ioctl(master, TIOCGPTN, &number) < 0) {
        goto fail;
    }
    snprintf(name, sizeof name, "/dev/pts/%d", number);
#ifdef TIOCGPTPEER
    slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0 && errno != EINVAL && errno != ENOTTY) {
        goto fail;
    }
#endif
    if (slave < 0) {
        /* A kernel without TIOCGPTPEER: by path, as glibc's openpty. */
        slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0) {
            goto fail;
        }
    }
    PyObject *result = Py_BuildValue("(iiy)", master, slave, name);
    if (result == NULL) {
        close(slave);
        close(master);
    }
    return result;
fail:
    {
        int saved = errno;
        if (master >= 0) {
            close(master);
        }
        errno = saved;
    }
    return PyErr_SetFromErrno(PyExc_OSError);
}

PyDoc_STRVAR(txs_failafter_doc,
"_failAfterSpawn(step, /) -> None\n"
"\n"
"For tests: make the next spawn that reaches post-clone step `step`\n"
"(1 to POST_SPAWN_STEPS: the failed child's record, the result tuple) fail\n"
"there with MemoryError, as if the allocation had failed; 0 disarms.  The\n"
"spawn must then leave no child, zombie or fd behind.");

static PyObject *
txs_py_failafter(PyObject *module, PyObject *arg)
{
    (void)module;
    long long step;
    if (txs_int(arg, "step", 0, TXS_NSTEPS, &step) < 0) {
        return NULL;
    }
    txs_fail_step = (int)step;
    Py_RETURN_NONE;
}

/* discardChild's pid and pidfd (-1 or None: none). */
static int
txs_pid_pidfd(PyObject *pid_obj, PyObject *pidfd_obj, pid_t *pid, int *pidfd)
{
    long long v;
    if (txs_int(pid_obj, "pid", 1, INT_MAX, &v) < 0) {
        return -1;
    }
    *pid = (pid_t)v;
    *pidfd = -1;
    if (pidfd_obj != Py_None) {
        if (txs_int(pidfd_obj, "pidfd", -1, INT_MAX, &v) < 0) {
            return -1;
        }
        *pidfd = (int)v;
    }
    return 0;
}

PyDoc_STRVAR(txs_discardchild_doc,
"discardChild(pid, pidfd, /) -> None\n"
"\n"
"Kill (SIGKILL) and reap a child that nobody owns yet; its pidfd (or None)\n"
"is used, not closed.  One C call, so no signal handler can stop it half\n"
"way: see txspawn._kernel.childhandle.discardChild.");

static PyObject *
txs_py_discardchild(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "discardChild() takes exactly 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    pid_t pid;
    int pidfd;
    if (txs_pid_pidfd(args[0], args[1], &pid, &pidfd) < 0) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    txs_discard(pid, pidfd, 0);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(txs_discard_doc,
"discard(outcomes, /) -> None\n"
"\n"
"The clean-up of CSpawner.spawn: for each (pid, pidfd, record, flags,\n"
"statusFd) that spawn() returned with no record (a started child), kill\n"
"the child, reap it and close its pidfd and status pipe.  One C call, so\n"
"no signal handler can stop it half way.  Call it once for a given list.");

static PyObject *
txs_py_discard(PyObject *module, PyObject *outcomes)
{
    (void)module;
    if (!PyList_Check(outcomes)) {
        PyErr_Format(PyExc_TypeError, "outcomes must be a list, not %.100s",
                     Py_TYPE(outcomes)->tp_name);
        return NULL;
    }
    int bad = 0;
    /* The list cannot change meanwhile: only txs_discard runs, without
       touching it, while the GIL is released. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(outcomes); i++) {
        PyObject *item = PyList_GET_ITEM(outcomes, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 5) {
            bad = 1;
            continue;
        }
        if (PyTuple_GET_ITEM(item, 2) != Py_None) {
            continue;  /* a failed child, reaped by spawn() */
        }
        long long pid, pidfd, status_fd;
        if (txs_int(PyTuple_GET_ITEM(item, 0), "pid", INT_MIN, INT_MAX,
                    &pid) < 0 ||
                txs_int(PyTuple_GET_ITEM(item, 1), "pidfd", -1, INT_MAX,
                        &pidfd) < 0 ||
                txs_int(PyTuple_GET_ITEM(item, 4), "statusFd", -1, INT_MAX,
                        &status_fd) < 0) {
            PyErr_Clear();
            bad = 1;
            continue;
        }
        if (pid <= 0) {
            continue;  /* no child: slot mode was not usable */
        }
        Py_BEGIN_ALLOW_THREADS
        txs_discard((pid_t)pid, (int)pidfd, 1);
        if (status_fd >= 0) {
            close((int)status_fd);
        }
        Py_END_ALLOW_THREADS
    }
    if (bad) {
        PyErr_SetString(PyExc_TypeError,
                        "outcomes must hold what spawn() returns");
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(txs_complete_doc,
"completeCleanup(function, /, *args) -> None\n"
"\n"
"Call function(*args) again and again until it returns without raising,\n"
"then raise the first exception it raised, if any: see\n"
"txspawn._kernel.childhandle.completeCleanup.");

/* More failed attempts than any run of interrupts: a clean-up that fails
   this often in a row is broken, not interrupted. */
#define TXS_CLEANUP_ATTEMPTS 100

static PyObject *
txs_py_complete(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "completeCleanup() needs a function to call");
        return NULL;
    }
    /* The first exception raised: what interrupted the clean-up. */
    PyObject *first = NULL;
    for (int attempt = 0;; attempt++) {
        /* No PyErr_CheckSignals() here: between two attempts no signal
           handler can run, so none can raise outside the clean-up. */
        PyObject *res = PyObject_Vectorcall(args[0], args + 1,
                                            (size_t)(nargs - 1), NULL);
        if (res != NULL) {
            Py_DECREF(res);
            break;
        }
        if (attempt + 1 >= TXS_CLEANUP_ATTEMPTS) {
            /* Give up: this last error propagates. */
            Py_XDECREF(first);
            return NULL;
        }
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *exc = PyErr_GetRaisedException();
#else
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb != NULL && value != NULL) {
            PyException_SetTraceback(value, tb);
        }
        Py_XDECREF(type);
        Py_XDECREF(tb);
        PyObject *exc = value;
#endif
        if (first == NULL) {
            first = exc;
        }
        else {
            Py_XDECREF(exc);
        }
    }
    if (first != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(first), first);
        Py_DECREF(first);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef txs_methods[] = {
    {"openpty", txs_py_openpty, METH_NOARGS, txs_openpty_doc},
    {"wait4", (PyCFunction)(void (*)(void))txs_py_wait4, METH_FASTCALL,
     txs_wait4_doc},
    {"_clone3SelfTest", txs_py_selftest, METH_NOARGS, txs_selftest_doc},
    {"spawn", (PyCFunction)(void (*)(void))txs_py_spawn, METH_FASTCALL,
     txs_spawn_doc},
    {"features", txs_py_features, METH_NOARGS, txs_features_doc},
    {"discard", txs_py_discard, METH_O, txs_discard_doc},
    {"discardChild", (PyCFunction)(void (*)(void))txs_py_discardchild,
     METH_FASTCALL, txs_discardchild_doc},
    {"completeCleanup", (PyCFunction)(void (*)(void))txs_py_complete,
     METH_FASTCALL, txs_complete_doc},
    {"_failAfterSpawn", txs_py_failafter, METH_O, txs_failafter_doc},
    {"probeCloneIntoCgroup", txs_py_probecgroup, METH_O,
     txs_probecgroup_doc},
    {NULL, NULL, 0, NULL},
};

static int
txs_add_int(PyObject *m, const char *name, long value)
{
    return PyModule_AddIntConstant(m, name, value);
}

static int
txs_exec_module(PyObject *m)
{
    txs_probe_init();
    PyObject *magic = PyBytes_FromStringAndSize("TXSP", 4);
    if (magic == NULL || PyModule_AddObject(m, "MAGIC", magic) < 0) {
        Py_XDECREF(magic);
        return -1;
    }
    static const struct { const char *name; long value; } ints[] = {
        {"RECORD_SIZE", (long)sizeof(struct txs_record)},
        {"CLOSE_RANGE_MAX", (long)TXS_CLOSE_RANGE_MAX},
        {"ALLOW_VFORK", TXS_ALLOW_VFORK},
        {"ALLOW_CLONE_PIDFD", TXS_ALLOW_CLONE_PIDFD},
        {"ALLOW_PIDFD_OPEN", TXS_ALLOW_PIDFD_OPEN},
        {"ALLOW_CLONE3", TXS_ALLOW_CLONE3},
        {"ALLOW_ALL", TXS_ALLOW_ALL},
        {"FLAG_VFORK", TXS_FLAG_VFORK},
        {"FLAG_SLOTS_FOREIGN", TXS_FLAG_SLOTS_FOREIGN},
        {"FLAG_CLONE3", TXS_FLAG_CLONE3},
        {"FLAG_SLOTS_UNUSABLE", TXS_FLAG_SLOTS_UNUSABLE},
        {"FLAG_SHARED_VM", TXS_FLAG_SHARED_VM},
        {"FLAG_CGROUP_CLONE", TXS_FLAG_CGROUP_CLONE},
        {"FLAG_CGROUP_PROCS", TXS_FLAG_CGROUP_PROCS},
        {"FLAG_CGROUP_KILLED", TXS_FLAG_CGROUP_KILLED},
        {"FLAG_CGROUP_NO_CLONE3", TXS_FLAG_CGROUP_NO_CLONE3},
        {"CGROUP_ERRNO_SHIFT", TXS_CGROUP_ERRNO_SHIFT},
        {"MAX_SLOT_FDS", TXS_MAX_RECV},
        {"POST_SPAWN_STEPS", TXS_NSTEPS},
        {"FDOP_DUP2", TXS_FDOP_DUP2},
        {"FDOP_DUP2_CLOEXEC", TXS_FDOP_DUP2_CLOEXEC},
        {"FDOP_CLEAR_CLOEXEC", TXS_FDOP_CLEAR_CLOEXEC},
        {"FDOP_CLOSE", TXS_FDOP_CLOSE},
        {"FDOP_CLOSE_RANGE", TXS_FDOP_CLOSE_RANGE},
        {"STAGE_SPAWN", TXS_STAGE_SPAWN},
        {"STAGE_FDS", TXS_STAGE_FDS},
        {"STAGE_CLOSE_FDS", TXS_STAGE_CLOSE_FDS},
        {"STAGE_SIGNALS", TXS_STAGE_SIGNALS},
        {"STAGE_SETSID", TXS_STAGE_SETSID},
        {"STAGE_SETPGID", TXS_STAGE_SETPGID},
        {"STAGE_CTTY", TXS_STAGE_CTTY},
        {"STAGE_CHDIR", TXS_STAGE_CHDIR},
        {"STAGE_UMASK", TXS_STAGE_UMASK},
        {"STAGE_RLIMIT", TXS_STAGE_RLIMIT},
        {"STAGE_PDEATHSIG", TXS_STAGE_PDEATHSIG},
        {"STAGE_SETGROUPS", TXS_STAGE_SETGROUPS},
        {"STAGE_SETGID", TXS_STAGE_SETGID},
        {"STAGE_SETUID", TXS_STAGE_SETUID},
        {"STAGE_EXEC", TXS_STAGE_EXEC},
        {"STAGE_SYNC", TXS_STAGE_SYNC},
        {"STAGE_NAMESPACES", TXS_STAGE_NAMESPACES},
        {"STAGE_IDMAP", TXS_STAGE_IDMAP},
        {"STAGE_CGROUP", TXS_STAGE_CGROUP},
        {"STAGE_RESERVED_FD", TXS_STAGE_RESERVED_FD},
        {"STAGE_HOSTNAME", TXS_STAGE_HOSTNAME},
        {"STAGE_LOOPBACK", TXS_STAGE_LOOPBACK},
        {"STAGE_MOUNT_PROPAGATION", TXS_STAGE_MOUNT_PROPAGATION},
        {"STAGE_MOUNT_PROC", TXS_STAGE_MOUNT_PROC},
        {"STAGE_TIME_OFFSETS", TXS_STAGE_TIME_OFFSETS},
        {"STAGE_INIT", TXS_STAGE_INIT},
        {"IDMAP_SETGROUPS", TXS_IDMAP_SETGROUPS},
        {"IDMAP_GID_MAP", TXS_IDMAP_GID_MAP},
        {"IDMAP_UID_MAP", TXS_IDMAP_UID_MAP},
        {"TIME_UNSHARE", TXS_TIME_UNSHARE},
        {"TIME_WRITE", TXS_TIME_WRITE},
    };
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (txs_add_int(m, ints[i].name, ints[i].value) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyModuleDef_Slot txs_slots[] = {
    {Py_mod_exec, txs_exec_module},
#ifdef Py_mod_multiple_interpreters
    /* The Python-level state is per module (struct txs_state); the C-level
       probe cache is process-wide, like the kernel it describes. */
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static int
txs_traverse(PyObject *module, visitproc visit, void *arg)
{
    struct txs_state *state = PyModule_GetState(module);
    Py_VISIT(state->struct_rusage);
    return 0;
}

static int
txs_clear(PyObject *module)
{
    struct txs_state *state = PyModule_GetState(module);
    Py_CLEAR(state->struct_rusage);
    return 0;
}

static void
txs_free(void *module)
{
    (void)txs_clear((PyObject *)module);
}

static struct PyModuleDef txs_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "txspawn._cspawn",
    .m_doc = "The txspawn C spawn engine (see txspawn._engine.cengine).",
    .m_size = sizeof(struct txs_state),
    .m_methods = txs_methods,
    .m_slots = txs_slots,
    .m_traverse = txs_traverse,
    .m_clear = txs_clear,
    .m_free = txs_free,
};

PyMODINIT_FUNC
PyInit__cspawn(void)
{
    return PyModuleDef_Init(&txs_module);
}
