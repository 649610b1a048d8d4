/* Per-task attributes: rseq registration, robust futex list, clear-tid
 * address, personality, comm, nice, scheduling policy, CPU affinity,
 * oom_score_adj, the child-subreaper flag, THP disable, timer slack, loginuid,
 * membarrier registrations, rlimits, umask (the last two are applied by the
 * new task itself before it is seized, see restore.c). The parent-death
 * signal is read here and set at the very end of transplant() (restore.c):
 * changing credentials clears it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#define RSEQ_FLAG_UNREGISTER 1

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif
/* Linux 6.3: the MEMBARRIER_CMD_REGISTER_* bits of the caller's mm */
#define MEMBARRIER_CMD_GET_REGS (1 << 9)
#define MEMBARRIER_REGISTERS                                                                       \
	(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED |    \
	 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE |                                     \
	 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ)
#define LOGINUID_UNSET 0xffffffffU

/* From linux/ptrace.h, which clashes with glibc's sys/ptrace.h. */
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
struct ptrace_rseq_configuration {
	uint64_t rseq_abi_pointer;
	uint32_t rseq_abi_size;
	uint32_t signature;
	uint32_t flags;
	uint32_t pad;
};

static int read_int_file(pid_t pid, const char *name, long *ret, cd_err *err)
{
	_cleanup_free_ char *buf = NULL;
	int r = cd_proc_read_file(pid, name, &buf, NULL, err);

	if (r < 0)
		return r;
	*ret = strtol(buf, NULL, strcmp(name, "personality") ? 10 : 16);
	return 0;
}

static int get_rseq(pid_t pid, struct ptrace_rseq_configuration *c, cd_err *err)
{
	memset(c, 0, sizeof(*c));
	if (ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid, (void *)sizeof(*c),
	           c) < 0)
		return cd_err_sys(err, errno, "pid %d: read rseq configuration", pid);
	return 0;
}

static int read_sched(pid_t tid, int *policy, int *prio, int *reset_on_fork, cd_err *err)
{
	struct sched_param sp;
	int p = sched_getscheduler(tid);

	if (p < 0)
		return cd_err_sys(err, errno, "tid %d: sched_getscheduler", tid);
	if (sched_getparam(tid, &sp) < 0)
		return cd_err_sys(err, errno, "tid %d: sched_getparam", tid);
	*reset_on_fork = !!(p & SCHED_RESET_ON_FORK);
	*policy = p & ~SCHED_RESET_ON_FORK;
	*prio = sp.sched_priority;
	if (*policy == SCHED_DEADLINE)
		return cd_err_set(err, EOPNOTSUPP, "tid %d: SCHED_DEADLINE is not supported", tid);
	if (*policy > SCHED_IDLE || *prio < 0 || *prio > 99)
		return cd_err_set(err, EOPNOTSUPP, "tid %d: scheduling policy %d priority %d", tid,
		                  *policy, *prio);
	return 0;
}

static int dump_sched(struct cd_task *t, cd_err *err)
{
	return read_sched(t->pid, &t->sched_policy, &t->sched_prio, &t->sched_reset_on_fork, err);
}

/* A prctl that reports an int through memory, by injection. */
static int get_prctl_int(struct cd_dump_ctx *ctx, const char *what, int op, int *ret, cd_err *err)
{
	int32_t v = 0;
	int r = cd_call_ok(ctx->inj, what, SYS_prctl, (uint64_t)op, ctx->scratch, 0, 0, 0, 0, NULL,
	                   err);

	if (r >= 0)
		r = cd_inject_read_mem(ctx->inj, ctx->scratch, &v, sizeof(v), err);
	if (r >= 0)
		*ret = v;
	return r;
}

/* Before Linux 6.3 the registrations cannot be asked for: a private
 * expedited barrier fails with EPERM unless the mm registered for it; the
 * global expedited registration stays unseen (docs/engine.md). */
