/* Per-task attributes: rseq registration, robust futex list, clear-tid
 * address, personality, comm, nice, CPU affinity, oom_score_adj, rlimits,
 * umask (the last two are applied by the new task itself before it is
 * seized, see restore.c). */
#include <errno.h>
#include <fcntl.h>
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
	return cd_proc_limits(t->pid, t->rlim, CD_NRLIMIT, err);
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

static int attrs_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	cd_inject *inj = ctx->inj;
	int r;

	if (t->rseq_addr && (r = cd_call_ok(inj, "rseq", SYS_rseq, t->rseq_addr, t->rseq_len, 0,
	                                    t->rseq_sig, 0, 0, NULL, err)) < 0)
		return r;
	if ((r = cd_call_ok(inj, "set_robust_list", SYS_set_robust_list, t->robust_head,
	                    t->robust_len, 0, 0, 0, 0, NULL, err)) < 0 ||
	    (r = cd_call_ok(inj, "set_tid_address", SYS_set_tid_address, t->clear_tid, 0, 0, 0, 0,
	                    0, NULL, err)) < 0 ||
	    (r = cd_call_ok(inj, "personality", SYS_personality, t->personality, 0, 0, 0, 0, 0,
	                    NULL, err)) < 0)
		return r;
	if ((r = cd_inject_write_mem(inj, ctx->data, t->comm, sizeof(t->comm), err)) < 0 ||
	    (r = cd_call_ok(inj, "prctl(PR_SET_NAME)", SYS_prctl, PR_SET_NAME, ctx->data, 0, 0, 0,
	                    0, NULL, err)) < 0)
		return r;
	if ((r = cd_call_ok(inj, "setpriority", SYS_setpriority, PRIO_PROCESS, 0,
	                    (uint64_t)(int64_t)t->nice, 0, 0, 0, NULL, err)) < 0)
		return r;
	long ret;
	if ((r = cd_inject_write_mem(inj, ctx->data, t->affinity, sizeof(t->affinity), err)) < 0 ||
	    (r = cd_call(inj, SYS_sched_setaffinity, 0, sizeof(t->affinity), ctx->data, 0, 0, 0,
	                 &ret, err)) < 0)
		return r;
	/* EINVAL: none of the recorded CPUs exists here; the task keeps all. */
	if (ret < 0 && ret != -EINVAL)
		return cd_err_sys(err, (int)-ret, "sched_setaffinity");
	return write_oom_score_adj(t->pid, t->oom_score_adj, err);
}

const struct cd_module cd_mod_attrs = {
    .name = "attrs", .dump = attrs_dump, .restore = attrs_restore};
