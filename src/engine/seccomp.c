/* seccomp: strict mode and filter mode. A filter could refuse or kill on
 * our injected calls, so the dump suspends seccomp in every thread of such
 * a task for as long as it holds it (PTRACE_O_SUSPEND_SECCOMP, which needs
 * CAP_SYS_ADMIN), reads each filter of each thread with its flags
 * (PTRACE_SECCOMP_GET_FILTER, _GET_METADATA) and refuses threads whose
 * chains differ (the restore gives one chain to all). The restore, its
 * handles suspended the same way, installs the chain oldest first in the
 * main thread at the end of its TASK phase, so the threads made after it
 * inherit it as the kernel shares a chain; nothing of it applies before
 * the task is let go. A filter that hands calls to a listener
 * (SECCOMP_RET_USER_NOTIF) is refused: its listener is not restored. */
#include <errno.h>
#include <inttypes.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

/* ---- dump ---- */

int cd_seccomp_suspend(pid_t pid, cd_inject *inj, cd_inject **thr, size_t nthr, cd_err *err)
{
	struct cd_proc_status st;
	int r = cd_proc_status(pid, &st, err);

	if (r < 0 || !st.seccomp)
		return r;
	r = cd_inject_suspend_seccomp(inj, err);
	for (size_t k = 0; r >= 0 && k < nthr; k++)
		r = cd_inject_suspend_seccomp(thr[k], err);
	if (r < 0)
		return cd_err_wrap(err, "pid %d: seccomp mode %d", pid, st.seccomp);
	return 0;
}

static void filters_free(struct cd_seccomp_filter *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].insns);
	free(f);
}

/* Whether the program returns SECCOMP_RET_USER_NOTIF (BPF_RET | BPF_K). */
static bool notifies(const struct cd_seccomp_filter *f)
{
	for (size_t i = 0; i < f->ninsns; i++) {
		struct sock_filter in;
		memcpy(&in, &f->insns[i], sizeof(in));
		if (in.code == (BPF_RET | BPF_K) &&
		    (in.k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
			return true;
	}
	return false;
}

/* The speculation mitigation a filter forces unless installed with
 * SPEC_ALLOW: kept as the task shows it. */
static uint32_t spec_flag(pid_t tid)
{
	_cleanup_free_ char *buf = NULL;
	cd_err ignored = {0};
	char name[64];

	snprintf(name, sizeof(name), "task/%d/status", tid);
	if (cd_proc_read_file(tid, name, &buf, NULL, &ignored) < 0)
		return 0;
	const char *l = strstr(buf, "Speculation_Store_Bypass:");
	const char *e = l ? strchr(l, '\n') : NULL;
	if (!l || (e && memmem(l, (size_t)(e - l), "force", 5)))
		return 0;
	return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
}

/* Filter index of thread tid (0: the oldest, get_nth_filter). */
static int get_filter(pid_t tid, unsigned long index, struct cd_seccomp_filter *f, cd_err *err)
{
	struct __ptrace_seccomp_metadata md = {.filter_off = index};
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)index, NULL);

	if (n < 0)
		return -errno;
	if (n == 0 || n > CD_SECCOMP_MAX_INSNS)
		return cd_err_set(err, EOPNOTSUPP, "filter %lu: %ld instructions", index, n);
	f->insns = calloc((size_t)n, sizeof(*f->insns));
	if (!f->insns)
		return cd_err_set(err, ENOMEM, "out of memory");
	f->ninsns = (size_t)n;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)index, f->insns) != n)
		return cd_err_sys(err, errno, "filter %lu: PTRACE_SECCOMP_GET_FILTER", index);
	if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, (void *)sizeof(md), &md) < 0)
		return cd_err_sys(err, errno, "filter %lu: PTRACE_SECCOMP_GET_METADATA", index);
	f->flags = (uint32_t)md.flags & SECCOMP_FILTER_FLAG_LOG;
	return 0;
}

/* Every filter of thread tid, oldest first (the order they are installed
 * again), as the kernel numbers them. */
static int get_chain(pid_t tid, struct cd_seccomp_filter **ret, size_t *ret_n, cd_err *err)
{
	struct cd_seccomp_filter *f = NULL;
	size_t n = 0;
	int r = 0;

	for (;; n++) {
		if (n == CD_SECCOMP_MAX_FILTERS) {
			r = cd_err_set(err, E2BIG, "more than %d seccomp filters",
			               CD_SECCOMP_MAX_FILTERS);
			break;
		}
		struct cd_seccomp_filter *nf = reallocarray(f, n + 1, sizeof(*f));
		if (!nf) {
			r = cd_err_set(err, ENOMEM, "out of memory");
			break;
		}
		f = nf;
		memset(&f[n], 0, sizeof(f[n]));
		r = get_filter(tid, n, &f[n], err);
		if (r == -ENOENT) {
			r = 0;
			break;
		}
		if (r < 0 && !err->code)
			r = cd_err_sys(err, -r, "filter %zu: PTRACE_SECCOMP_GET_FILTER", n);
		if (r < 0) {
			n++;
			break;
		}
	}
	if (r < 0) {
		filters_free(f, n);
		return r;
	}
	*ret = f;
	*ret_n = n;
	return 0;
}