static int dump_membarrier(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	static const int probes[] = {MEMBARRIER_CMD_PRIVATE_EXPEDITED,
	                             MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
	                             MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ};
	long v;
	int r = cd_call(ctx->inj, SYS_membarrier, MEMBARRIER_CMD_GET_REGS, 0, 0, 0, 0, 0, &v, err);

	if (r < 0)
		return r;
	if (v >= 0) {
		if (v & ~(long)MEMBARRIER_REGISTERS)
			return cd_err_set(err, EOPNOTSUPP, "pid %d: membarrier registrations %#lx",
			                  t->pid, v);
		t->membarrier = (uint32_t)v;
		return 0;
	}
	if (v != -EINVAL && v != -ENOSYS)
		return cd_err_sys(err, (int)-v, "pid %d: membarrier get registrations", t->pid);
	t->membarrier = 0;
	for (size_t i = 0; v != -ENOSYS && i < ARRAY_SIZE(probes); i++) {
		if ((r = cd_call(ctx->inj, SYS_membarrier, (uint64_t)probes[i], 0, 0, 0, 0, 0, &v,
		                 err)) < 0)
			return r;
		if (v == 0)
			t->membarrier |= (uint32_t)probes[i] << 1; /* its REGISTER command */
	}
	return 0;
}

static int dump_prctls(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	long v;
	int r;

	if ((r = get_prctl_int(ctx, "prctl(PR_GET_PDEATHSIG)", PR_GET_PDEATHSIG, &t->pdeathsig,
	                       err)) < 0 ||
	    (r = get_prctl_int(ctx, "prctl(PR_GET_CHILD_SUBREAPER)", PR_GET_CHILD_SUBREAPER,
	                       &t->child_subreaper, err)) < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	/* The root's parent is not part of the checkpoint: after a restore it
	 * is the restorer, which goes away at once. */
	if (t->pdeathsig && t->pid == ctx->img->root)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: parent-death signal %d (PR_SET_PDEATHSIG) on the root of "
		    "the tree, whose parent is not in the checkpoint",
		    t->pid, t->pdeathsig);
	if ((r = cd_call_ok(ctx->inj, "prctl(PR_GET_THP_DISABLE)", SYS_prctl, PR_GET_THP_DISABLE, 0,
	                    0, 0, 0, 0, &v, err)) < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	t->thp_disable = (int)v;
	if ((r = cd_call_ok(ctx->inj, "prctl(PR_GET_TIMERSLACK)", SYS_prctl, PR_GET_TIMERSLACK, 0,
	                    0, 0, 0, 0, &v, err)) < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	t->timer_slack_ns = (uint64_t)v;
	return dump_membarrier(ctx, t, err);
}

static int dump_loginuid(struct cd_task *t, cd_err *err)
{
	_cleanup_free_ char *buf = NULL;
	cd_err ignored = {0};

	/* no audit support: nothing to restore either */
	if (cd_proc_read_file(t->pid, "loginuid", &buf, NULL, &ignored) < 0) {
		t->loginuid = LOGINUID_UNSET;
		return 0;
	}
	t->loginuid = (uint32_t)strtoul(buf, NULL, 10);
	return 0;
}

static int attrs_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	struct ptrace_rseq_configuration rc;
	struct cd_proc_status st;
	cpu_set_t cpus;
	long v;
	int r;

	if ((r = get_rseq(t->pid, &rc, err)) < 0)
		return r;
	t->rseq_addr = rc.rseq_abi_pointer;
	t->rseq_len = rc.rseq_abi_size;
	t->rseq_sig = rc.signature;
	if (syscall(SYS_get_robust_list, t->pid, &t->robust_head, &t->robust_len) < 0)
		return cd_err_sys(err, errno, "pid %d: get_robust_list", t->pid);
	r = cd_call_ok(ctx->inj, "prctl(PR_GET_TID_ADDRESS)", SYS_prctl, PR_GET_TID_ADDRESS,
	               ctx->scratch, 0, 0, 0, 0, NULL, err);
	if (r >= 0)
		r = cd_inject_read_mem(ctx->inj, ctx->scratch, &t->clear_tid, 8, err);
	if (r < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	if ((r = read_int_file(t->pid, "personality", &v, err)) < 0)
		return r;
	t->personality = (unsigned long)v;
	if ((r = read_int_file(t->pid, "oom_score_adj", &v, err)) < 0)
		return r;
	t->oom_score_adj = (int)v;
	if (sched_getaffinity(t->pid, sizeof(cpus), &cpus) < 0)
		return cd_err_sys(err, errno, "pid %d: sched_getaffinity", t->pid);
	memcpy(t->affinity, &cpus,
	       sizeof(t->affinity) < sizeof(cpus) ? sizeof(t->affinity) : sizeof(cpus));
	if ((r = cd_proc_status(t->pid, &st, err)) < 0)
		return r;
	t->umask = st.umask;
	t->no_new_privs = st.no_new_privs;
	if ((r = dump_sched(t, err)) < 0 || (r = dump_prctls(ctx, t, err)) < 0 ||
	    (r = dump_loginuid(t, err)) < 0)
		return r;
	return cd_proc_limits(t->pid, t->rlim, CD_NRLIMIT, err);
}

static int dump_thread_name(const struct cd_task *t, struct cd_thread *th, cd_err *err)
{
	_cleanup_free_ char *buf = NULL;
	char name[64];
	size_t len;

	snprintf(name, sizeof(name), "task/%d/comm", th->tid);
	int r = cd_proc_read_file(t->pid, name, &buf, &len, err);
	if (r < 0)
		return r;
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(th->comm, sizeof(th->comm), "%s", buf);
	return 0;
}

static int got_clear_tid(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	struct cd_thread *th = arg;

	(void)arg2, (void)ret, (void)err;
	memcpy(&th->clear_tid, out, sizeof(th->clear_tid));
	return 0;
}

static int got_timer_slack(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	struct cd_thread *th = arg;

	(void)arg2, (void)out, (void)err;
	th->timer_slack_ns = (uint64_t)ret;
	return 0;
}

/* A parent-death signal is refused: a new thread has none and setting one
 * by name of the thread is not done yet. */
static int got_pdeathsig(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	const struct cd_thread *th = arg;
	const struct cd_task *t = arg2;
	int32_t sig;

	(void)ret;
	memcpy(&sig, out, sizeof(sig));
	if (sig)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d (%s): thread %d (%s): a parent-death signal (%d) on a "
		                  "thread other than the main one is not supported",
		                  t->pid, t->comm, th->tid, th->comm, sig);
	return 0;
}

/* Read by injected calls in the thread, queued in its batch: its
 * clear-tid address, timer slack and parent-death signal. */
static int dump_thread_prctls(struct cd_dump_ctx *ctx, const struct cd_task *t,
                              struct cd_thread *th, cd_err *err)
{
	struct cd_batch *b = ctx->batch;
	int r = cd_batch_reserve(b, 3, sizeof(th->clear_tid) + 8 + sizeof(int32_t), err);

	if (r < 0)
		return r;
	uint64_t tid_at = cd_batch_buf(b, NULL, sizeof(th->clear_tid));
	uint64_t sig_at = cd_batch_buf(b, NULL, sizeof(int32_t));
	cd_batch_add(b, "prctl(PR_GET_TID_ADDRESS)", SYS_prctl, PR_GET_TID_ADDRESS, tid_at, 0, 0, 0,
	             0, NULL);
	cd_batch_then(b, got_clear_tid, th, NULL, tid_at, sizeof(th->clear_tid));
	cd_batch_add(b, "prctl(PR_GET_TIMERSLACK)", SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0, 0,
	             NULL);
	cd_batch_then(b, got_timer_slack, th, NULL, 0, 0);
	cd_batch_add(b, "prctl(PR_GET_PDEATHSIG)", SYS_prctl, PR_GET_PDEATHSIG, sig_at, 0, 0, 0, 0,
	             NULL);
	cd_batch_then(b, got_pdeathsig, th, t, sig_at, sizeof(int32_t));
	return 0;
}

static int attrs_dump_thread(struct cd_dump_ctx *ctx, const struct cd_task *t, struct cd_thread *th,
                             cd_err *err)
{
	struct ptrace_rseq_configuration rc;
	cpu_set_t cpus;
	int r;

	if ((r = dump_thread_name(t, th, err)) < 0 || (r = get_rseq(th->tid, &rc, err)) < 0)
		return r;
	th->rseq_addr = rc.rseq_abi_pointer;
	th->rseq_len = rc.rseq_abi_size;
	th->rseq_sig = rc.signature;
	if (syscall(SYS_get_robust_list, th->tid, &th->robust_head, &th->robust_len) < 0)
		return cd_err_sys(err, errno, "tid %d: get_robust_list", th->tid);
	errno = 0;
	th->nice = getpriority(PRIO_PROCESS, (id_t)th->tid);
	if (errno)
		return cd_err_sys(err, errno, "tid %d: getpriority", th->tid);
	if (sched_getaffinity(th->tid, sizeof(cpus), &cpus) < 0)
		return cd_err_sys(err, errno, "tid %d: sched_getaffinity", th->tid);
	memcpy(th->affinity, &cpus,
	       sizeof(th->affinity) < sizeof(cpus) ? sizeof(th->affinity) : sizeof(cpus));
	if ((r = read_sched(th->tid, &th->sched_policy, &th->sched_prio, &th->sched_reset_on_fork,
	                    err)) < 0)
		return r;
	return dump_thread_prctls(ctx, t, th, err);
}

int cd_attrs_reset(cd_inject *inj, cd_err *err)
{
	struct ptrace_rseq_configuration rc;
	int r = get_rseq(cd_inject_pid(inj), &rc, err);

	if (r < 0 || !rc.rseq_abi_pointer)
		return r;
	return cd_call_ok(inj, "rseq unregister", SYS_rseq, rc.rseq_abi_pointer, rc.rseq_abi_size,
	                  RSEQ_FLAG_UNREGISTER, rc.signature, 0, 0, NULL, err);
}

static int write_oom_score_adj(pid_t pid, int v, cd_err *err)
{
	char path[64], buf[16];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	int n = snprintf(buf, sizeof(buf), "%d", v);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return cd_err_sys(err, errno, "write %s", path);
	return 0;
}

static int restore_prctls(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	cd_inject *inj = ctx->inj;
	int r;

	if ((r = cd_call_ok(inj, "prctl(PR_SET_CHILD_SUBREAPER)", SYS_prctl, PR_SET_CHILD_SUBREAPER,
	                    (uint64_t)t->child_subreaper, 0, 0, 0, 0, NULL, err)) < 0)
		return r;
	return cd_call_ok(inj, "prctl(PR_SET_THP_DISABLE)", SYS_prctl, PR_SET_THP_DISABLE,
	                  (uint64_t)(t->thp_disable & 1),
	                  (uint64_t)(t->thp_disable & PR_THP_DISABLE_EXCEPT_ADVISED), 0, 0, 0, NULL,
	                  err);
}

/* Registrations cannot be undone: a new task has none, each is added. */
static int restore_membarrier(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	long v;
	int r;

	if (t->membarrier & ~(uint32_t)MEMBARRIER_REGISTERS)
		return cd_err_set(err, EINVAL, "membarrier registrations %#x", t->membarrier);
	for (uint32_t bit = 1; bit <= MEMBARRIER_REGISTERS; bit <<= 1)
		if ((t->membarrier & bit) &&
		    (r = cd_call_ok(ctx->inj, "membarrier register", SYS_membarrier, bit, 0, 0, 0,
		                    0, 0, NULL, err)) < 0)
			return cd_err_wrap(err, "membarrier command %#x", bit);
	if ((r = cd_call(ctx->inj, SYS_membarrier, MEMBARRIER_CMD_GET_REGS, 0, 0, 0, 0, 0, &v,
	                 err)) < 0)
		return r;
	if (v >= 0 && (uint32_t)v != t->membarrier)
		return cd_err_set(err, EEXIST, "membarrier registrations %#lx, not %#x", v,
		                  t->membarrier);
	return 0;
}

/* Only the task itself may write its loginuid: by injection, before the
 * credentials (CAP_AUDIT_CONTROL is needed unless it is still unset). */
static int restore_loginuid(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	static const char path[] = "/proc/self/loginuid";
	char buf[16];
	_cleanup_free_ char *cur = NULL;
	cd_err ignored = {0};
	long fd, n;
	int r;

	if (cd_proc_read_file(t->pid, "loginuid", &cur, NULL, &ignored) < 0) {
		if (t->loginuid == LOGINUID_UNSET)
			return 0;
		return cd_err_set(err, EOPNOTSUPP, "loginuid %u: no audit support here",
		                  t->loginuid);
	}
	if ((uint32_t)strtoul(cur, NULL, 10) == t->loginuid)
		return 0;
	int len = snprintf(buf, sizeof(buf), "%u", t->loginuid);
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, path, sizeof(path), err)) < 0 ||
	    (r = cd_inject_write_mem(ctx->inj, ctx->data + 64, buf, (size_t)len, err)) < 0)
		return r;
	/* The task still opens files as the job's owner (restore.c) and the
	 * file is root's: this one fixed path is opened as root. */
	long fsuid;
	if ((r = cd_call(ctx->inj, SYS_setfsuid, 0, 0, 0, 0, 0, 0, &fsuid, err)) < 0)
		return r;
	r = cd_call(ctx->inj, SYS_openat, (uint64_t)AT_FDCWD, ctx->data, O_WRONLY | O_CLOEXEC, 0, 0,
	            0, &fd, err);
	long ignored_ret;
	int r2 = cd_call(ctx->inj, SYS_setfsuid, (uint64_t)fsuid, 0, 0, 0, 0, 0, &ignored_ret,
	                 r < 0 ? &ignored : err);
	if (r < 0 || r2 < 0)
		return r < 0 ? r : r2;
	if (fd < 0)
		return cd_err_sys(err, (int)-fd, "loginuid %u: open %s", t->loginuid, path);
	r = cd_call(ctx->inj, SYS_write, (uint64_t)fd, ctx->data + 64, (uint64_t)len, 0, 0, 0, &n,
	            err);
	cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored_ret, &ignored);
	if (r < 0)
		return r;
	if (n < 0)
		return cd_err_sys(err, (int)-n, "set loginuid %u (from %s)", t->loginuid, cur);
	return 0;
}

/* What the task and each thread have of their own. */
struct own_attrs {
	uint64_t rseq_addr, rseq_sig, robust_head, robust_len, clear_tid;
	const uint64_t *timer_slack_ns; /* the image's: read after the batch ran */
	uint32_t rseq_len;
	int nice, sched_policy, sched_prio, sched_reset_on_fork;
	const char *comm;         /* 16 bytes */
	const uint64_t *affinity; /* 16 words */
};

#define OWN_ATTRS(x)                                                                               \
	{                                                                                          \
		.rseq_addr = (x)->rseq_addr, .rseq_sig = (x)->rseq_sig,                            \
		.robust_head = (x)->robust_head, .robust_len = (x)->robust_len,                    \
		.clear_tid = (x)->clear_tid, .timer_slack_ns = &(x)->timer_slack_ns,               \
		.rseq_len = (x)->rseq_len, .nice = (x)->nice, .sched_policy = (x)->sched_policy,   \
		.sched_prio = (x)->sched_prio, .sched_reset_on_fork = (x)->sched_reset_on_fork,    \
		.comm = (x)->comm, .affinity = (x)->affinity                                       \
	}

/* 0 means "the default", which is the restorer's slack, not the task's. */
static int check_timer_slack(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	const uint64_t *want = arg2;

	(void)arg, (void)out;
	if ((uint64_t)ret != *want)
		return cd_err_set(err, EINVAL, "timer slack %llu ns cannot be set (it is %ld)",
		                  (unsigned long long)*want, ret);
	return 0;
}