static int seccomp_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	struct cd_proc_status st;
	int r = cd_proc_status(t->pid, &st, err);

	(void)ctx;
	if (r < 0)
		return r;
	t->seccomp_mode = st.seccomp;
	if (st.seccomp != SECCOMP_MODE_FILTER)
		return 0;
	if ((r = get_chain(t->pid, &t->filters, &t->nfilters, err)) < 0)
		return cd_err_wrap(err, "pid %d (%s): seccomp", t->pid, t->comm);
	uint32_t spec = spec_flag(t->pid);
	for (size_t i = 0; i < t->nfilters; i++) {
		t->filters[i].flags |= spec;
		if (notifies(&t->filters[i]))
			return cd_err_set(err, EOPNOTSUPP,
			                  "pid %d (%s): seccomp filter %zu returns "
			                  "SECCOMP_RET_USER_NOTIF: its listener is not restored",
			                  t->pid, t->comm, i);
	}
	return 0;
}

static bool same_filter(const struct cd_seccomp_filter *a, const struct cd_seccomp_filter *b)
{
	return a->ninsns == b->ninsns && (a->flags & SECCOMP_FILTER_FLAG_LOG) == b->flags &&
	       !memcmp(a->insns, b->insns, a->ninsns * sizeof(*a->insns));
}

/* A thread's chain must be the main thread's (its mode is compared by
 * cd_threads_check). */
static int seccomp_dump_thread(struct cd_dump_ctx *ctx, const struct cd_task *t,
                               struct cd_thread *th, cd_err *err)
{
	struct cd_seccomp_filter *f = NULL;
	size_t n = 0;
	bool same;

	(void)ctx;
	if (t->seccomp_mode != SECCOMP_MODE_FILTER)
		return 0;
	int r = get_chain(th->tid, &f, &n, err);
	if (r < 0)
		return cd_err_wrap(err, "pid %d: thread %d: seccomp", t->pid, th->tid);
	same = n == t->nfilters;
	for (size_t i = 0; same && i < n; i++)
		same = same_filter(&t->filters[i], &f[i]);
	filters_free(f, n);
	if (!same)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d (%s): thread %d (%s): its seccomp filters differ from the "
		    "main thread's",
		    t->pid, t->comm, th->tid, th->comm);
	return 0;
}

/* ---- restore ---- */

/* One filter: its sock_fprog and program in the data area. */
static int install_filter(struct cd_restore_ctx *ctx, const struct cd_seccomp_filter *f,
                          cd_err *err)
{
	struct {
		uint64_t len; /* unsigned short, then padding */
		uint64_t filter;
	} prog = {f->ninsns, ctx->data + sizeof(prog)};
	size_t bytes = f->ninsns * sizeof(*f->insns);
	int r;

	if (sizeof(prog) + bytes > ctx->data_len)
		return cd_err_set(err, E2BIG, "a seccomp filter of %zu instructions", f->ninsns);
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, &prog, sizeof(prog), err)) < 0 ||
	    (r = cd_inject_write_mem(ctx->inj, prog.filter, f->insns, bytes, err)) < 0)
		return r;
	return cd_call_ok(ctx->inj, "seccomp(SECCOMP_SET_MODE_FILTER)", SYS_seccomp,
	                  SECCOMP_SET_MODE_FILTER, f->flags, ctx->data, 0, 0, 0, NULL, err);
}

static int seccomp_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	int r = 0;

	if (!t->seccomp_mode)
		return 0;
	/* our calls after this one pass it, in the threads made after too */
	if ((r = cd_inject_suspend_seccomp(ctx->inj, err)) < 0)
		return r;
	if (t->seccomp_mode == SECCOMP_MODE_STRICT)
		return cd_call_ok(ctx->inj, "seccomp(SECCOMP_SET_MODE_STRICT)", SYS_seccomp,
		                  SECCOMP_SET_MODE_STRICT, 0, 0, 0, 0, 0, NULL, err);
	for (size_t i = 0; r >= 0 && i < t->nfilters; i++)
		r = install_filter(ctx, &t->filters[i], err);
	return r;
}

const struct cd_module cd_mod_seccomp = {.name = "seccomp",
                                         .dump = seccomp_dump,
                                         .restore = seccomp_restore,
                                         .dump_thread = seccomp_dump_thread};

/* Whether this process may suspend seccomp (CAP_SYS_ADMIN in CapEff). */
static bool may_suspend(void)
{
	_cleanup_free_ char *buf = NULL;
	cd_err ignored = {0};

	if (cd_proc_read_file(getpid(), "status", &buf, NULL, &ignored) < 0)
		return false;
	const char *l = strstr(buf, "CapEff:");
	return l && (strtoull(l + 7, NULL, 16) >> 21 & 1); /* CAP_SYS_ADMIN */
}

int cd_seccomp_check(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].seccomp_mode && !may_suspend())
			return cd_err_set(
			    err, EPERM,
			    "pid %d: seccomp mode %d: restoring it needs CAP_SYS_ADMIN "
			    "(PTRACE_O_SUSPEND_SECCOMP)",
			    img->tasks[i].pid, img->tasks[i].seccomp_mode);
	return 0;
}