/* EINVAL: none of the recorded CPUs exists here; the task keeps all. */
static int check_affinity(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	(void)arg, (void)arg2, (void)out;
	if (ret < 0 && ret != -EINVAL)
		return cd_err_sys(err, (int)-ret, "sched_setaffinity");
	return 0;
}

/* Set by the thread itself (PRIO_PROCESS 0, policy and affinity of pid 0
 * are the calling thread's), queued in b in this order: rseq, robust
 * list, clear-tid address, name, the personality (the main thread's:
 * personality >= 0), nice, then the policy (a fair one keeps the nice
 * value, a real-time one keeps it for later), the timer slack after it (a
 * real-time task's is 0 and cannot be set) and read back, the affinity.
 * a's pointers outlive the batch (the image's). */
static int restore_own(struct cd_batch *b, const struct own_attrs *a, long personality, cd_err *err)
{
	const bool rt = a->sched_policy == SCHED_FIFO || a->sched_policy == SCHED_RR;
	struct sched_param sp = {.sched_priority = a->sched_prio};
	uint64_t policy =
	    (uint64_t)a->sched_policy | (a->sched_reset_on_fork ? SCHED_RESET_ON_FORK : 0);
	int r = cd_batch_reserve(b, 10, 16 + 8 + sizeof(sp) + 8 + 16 * sizeof(uint64_t), err);

	if (r < 0)
		return r;
	uint64_t comm_at = cd_batch_buf(b, a->comm, 16);
	uint64_t sp_at = cd_batch_buf(b, &sp, sizeof(sp));
	uint64_t aff_at = cd_batch_buf(b, a->affinity, 16 * sizeof(uint64_t));
	if (a->rseq_addr)
		cd_batch_add(b, "rseq", SYS_rseq, a->rseq_addr, a->rseq_len, 0, a->rseq_sig, 0, 0,
		             NULL);
	cd_batch_add(b, "set_robust_list", SYS_set_robust_list, a->robust_head, a->robust_len, 0, 0,
	             0, 0, NULL);
	cd_batch_add(b, "set_tid_address", SYS_set_tid_address, a->clear_tid, 0, 0, 0, 0, 0, NULL);
	cd_batch_add(b, "prctl(PR_SET_NAME)", SYS_prctl, PR_SET_NAME, comm_at, 0, 0, 0, 0, NULL);
	if (personality >= 0)
		cd_batch_add(b, "personality", SYS_personality, (uint64_t)personality, 0, 0, 0, 0,
		             0, NULL);
	cd_batch_add(b, "setpriority", SYS_setpriority, PRIO_PROCESS, 0, (uint64_t)(int64_t)a->nice,
	             0, 0, 0, NULL);
	cd_batch_add(b, "sched_setscheduler", SYS_sched_setscheduler, 0, policy, sp_at, 0, 0, 0,
	             NULL);
	if (!rt) {
		cd_batch_add(b, "prctl(PR_SET_TIMERSLACK)", SYS_prctl, PR_SET_TIMERSLACK,
		             *a->timer_slack_ns, 0, 0, 0, 0, NULL);
		cd_batch_add(b, "prctl(PR_GET_TIMERSLACK)", SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0,
		             0, 0, NULL);
		cd_batch_then(b, check_timer_slack, NULL, a->timer_slack_ns, 0, 0);
	}
	cd_batch_add(b, NULL, SYS_sched_setaffinity, 0, 16 * sizeof(uint64_t), aff_at, 0, 0, 0,
	             NULL);
	cd_batch_then(b, check_affinity, NULL, NULL, 0, 0);
	return 0;
}

static int attrs_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	const struct own_attrs a = OWN_ATTRS(t);
	struct cd_batch b;
	int r;

	cd_batch_init(&b, ctx->inj, ctx->batch_code, ctx->data);
	if ((r = restore_own(&b, &a, (long)t->personality, err)) < 0 ||
	    (r = cd_call_batch(&b, err)) < 0 || (r = restore_prctls(ctx, t, err)) < 0 ||
	    (r = restore_membarrier(ctx, t, err)) < 0 || (r = restore_loginuid(ctx, t, err)) < 0)
		return r;
	return write_oom_score_adj(t->pid, t->oom_score_adj, err);
}

/* Queued in the thread's batch (restore.c runs it). */
static int attrs_restore_thread(struct cd_restore_ctx *ctx, const struct cd_task *t,
                                const struct cd_thread *th, cd_err *err)
{
	const struct own_attrs a = OWN_ATTRS(th);

	(void)t;
	return restore_own(ctx->batch, &a, -1, err);
}

const struct cd_module cd_mod_attrs = {.name = "attrs",
                                       .dump = attrs_dump,
                                       .restore = attrs_restore,
                                       .dump_thread = attrs_dump_thread,
                                       .restore_thread = attrs_restore_thread};
