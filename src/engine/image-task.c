/* Codec of one task's metadata in the manifest. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <linux/mempolicy.h>

#include "engine/image-fields.h"
#include "engine/internal.h"
#include "shared/cleanup.h"
#include "shared/prefault.h"

#define F(m)         CD_FIELD(struct cd_task, m)
#define FR(m, ...)   CD_FIELD_RANGE(struct cd_task, m, __VA_ARGS__)
#define U32          INT32_MIN, INT32_MAX /* uint32 fields travel as signed 32-bit */
#define NONNEG(size) 0, CD_FIELD_HI(size)
static const struct cd_field task_fields[] = {
    FR(pid, 1, CD_PID_MAX),
    /* 0: a parent, group or session outside our pid namespace */
    FR(ppid, 0, CD_PID_MAX),
    FR(pgid, 0, CD_PID_MAX),
    FR(sid, 0, CD_PID_MAX),
    FR(new_pgid, 1, CD_PID_MAX),
    FR(new_sid, 1, CD_PID_MAX),
    FR(pages_size, NONNEG(8)),
    F(pages_csum),
    FR(umask, 0, 0777),
    F(blocked),
    F(ss_sp),
    F(ss_size),
    F(ss_flags),
    F(rseq_addr),
    FR(rseq_sig, U32),
    FR(rseq_len, NONNEG(4)),
    F(robust_head),
    F(robust_len),
    F(clear_tid),
    F(cap_inh),
    F(cap_prm),
    F(cap_eff),
    F(cap_bnd),
    F(cap_amb),
    FR(personality, 0, UINT32_MAX), /* an unsigned int in the kernel */
    FR(nice, -20, 19),
    FR(oom_score_adj, -1000, 1000),
    FR(no_new_privs, 0, 1),
    FR(dumpable, 0, 2),     /* SUID_DUMP_DISABLE, _USER, _ROOT */
    FR(sched_policy, 0, 5), /* SCHED_OTHER .. SCHED_IDLE (not SCHED_DEADLINE) */
    FR(sched_prio, 0, 99),
    FR(sched_reset_on_fork, 0, 1),
    FR(pdeathsig, 0, 64),
    FR(child_subreaper, 0, 1),
    FR(thp_disable, 0, 3), /* 1 | PR_THP_DISABLE_EXCEPT_ADVISED */
    FR(timer_slack_ns, NONNEG(8)),
    FR(loginuid, U32),
    FR(membarrier, 0, 0x1fc), /* the MEMBARRIER_CMD_REGISTER_* bits */
    FR(mlock_future, CD_MLOCK_FUTURE_NONE, CD_MLOCK_FUTURE_ONFAULT),
};
/* A zombie: its place in the tree, and the wait status its parent gets. */
static const struct cd_field zombie_fields[] = {
    FR(pid, 1, CD_PID_MAX),     FR(ppid, 0, CD_PID_MAX),     FR(pgid, 0, CD_PID_MAX),
    FR(sid, 0, CD_PID_MAX),     FR(new_pgid, 1, CD_PID_MAX), FR(new_sid, 1, CD_PID_MAX),
    FR(exit_status, 0, 0xffff),
};
#undef FR
#undef F

/* A thread's own state; ranges as the task's same fields. */
#define T(m)       CD_FIELD(struct cd_thread, m)
#define TR(m, ...) CD_FIELD_RANGE(struct cd_thread, m, __VA_ARGS__)
static const struct cd_field thread_fields[] = {
    TR(tid, 1, CD_PID_MAX),
    T(blocked),
    T(ss_sp),
    T(ss_size),
    T(ss_flags),
    T(rseq_addr),
    TR(rseq_sig, U32),
    TR(rseq_len, NONNEG(4)),
    T(robust_head),
    T(robust_len),
    T(clear_tid),
    TR(nice, -20, 19),
    TR(sched_policy, 0, 5),
    TR(sched_prio, 0, 99),
    TR(sched_reset_on_fork, 0, 1),
    TR(timer_slack_ns, NONNEG(8)),
};
#undef TR
#undef T

/* Register values are whatever the task had: any 64-bit value. */
#define R(m) CD_FIELD(struct user_regs_struct, m)
static const struct cd_field reg_fields[] = {
    R(r15),    R(r14), R(r13), R(r12),     R(rbp),     R(rbx), R(r11),      R(r10), R(r9),
    R(r8),     R(rax), R(rcx), R(rdx),     R(rsi),     R(rdi), R(orig_rax), R(rip), R(cs),
    R(eflags), R(rsp), R(ss),  R(fs_base), R(gs_base), R(ds),  R(es),       R(fs),  R(gs),
};
#undef R

#define M(m) CD_FIELD(struct cd_mm, m)
static const struct cd_field mm_fields[] = {
    M(start_code),  M(end_code),  M(start_data), M(end_data),  M(start_brk), M(brk),
    M(start_stack), M(arg_start), M(arg_end),    M(env_start), M(env_end),
};
#undef M

#define V(m)       CD_FIELD(struct cd_vma, m)
#define VR(m, ...) CD_FIELD_RANGE(struct cd_vma, m, __VA_ARGS__)
static const struct cd_field vma_fields[] = {
    VR(start, 0, (int64_t)CD_ADDR_MAX),
    VR(end, 0, (int64_t)CD_ADDR_MAX),
    VR(pgoff, NONNEG(8)),
    VR(prot, 0, 7), /* PROT_READ | PROT_WRITE | PROT_EXEC */
    V(shared),
    V(growsdown),
    VR(kind, 0, CD_VMA_KIND_MAX - 1),
    VR(flags, 0, CD_VMF_ALL),
    V(dev),
    V(ino),
    VR(shmid, NONNEG(8)), /* an inode number */
    VR(fsize, NONNEG(8)),
    V(mtime_ns),
};
#undef VR
#undef V

#define D(m)       CD_FIELD(struct cd_fd, m)
#define DR(m, ...) CD_FIELD_RANGE(struct cd_fd, m, __VA_ARGS__)
static const struct cd_field fd_fields[] = {
    DR(fd, NONNEG(4)),          DR(kind, 0, CD_FD_KIND_MAX - 1),
    DR(flags, NONNEG(4)),       DR(pos, NONNEG(8)),
    DR(obj, NONNEG(4)),         D(writer),
    DR(own_type, 0, 2), /* F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP */
    DR(own_pid, 0, CD_PID_MAX), DR(sig, 0, 64),
};
/* Fields of one kind only, present for that kind only; the kind's check
 * keeps them in range (an eventfd counter below UINT64_MAX). */
static const struct cd_field eventfd_fields[] = {D(count), D(semaphore)};
static const struct cd_field signalfd_fields[] = {D(sigmask)};
/* timerfd: CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME (alarm clocks
 * are refused at dump); TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET */
static const struct cd_field timerfd_fields[] = {
    DR(tclock, 0, 7),        DR(tflags, 0, 3),    DR(ticks, NONNEG(8)),    DR(vsec, NONNEG(8)),
    DR(vnsec, 0, 999999999), DR(isec, NONNEG(8)), DR(insec, 0, 999999999),
};
/* unix socket: the type and options the controller sets (the kind's check
 * keeps the type to the three it restores); SO_RCVBUF and SO_SNDBUF are
 * doubled by the kernel, at most INT_MAX; a listen backlog the kernel caps
 * at net.core.somaxconn; the socket file's permission bits */
static const struct cd_field unix_fields[] = {
    DR(sk_type, 1, 5),
    D(sk_listen),
    D(sk_passcred),
    DR(sk_backlog, 0, INT32_MAX),
    DR(sk_rcvbuf, 0, INT32_MAX),
    DR(sk_sndbuf, 0, INT32_MAX),
    DR(sk_mode, 0, 07777),
    D(sk_uid),
    D(sk_gid),
    DR(sk_ino, 0, UINT32_MAX),
    DR(sk_peer, 0, UINT32_MAX),
    DR(sk_shutdown, 0, 3),
    D(sk_iuid),
    D(sk_igid),
};
/* pidfd: the kind's check keeps it to a task or a thread of the image */
static const struct cd_field pidfd_fields[] = {DR(pidfd_pid, 1, CD_PID_MAX)};
/* inet and netlink sockets: the kind's check keeps the family, type and
 * protocol to those it restores and the address to its family's size */
static const struct cd_field inet_fields[] = {
    DR(sk_type, 1, 5),
    D(sk_listen),
    DR(sk_backlog, 0, INT32_MAX),
    DR(sk_rcvbuf, 0, INT32_MAX),
    DR(sk_sndbuf, 0, INT32_MAX),
    DR(sk_ino, 0, UINT32_MAX),
    D(sk_iuid),
    D(sk_igid),
    DR(sk_family, 0, 63),
    DR(sk_proto, 0, 255),
    DR(sk_opts, 0, CD_SKO_ALL),
    DR(sk_linger, 0, INT32_MAX),
    DR(sk_defer, 0, INT32_MAX),
    DR(sk_rcvtimeo, 0, INT64_MAX / 2),
    DR(sk_sndtimeo, 0, INT64_MAX / 2),
};
#undef DR
#undef D
/* an established TCP connection (fd-tcp.c): the queues' lengths bounded
 * (their file must hold exactly their sum), window scales as TCP allows
 * them, options as TCP_INFO gives them */
#define T(m)       CD_FIELD(struct cd_tcp_conn, m)
#define TR(m, ...) CD_FIELD_RANGE(struct cd_tcp_conn, m, __VA_ARGS__)
static const struct cd_field tcp_fields[] = {
    T(snd_seq),
    T(rcv_seq),
    TR(sndq, 0, CD_TCP_QUEUE_MAX),
    TR(unsq, 0, CD_TCP_QUEUE_MAX),
    TR(rcvq, 0, CD_TCP_QUEUE_MAX),
    TR(mss, 0, 65535),
    TR(topts, 0, 7),
    TR(swscale, 0, 14),
    TR(rwscale, 0, 14),
    T(tsval),
    T(wl1),
    T(swnd),
    T(maxwnd),
    T(rwnd),
    T(rwup),
    TR(shut_rd, 0, 1),
    TR(kidle, 0, 32767),
    TR(kintvl, 0, 32767),
    TR(kcnt, 0, 127),
    TR(cork, 0, 1),
};
#undef TR
#undef T

static const struct cd_field *fd_kind_fields(enum cd_fd_kind kind, size_t *n)
{
	switch (kind) {
	case CD_FD_EVENTFD:
		*n = ARRAY_SIZE(eventfd_fields);
		return eventfd_fields;
	case CD_FD_SIGNALFD:
		*n = ARRAY_SIZE(signalfd_fields);
		return signalfd_fields;
	case CD_FD_TIMERFD:
		*n = ARRAY_SIZE(timerfd_fields);
		return timerfd_fields;
	case CD_FD_UNIX:
		*n = ARRAY_SIZE(unix_fields);
		return unix_fields;
	case CD_FD_PIDFD:
		*n = ARRAY_SIZE(pidfd_fields);
		return pidfd_fields;
	case CD_FD_INET:
	case CD_FD_NETLINK:
		*n = ARRAY_SIZE(inet_fields);
		return inet_fields;
	default:
		*n = 0;
		return NULL;
	}
}

/* Clocks and notifications the restore recreates (posix-timers.c checks
 * the clock further against the task). */
#define PT(m)       CD_FIELD(struct cd_posix_timer, m)
#define PTR(m, ...) CD_FIELD_RANGE(struct cd_posix_timer, m, __VA_ARGS__)
static const struct cd_field timer_fields[] = {
    PTR(id, NONNEG(4)),
    PTR(clock, INT32_MIN, 11),
    PTR(signo, 0, CD_NSIG),
    PTR(notify, 0, 4),
    PT(value),
    PTR(isec, NONNEG(8)),
    PTR(insec, 0, 999999999),
    PTR(vsec, NONNEG(8)),
    PTR(vnsec, 0, 999999999),
};
#undef PTR
#undef PT

/* A NUMA policy: the modes up to MPOL_WEIGHTED_INTERLEAVE, the mode flags
 * (mempolicy_check keeps their combinations to what the kernel takes). */
#define CD_MPOL_MODE_MAX   6      /* MPOL_WEIGHTED_INTERLEAVE */
#define CD_MPOL_FLAGS      0xe000 /* MPOL_F_STATIC_NODES | _RELATIVE_NODES | _NUMA_BALANCING */
#define CD_MPOL_F_STATIC   (1 << 15)
#define CD_MPOL_F_RELATIVE (1 << 14)
#define CD_MPOL_F_BALANCE  (1 << 13)
#define MP(m, ...)         CD_FIELD_RANGE(struct cd_mempolicy, m, __VA_ARGS__)
static const struct cd_field mpol_fields[] = {
    MP(mode, 0, CD_MPOL_MODE_MAX),
    MP(flags, 0, CD_MPOL_FLAGS),
};
#undef MP
#define VP(m, ...) CD_FIELD_RANGE(struct cd_vma_policy, m, __VA_ARGS__)
static const struct cd_field vpol_fields[] = {
    VP(start, 0, (int64_t)CD_ADDR_MAX),
    VP(end, 0, (int64_t)CD_ADDR_MAX),
};
#undef VP

#define L(m, ...) CD_FIELD_RANGE(struct cd_lock, m, __VA_ARGS__)
static const struct cd_field lock_fields[] = {
    L(fd, NONNEG(4)),    L(kind, 0, CD_LOCK_KIND_MAX - 1),
    L(type, 0, 1), /* F_RDLCK, F_WRLCK */
    L(start, NONNEG(8)), L(len, NONNEG(8)),
};
#undef L
#undef NONNEG
#undef U32

static void thread_free(struct cd_thread *th)
{
	free(th->xstate);
	free(th->pending);
}

void cd_fd_free(struct cd_fd *d)
{
	free(d->path);
	free(d->watches);
	for (size_t k = 0; k < d->niwatches; k++)
		free(d->iwatches[k].path);
	free(d->iwatches);
	free(d->sk_addr);
	for (size_t k = 0; k < d->sk_nqueue; k++) {
		free(d->sk_queue[k].data);
		free(d->sk_queue[k].fds);
	}
	free(d->sk_queue);
	free(d->sk_paddr);
	free(d->sk_tcp);
	d->sk_tcp = NULL;
	d->sk_paddr = NULL;
	d->sk_paddrlen = 0;
	d->sk_queue = NULL;
	d->sk_nqueue = 0;
	d->sk_addr = NULL;
	d->sk_addrlen = 0;
	d->path = NULL;
	d->watches = NULL;
	d->iwatches = NULL;
	d->niwatches = 0;
}

void cd_task_free(struct cd_task *t)
{
	for (size_t i = 0; i < t->nthreads; i++)
		thread_free(&t->threads[i]);
	free(t->threads);
	for (size_t i = 0; i < t->nvmas; i++) {
		free(t->vmas[i].path);
		free(t->vmas[i].runs);
	}
	free(t->vmas);
	for (size_t i = 0; i < t->nfds; i++) {
		cd_fd_free(&t->fds[i]);
	}
	free(t->fds);
	free(t->xstate);
	free(t->mm.exe);
	free(t->cwd);
	free(t->root);
	free(t->pending);
	free(t->pending_shared);
	free(t->groups);
	free(t->timers);
	free(t->locks);
	free(t->vpols);
	for (size_t i = 0; i < t->nfilters; i++)
		free(t->filters[i].insns);
	free(t->filters);
	memset(t, 0, sizeof(*t));
}

static json_t *u64_array(const uint64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)v[i]));
	return a;
}

static json_t *vma_to_json(const struct cd_vma *v, bool runs_later)
{
	json_t *o = json_object(), *runs;

	cd_fields_encode(o, vma_fields, ARRAY_SIZE(vma_fields), v);
	if (v->path)
		json_object_set_new(o, "path", json_string(v->path));
	if (runs_later && v->nruns) {
		json_object_set_new(o, "runs", json_string(CD_RUNS_LATER));
		return o;
	}
	runs = json_array();
	for (size_t i = 0; i < v->nruns; i++)
		json_array_append_new(runs, json_pack("[I,I,i]", (json_int_t)v->runs[i].page,
		                                      (json_int_t)v->runs[i].npages,
		                                      (int)v->runs[i].src));
	json_object_set_new(o, "runs", runs);
	return o;
}

static json_t *watches_to_json(const struct cd_fd *d)
{
	json_t *a = json_array();

	for (size_t i = 0; i < d->nwatches; i++)
		json_array_append_new(a, json_pack("[i,I,I]", d->watches[i].tfd,
		                                   (json_int_t)d->watches[i].events,
		                                   (json_int_t)d->watches[i].data));
	return a;
}

static json_t *iwatches_to_json(const struct cd_fd *d)
{
	json_t *a = json_array();

	for (size_t i = 0; i < d->niwatches; i++)
		json_array_append_new(a, json_pack("[i,I,s]", d->iwatches[i].wd,
		                                   (json_int_t)d->iwatches[i].mask,
		                                   d->iwatches[i].path));
	return a;
}

static json_t *fd_to_json(const struct cd_fd *d)
{
	json_t *o = json_object();

	const struct cd_field *kf;
	size_t nkf;

	cd_fields_encode(o, fd_fields, ARRAY_SIZE(fd_fields), d);
	if ((kf = fd_kind_fields(d->kind, &nkf)))
		cd_fields_encode(o, kf, nkf, d);
	if (d->kind == CD_FD_EPOLL)
		json_object_set_new(o, "watches", watches_to_json(d));
	if (d->kind == CD_FD_INOTIFY)
		json_object_set_new(o, "iwatches", iwatches_to_json(d));
	if (d->kind == CD_FD_UNIX) {
		cd_json_hex_encode(o, "sk_addr", d->sk_addr, d->sk_addrlen);
		json_t *q = json_array();
		for (size_t i = 0; q && i < d->sk_nqueue; i++) {
			json_t *m = json_object();
			cd_json_hex_encode(m, "data", d->sk_queue[i].data, d->sk_queue[i].len);
			if (d->sk_queue[i].nfds) {
				json_t *f = json_array();
				for (size_t k = 0; f && k < d->sk_queue[i].nfds; k++)
					json_array_append_new(f,
					                      json_integer(d->sk_queue[i].fds[k]));
				json_object_set_new(m, "fds", f);
			}
			if (d->sk_queue[i].creds)
				json_object_set_new(m, "creds",
				                    json_pack("{s:i, s:I, s:I}", "pid",
				                              (int)d->sk_queue[i].cred_pid, "uid",
				                              (json_int_t)d->sk_queue[i].cred_uid,
				                              "gid",
				                              (json_int_t)d->sk_queue[i].cred_gid));
			json_array_append_new(q, m);
		}
		json_object_set_new(o, "sk_queue", q);
	}
	if (d->kind == CD_FD_INET || d->kind == CD_FD_NETLINK) {
		cd_json_hex_encode(o, "sk_addr", d->sk_addr, d->sk_addrlen);
		cd_json_hex_encode(o, "sk_paddr", d->sk_paddr, d->sk_paddrlen);
	}
	if (d->kind == CD_FD_INET && d->sk_tcp) {
		json_t *c = json_object();
		cd_fields_encode(c, tcp_fields, ARRAY_SIZE(tcp_fields), d->sk_tcp);
		json_object_set_new(o, "sk_tcp", c);
	}
	json_object_set_new(o, "std", json_integer(d->std));
	if (d->path)
		json_object_set_new(o, "path", json_string(d->path));
	return o;
}

static json_t *sigacts_to_json(const struct cd_task *t)
{
	json_t *a = json_array();

	for (int i = 0; i < CD_NSIG; i++)
		json_array_append_new(a, u64_array(&t->act[i].handler, 4));
	return a;
}

static json_t *siginfos_to_json(uint8_t (*si)[128], size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		cd_json_hex_encode(o, "siginfo", si[i], 128);
		json_array_append_new(a, o);
	}
	return a;
}

/* A policy's fields, into o (its own object, or a mapping's). */
static void mpol_encode(json_t *o, const struct cd_mempolicy *p)
{
	cd_fields_encode(o, mpol_fields, ARRAY_SIZE(mpol_fields), p);
	json_object_set_new(o, "nodes", u64_array(p->nodes, ARRAY_SIZE(p->nodes)));
}

static json_t *mpol_to_json(const struct cd_mempolicy *p)
{
	json_t *o = json_object();

	if (o)
		mpol_encode(o, p);
	return o;
}

static json_t *vpols_to_json(const struct cd_task *t)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < t->nvpols; i++) {
		json_t *o = json_object();
		cd_fields_encode(o, vpol_fields, ARRAY_SIZE(vpol_fields), &t->vpols[i]);
		mpol_encode(o, &t->vpols[i].pol);
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *seccomp_to_json(const struct cd_task *t)
{
	json_t *o = json_object(), *a = json_array();

	for (size_t i = 0; a && i < t->nfilters; i++) {
		json_t *f = json_object();
		json_object_set_new(f, "flags", json_integer(t->filters[i].flags));
		cd_json_hex_encode(f, "insns", t->filters[i].insns,
		                   t->filters[i].ninsns * sizeof(*t->filters[i].insns));
		json_array_append_new(a, f);
	}
	json_object_set_new(o, "mode", json_integer(t->seccomp_mode));
	json_object_set_new(o, "filters", a);
	return o;
}

static json_t *thread_to_json(const struct cd_thread *th)
{
	json_t *o = json_object(), *regs = json_object();

	cd_fields_encode(o, thread_fields, ARRAY_SIZE(thread_fields), th);
	json_object_set_new(o, "comm", json_string(th->comm));
	cd_fields_encode(regs, reg_fields, ARRAY_SIZE(reg_fields), &th->regs);
	json_object_set_new(o, "regs", regs);
	cd_json_hex_encode(o, "xstate", th->xstate, th->xstate_len);
	json_object_set_new(o, "pending", siginfos_to_json(th->pending, th->npending));
	json_object_set_new(o, "affinity", u64_array(th->affinity, ARRAY_SIZE(th->affinity)));
	json_object_set_new(o, "mempolicy", mpol_to_json(&th->mempolicy));
	return o;
}

static json_t *records_to_json(const void *base, size_t size, size_t n, const struct cd_field *f,
                               size_t nf)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_object();
		cd_fields_encode(o, f, nf, (const char *)base + i * size);
		json_array_append_new(a, o);
	}
	return a;
}

/* "tid" apart from the table: an image without it is still read. */
static json_t *timers_to_json(const struct cd_task *t)
{
	json_t *a = records_to_json(t->timers, sizeof(*t->timers), t->ntimers, timer_fields,
	                            ARRAY_SIZE(timer_fields));

	for (size_t i = 0; a && i < t->ntimers; i++)
		json_object_set_new(json_array_get(a, i), "tid",
		                    json_integer(t->timers[i].tid ? t->timers[i].tid : t->pid));
	return a;
}

static json_t *zombie_to_json(const struct cd_task *t)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	cd_fields_encode(o, zombie_fields, ARRAY_SIZE(zombie_fields), t);
	json_object_set_new(o, "comm", json_string(t->comm));
	return o;
}

static json_t *task_to_json(const struct cd_task *t, bool runs_later)
{
	if (t->zombie)
		return zombie_to_json(t);
	json_t *o = json_object(), *regs = json_object(), *mm = json_object(), *a;

	if (!o || !regs || !mm)
		return NULL;
	cd_fields_encode(o, task_fields, ARRAY_SIZE(task_fields), t);
	json_object_set_new(o, "comm", json_string(t->comm));
	json_object_set_new(o, "pages_file", json_string(t->pages_file));
	cd_fields_encode(regs, reg_fields, ARRAY_SIZE(reg_fields), &t->regs);
	json_object_set_new(o, "regs", regs);
	cd_json_hex_encode(o, "xstate", t->xstate, t->xstate_len);
	cd_fields_encode(mm, mm_fields, ARRAY_SIZE(mm_fields), &t->mm);
	json_object_set_new(mm, "auxv", u64_array(t->mm.auxv, t->mm.auxv_len));
	json_object_set_new(mm, "exe", json_string(t->mm.exe ? t->mm.exe : ""));
	json_object_set_new(o, "mm", mm);
	a = json_array();
	for (size_t i = 0; i < t->nvmas; i++)
		json_array_append_new(a, vma_to_json(&t->vmas[i], runs_later));
	json_object_set_new(o, "vmas", a);
	a = json_array();
	for (size_t i = 0; i < t->nfds; i++)
		json_array_append_new(a, fd_to_json(&t->fds[i]));
	json_object_set_new(o, "fds", a);
	json_object_set_new(o, "cwd", json_string(t->cwd ? t->cwd : "/"));
	json_object_set_new(o, "root", json_string(t->root ? t->root : "/"));
	json_object_set_new(o, "sigactions", sigacts_to_json(t));
	json_object_set_new(o, "pending", siginfos_to_json(t->pending, t->npending));
	json_object_set_new(o, "pending_shared",
	                    siginfos_to_json(t->pending_shared, t->npending_shared));
	json_object_set_new(o, "itimers", u64_array((const uint64_t *)t->itimer, 12));
	json_object_set_new(o, "posix_timers", timers_to_json(t));
	json_object_set_new(o, "locks",
	                    records_to_json(t->locks, sizeof(*t->locks), t->nlocks, lock_fields,
	                                    ARRAY_SIZE(lock_fields)));
	json_object_set_new(o, "rlimits", u64_array(&t->rlim[0][0], 2 * CD_NRLIMIT));
	a = json_array();
	for (int i = 0; i < 4; i++)
		json_array_append_new(a, json_integer(t->uid[i]));
	json_object_set_new(o, "uids", a);
	a = json_array();
	for (int i = 0; i < 4; i++)
		json_array_append_new(a, json_integer(t->gid[i]));
	json_object_set_new(o, "gids", a);
	a = json_array();
	for (size_t i = 0; i < t->ngroups; i++)
		json_array_append_new(a, json_integer(t->groups[i]));
	json_object_set_new(o, "groups", a);
	json_object_set_new(o, "affinity", u64_array(t->affinity, ARRAY_SIZE(t->affinity)));
	json_object_set_new(o, "mempolicy", mpol_to_json(&t->mempolicy));
	json_object_set_new(o, "vma_policies", vpols_to_json(t));
	json_object_set_new(o, "seccomp", seccomp_to_json(t));
	json_object_set_new(o, "stop_sig", json_integer(t->stop_sig));
	json_object_set_new(o, "stop_notify", json_boolean(t->stop_notify));
	a = json_array();
	for (size_t i = 0; i < t->nthreads; i++)
		json_array_append_new(a, thread_to_json(&t->threads[i]));
	json_object_set_new(o, "threads", a);
	return o;
}

json_t *cd_task_to_json(const struct cd_task *t)
{
	return task_to_json(t, false);
}

json_t *cd_task_to_json_runs_later(const struct cd_task *t)
{
	return task_to_json(t, true);
}

/* Runs come in page order, without overlap, inside their mapping: then
 * the data pages of a task add up to at most its address space, and the
 * sum that is compared with the page file cannot overflow. x: page,
 * npages (at least 1) and src, in range. */
static int run_place(struct cd_vma *v, uint64_t *next, uint64_t *data_pages, const int64_t x[3],
                     cd_err *err)
{
	const uint64_t pages = (v->end - v->start) / CD_PAGE_SIZE;
	struct cd_run *run = &v->runs[v->nruns];

	if ((uint64_t)x[0] < *next)
		return cd_err_set(err, EINVAL, "field \"runs\": page %" PRId64 " out of order",
		                  x[0]);
	if ((uint64_t)x[0] + (uint64_t)x[1] > pages)
		return cd_err_set(err, EINVAL, "field \"runs\": page run outside its mapping");
	*run = (struct cd_run){(uint64_t)x[0], (uint64_t)x[1], (uint8_t)x[2]};
	*next = run->page + run->npages;
	if (run->src == CD_RUN_DATA)
		*data_pages += run->npages;
	v->nruns++;
	return 0;
}

/* each number's range: page, npages, src */
static const int64_t run_lo[3] = {0, 1, CD_RUN_DATA};
static const int64_t run_hi[3] = {INT64_MAX, INT64_MAX, CD_RUN_PREV};

static int run_from_json(json_t *a, struct cd_vma *v, uint64_t *next, uint64_t *data_pages,
                         cd_err *err)
{
	int64_t x[3];
	int r;

	if (!json_is_array(a) || json_array_size(a) != 3)
		return cd_err_set(err, EINVAL, "field \"runs\": not a [page, npages, src] triple");
	for (size_t i = 0; i < 3; i++)
		if ((r = cd_json_elem_int(a, "runs", i, run_lo[i], run_hi[i], &x[i], err)) < 0)
			return r;
	return run_place(v, next, data_pages, x, err);
}

/* The same for a triple of the text form, its numbers 0..INT64_MAX; the
 * refusals are the list's, word for word. */
static int run_from_text(const int64_t x[3], struct cd_vma *v, uint64_t *next, uint64_t *data_pages,
                         cd_err *err)
{
	for (size_t i = 0; i < 3; i++)
		if (x[i] < run_lo[i] || x[i] > run_hi[i])
			return cd_err_set(err, ERANGE,
			                  "field \"runs[%zu]\": %" PRId64 " out of range [%" PRId64
			                  ", %" PRId64 "]",
			                  i, x[i], run_lo[i], run_hi[i]);
	return run_place(v, next, data_pages, x, err);
}

static int runs_alloc(struct cd_vma *v, size_t n, cd_err *err)
{
	if (n > CD_MAX_RUNS)
		return cd_err_set(err, E2BIG, "field \"runs\": %zu elements, expected 0 to %u", n,
		                  CD_MAX_RUNS);
	v->runs = calloc(n + 1, sizeof(*v->runs));
	if (!v->runs)
		return cd_err_set(err, ENOMEM, "out of memory");
	cd_prefault(v->runs, (n + 1) * sizeof(*v->runs));
	return 0;
}

/* The cut list a mapping's "runs" names, NULL where it is no placeholder. */
static const struct cd_runs_cut *cut_named(const struct cd_runs_cuts *c, json_t *runs)
{
	const char *s = json_string_value(runs);
	char *end;

	if (!c || !s || s[0] != '\x01' || s[1] < '0' || s[1] > '9')
		return NULL;
	unsigned long k = strtoul(s + 1, &end, 10);
	return !*end && k < c->n ? &c->cut[k] : NULL;
}

/* Runs given as their list's text (cd_runs_text): a list the reader cut
 * out of the manifest, for speed (image.c, cut_runs), or a string. */
static int runs_from_text(const char *s, size_t len, struct cd_vma *v, uint64_t *data_pages,
                          cd_err *err)
{
	size_t n = 0;
	struct cd_runs_text t = {s, s + len, 0};
	uint64_t next = 0;
	int64_t x[3];
	int r;

	/* at most a triple a bracket but the list's own (one pass to count,
	 * one to read: the text can be megabytes) */
	for (const char *p = s; len && (p = memchr(p, '[', len - (size_t)(p - s))); p++)
		n++;
	if (n && (r = runs_alloc(v, n - 1, err)) < 0)
		return r;
	r = 0;
	while (n && v->nruns < n - 1 && (r = cd_runs_text_next(&t, x)) > 0)
		if ((r = run_from_text(x, v, &next, data_pages, err)) < 0)
			return cd_err_wrap(err, "run %zu", v->nruns);
	if (!n || r < 0 || cd_runs_text_next(&t, x) != 0 || t.p != t.end)
		return cd_err_set(err, EINVAL,
		                  "field \"runs\": not a list of [page, npages, src] triples");
	return 0;
}

bool cd_vma_lazy_able(const struct cd_vma *v)
{
	return v->kind == CD_VMA_ANON && !v->shared && !v->growsdown &&
	       !(v->flags & (CD_VMF_LOCKED | CD_VMF_WIPEONFORK));
}

/* A mapping a lazy restore leaves to its server keeps the cut list as text
 * (cd_runs_cuts.later): it was read whole when it was cut, and what the
 * checks of run_place need is in its sum. Anything else is read as runs
 * (a list out of place is refused there, in its words). */
static bool runs_keep_text(struct cd_vma *v, const struct cd_runs_cut *cut, uint64_t *data_pages)
{
	const struct cd_runs_sum *sum = &cut->sum;
	const uint32_t lazy_srcs = (1u << CD_RUN_DATA) | (1u << CD_RUN_ZERO);

	if (!sum->placed || sum->end > (v->end - v->start) / CD_PAGE_SIZE ||
	    sum->nruns > CD_MAX_RUNS || !sum->ndata || (sum->srcs & ~lazy_srcs) ||
	    !cd_vma_lazy_able(v))
		return false;
	v->later =
	    (struct cd_runs_later){cut->at, cut->len, sum->nruns, sum->ndata, sum->data_pages};
	*data_pages += sum->data_pages;
	return true;
}

int cd_vma_runs_load(struct cd_vma *v, cd_err *err)
{
	struct cd_runs_later later = v->later;
	uint64_t ignored = 0;

	if (!later.text)
		return 0;
	v->later = (struct cd_runs_later){0};
	return runs_from_text(later.text, later.len, v, &ignored, err);
}

uint64_t cd_vma_data_bytes(const struct cd_vma *v)
{
	uint64_t n = v->later.data_pages;

	for (size_t i = 0; i < v->nruns; i++)
		if (v->runs[i].src == CD_RUN_DATA)
			n += v->runs[i].npages;
	return n * CD_PAGE_SIZE;
}

static int runs_from_json(json_t *o, const struct cd_runs_cuts *cuts, struct cd_vma *v,
                          uint64_t *data_pages, cd_err *err)
{
	json_t *runs = json_object_get(o, "runs"), *x;
	const struct cd_runs_cut *cut = cut_named(cuts, runs);
	uint64_t next = 0;
	size_t i;
	int r;

	if (cut && cuts->later && runs_keep_text(v, cut, data_pages))
		return 0;
	if (cut)
		return runs_from_text(cut->at, cut->len, v, data_pages, err);
	if (json_is_string(runs))
		return runs_from_text(json_string_value(runs), json_string_length(runs), v,
		                      data_pages, err);
	if ((r = cd_json_array(runs, "runs", 0, CD_MAX_RUNS, err)) < 0 ||
	    (r = runs_alloc(v, json_array_size(runs), err)) < 0)
		return r;
	json_array_foreach(runs, i, x)
	{
		if ((r = run_from_json(x, v, &next, data_pages, err)) < 0)
			return cd_err_wrap(err, "run %zu", i);
	}
	return 0;
}

/* Combinations the kernel never shows (the restore would fail or differ). */
static int vma_flags_check(const struct cd_vma *v, cd_err *err)
{
	uint32_t f = v->flags;

	if ((f & CD_VMF_LOCKONFAULT) && !(f & CD_VMF_LOCKED))
		return cd_err_set(err, EINVAL, "field \"flags\": lock-on-fault without locked");
	if ((f & CD_VMF_HUGEPAGE) && (f & CD_VMF_NOHUGEPAGE))
		return cd_err_set(err, EINVAL, "field \"flags\": both hugepage and nohugepage");
	if ((f & CD_VMF_RANDOM) && (f & CD_VMF_SEQUENTIAL))
		return cd_err_set(err, EINVAL, "field \"flags\": both random and sequential");
	if ((f & CD_VMF_MAYWRITE) && v->kind != CD_VMA_FILE_SHARED && v->kind != CD_VMA_SYSV_SHM)
		return cd_err_set(err, EINVAL,
		                  "field \"flags\": may-write on a mapping not shared of a file "
		                  "or a SysV segment");
	if ((f & CD_VMF_WIPEONFORK) && v->kind != CD_VMA_ANON)
		return cd_err_set(
		    err, EINVAL,
		    "field \"flags\": wipe-on-fork on a mapping not private anonymous");
	if (f && cd_vma_is_vdso(v->kind))
		return cd_err_set(err, EINVAL, "field \"flags\": flags on a vDSO mapping");
	return 0;
}

/* A shared memory object's memfd name, made again by layout.c. */
static bool memfd_path_ok(const char *p)
{
	const size_t pre = strlen("/memfd:"), post = strlen(" (deleted)");
	size_t n = strlen(p);

	if (n < pre + post || n - pre - post > 249 || strncmp(p, "/memfd:", pre) ||
	    strcmp(p + n - post, " (deleted)"))
		return false;
	return !memchr(p + pre, '/', n - pre - post);
}

static int vma_from_json(json_t *o, const struct cd_runs_cuts *cuts, struct cd_vma *v,
                         uint64_t *data_pages, cd_err *err)
{
	int ret;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((ret = cd_fields_decode(o, vma_fields, ARRAY_SIZE(vma_fields), v, err)) < 0)
		return ret;
	if (v->start >= v->end || v->start % CD_PAGE_SIZE || v->end % CD_PAGE_SIZE)
		return cd_err_set(err, EINVAL,
		                  "fields \"start\", \"end\": bad mapping %" PRIx64 "-%" PRIx64,
		                  v->start, v->end);
	if (json_object_get(o, "path") &&
	    (ret = cd_json_get_strdup(o, "path", CD_PATH_MAX, &v->path, err)) < 0)
		return ret;
	if ((v->kind == CD_VMA_FILE || v->kind == CD_VMA_FILE_SHARED) && !v->path)
		return cd_err_set(err, EINVAL, "field \"path\": file mapping without a path");
	if (v->kind == CD_VMA_ANON_SHARED && v->path && !memfd_path_ok(v->path))
		return cd_err_set(
		    err, EINVAL,
		    "field \"path\": %s is not \"/memfd:NAME (deleted)\" of a name of "
		    "at most 249 bytes without '/'",
		    v->path);
	if ((ret = vma_flags_check(v, err)) < 0 ||
	    (ret = runs_from_json(o, cuts, v, data_pages, err)) < 0)
		return ret;
	/* its contents are the segment's (sysv-shm.c checks the rest) */
	if (v->kind == CD_VMA_SYSV_SHM && (!v->shared || v->path || v->nruns || v->growsdown))
		return cd_err_set(err, EINVAL,
		                  "a SysV attachment not shared, with a path, pages or grow-down");
	/* an AIO ring: its header and events, a head inside them (mem.c) */
	if (v->kind == CD_VMA_AIO &&
	    (!v->shared || v->path || v->nruns || v->growsdown || v->pgoff ||
	     v->end - v->start < CD_PAGE_SIZE || v->shmid < 0 ||
	     (uint64_t)v->shmid >= (v->end - v->start) / 32 - 1))
		return cd_err_set(err, EINVAL,
		                  "an AIO ring not shared, with a path, pages, an offset or "
		                  "grow-down, or a head outside it");
	/* guard regions of private anonymous or file mappings (the dump refuses them elsewhere) */
	for (size_t i = 0; i < v->nruns; i++)
		if (v->runs[i].src == CD_RUN_GUARD && v->kind != CD_VMA_ANON &&
		    v->kind != CD_VMA_FILE && v->kind != CD_VMA_FILE_SHARED)
			return cd_err_set(err, EINVAL,
			                  "field \"runs\": a guard region in a mapping "
			                  "of kind %d",
			                  (int)v->kind);
	return 0;
}

static int vmas_from_json(json_t *o, const struct cd_runs_cuts *cuts, struct cd_task *t,
                          cd_err *err)
{
	uint64_t data_pages = 0;
	size_t i;
	json_t *a, *x;
	int r = cd_json_get_array(o, "vmas", 0, CD_MAX_VMAS, &a, err);

	if (r < 0)
		return r;
	t->vmas = calloc(json_array_size(a) + 1, sizeof(*t->vmas));
	if (!t->vmas)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x)
	{
		struct cd_vma *v = &t->vmas[t->nvmas];
		r = vma_from_json(x, cuts, v, &data_pages, err);
		t->nvmas++;
		if (r == 0 && i > 0 && v->start < v[-1].end)
			r = cd_err_set(err, EINVAL,
			               "field \"start\": overlaps or precedes the "
			               "mapping before");
		if (r < 0)
			return cd_err_wrap(err, "mapping %zu", i);
	}
	if (t->pages_size % CD_PAGE_SIZE || data_pages != t->pages_size / CD_PAGE_SIZE)
		return cd_err_set(err, EINVAL,
		                  "field \"pages_size\": page runs hold %" PRIu64
		                  " pages, page file %" PRIu64 " bytes",
		                  data_pages, t->pages_size);
	return 0;
}

/* "std" came with engine options version 4: an image without it marks
 * only its external stdio, whose slot is its obj. */
static int fd_std_from_json(json_t *o, struct cd_fd *d, cd_err *err)
{
	int64_t v;
	int r;

	if (!json_object_get(o, "std")) {
		d->std = d->kind == CD_FD_STDIO ? d->obj : -1;
		return 0;
	}
	if ((r = cd_json_get_int(o, "std", -1, 2, &v, err)) < 0)
		return r;
	d->std = (int)v;
	return 0;
}

/* An epoll's watches: [tfd, events, data] each; the kind's check keeps
 * tfd to fds of the task. */
static int watches_from_json(json_t *o, struct cd_fd *d, cd_err *err)
{
	json_t *a, *w;
	size_t i;
	int r = cd_json_get_array(o, "watches", 0, CD_MAX_FDS, &a, err);

	if (r < 0)
		return r;
	d->watches = calloc(json_array_size(a) + 1, sizeof(*d->watches));
	if (!d->watches)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, w)
	{
		int64_t v[3];
		if ((r = cd_json_array(w, "watches[]", 3, 3, err)) < 0 ||
		    (r = cd_json_elem_int(w, "watch.tfd", 0, 0, INT32_MAX, &v[0], err)) < 0 ||
		    (r = cd_json_elem_int(w, "watch.events", 1, 0, UINT32_MAX, &v[1], err)) < 0 ||
		    (r = cd_json_elem_int(w, "watch.data", 2, INT64_MIN, INT64_MAX, &v[2], err)) <
		        0)
			return cd_err_wrap(err, "field \"watches\": %zu", i);
		d->watches[d->nwatches++] = (struct cd_epoll_watch){
		    .tfd = (int)v[0], .events = (uint32_t)v[1], .data = (uint64_t)v[2]};
	}
	return 0;
}

/* An inotify's watches: [wd, mask, path] each; the kind's check keeps
 * them numbered 1..n with absolute paths. */
static int iwatch_from_json(json_t *w, struct cd_inotify_watch *iw, cd_err *err)
{
	int64_t v[2];
	const char *path;
	int r;

	if ((r = cd_json_array(w, "iwatches[]", 3, 3, err)) < 0 ||
	    (r = cd_json_elem_int(w, "iwatch.wd", 0, 1, INT32_MAX, &v[0], err)) < 0 ||
	    (r = cd_json_elem_int(w, "iwatch.mask", 1, 0, UINT32_MAX, &v[1], err)) < 0)
		return r;
	path = json_string_value(json_array_get(w, 2));
	if (!path || !*path || strlen(path) >= CD_PATH_MAX)
		return cd_err_set(err, EINVAL, "field \"iwatch.path\": not a path");
	if (!(iw->path = strdup(path)))
		return cd_err_set(err, ENOMEM, "out of memory");
	iw->wd = (int)v[0];
	iw->mask = (uint32_t)v[1];
	return 0;
}

static int iwatches_from_json(json_t *o, struct cd_fd *d, cd_err *err)
{
	json_t *a, *w;
	size_t i;
	int r = cd_json_get_array(o, "iwatches", 0, CD_MAX_FDS, &a, err);

	if (r < 0)
		return r;
	d->iwatches = calloc(json_array_size(a) + 1, sizeof(*d->iwatches));
	if (!d->iwatches)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, w)
	{
		if ((r = iwatch_from_json(w, &d->iwatches[i], err)) < 0)
			return cd_err_wrap(err, "field \"iwatches\": %zu", i);
		d->niwatches++;
	}
	return 0;
}

/* The open files a message carries (optional "fds"): 1 to
 * CD_SK_FDS_MAX object ids; that each is an object of the image that
 * may travel is the kind's check (fd-unix.c). */
static int sk_msg_fds_from_json(json_t *m, struct cd_sk_msg *msg, cd_err *err)
{
	json_t *a;
	int64_t v;
	int r;

	if (!json_object_get(m, "fds"))
		return 0;
	if ((r = cd_json_get_array(m, "fds", 1, CD_SK_FDS_MAX, &a, err)) < 0)
		return r;
	msg->fds = calloc(json_array_size(a), sizeof(*msg->fds));
	if (!msg->fds)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t k = 0; k < json_array_size(a); k++) {
		if ((r = cd_json_elem_int(a, "fds", k, 3, INT32_MAX, &v, err)) < 0)
			return r;
		msg->fds[msg->nfds++] = (int)v;
	}
	return 0;
}

/* The credentials a message carries (optional "creds"): a pid (that it is
 * a task of the image is the kind's check) and ids other than -1, which
 * the kernel takes for no id. */
static int sk_msg_creds_from_json(json_t *m, struct cd_sk_msg *msg, cd_err *err)
{
	json_t *c;
	int64_t pid, uid, gid;
	int r;

	if (!json_object_get(m, "creds"))
		return 0;
	if ((r = cd_json_get_object(m, "creds", &c, err)) < 0 ||
	    (r = cd_json_get_int(c, "pid", 1, CD_PID_MAX, &pid, err)) < 0 ||
	    (r = cd_json_get_int(c, "uid", 0, UINT32_MAX - 1, &uid, err)) < 0 ||
	    (r = cd_json_get_int(c, "gid", 0, UINT32_MAX - 1, &gid, err)) < 0)
		return cd_err_wrap(err, "creds");
	msg->creds = true;
	msg->cred_pid = (pid_t)pid;
	msg->cred_uid = (uint32_t)uid;
	msg->cred_gid = (uint32_t)gid;
	return 0;
}

/* A unix socket's queue: its messages, at most CD_PIPE_DATA_MAX bytes in
 * all (what the dump copies). */
static int sk_queue_from_json(json_t *o, struct cd_fd *d, cd_err *err)
{
	json_t *a, *m;
	size_t i, total = 0;
	int r = cd_json_get_array(o, "sk_queue", 0, CD_SK_QUEUE_MAX, &a, err);

	if (r < 0)
		return r;
	d->sk_queue = calloc(json_array_size(a) + 1, sizeof(*d->sk_queue));
	if (!d->sk_queue)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, m)
	{
		struct cd_sk_msg *msg = &d->sk_queue[i];
		if (!json_is_object(m))
			return cd_err_set(err, EINVAL, "field \"sk_queue\": %zu: not an object", i);
		/* counted first: what a refused message holds is freed with the fd */
		d->sk_nqueue++;
		if ((r = cd_json_hex_decode(m, "data", CD_PIPE_DATA_MAX - total, &msg->data,
		                            &msg->len, err)) < 0 ||
		    (r = sk_msg_fds_from_json(m, msg, err)) < 0 ||
		    (r = sk_msg_creds_from_json(m, msg, err)) < 0)
			return cd_err_wrap(err, "field \"sk_queue\": %zu", i);
		total += msg->len;
	}
	return 0;
}

/* An established TCP connection's repair state, when the fd has one. */
static int tcp_from_json(json_t *o, struct cd_fd *d, cd_err *err)
{
	json_t *c = json_object_get(o, "sk_tcp");
	int r;

	if (!c)
		return 0;
	if (!json_is_object(c))
		return cd_err_set(err, EINVAL, "field \"sk_tcp\": not an object");
	if (!(d->sk_tcp = calloc(1, sizeof(*d->sk_tcp))))
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((r = cd_fields_decode(c, tcp_fields, ARRAY_SIZE(tcp_fields), d->sk_tcp, err)) < 0)
		return cd_err_wrap(err, "field \"sk_tcp\"");
	if (d->sk_tcp->unsq > d->sk_tcp->sndq)
		return cd_err_set(
		    err, EINVAL, "field \"sk_tcp\": unsq %u is more than the send queue's %u bytes",
		    d->sk_tcp->unsq, d->sk_tcp->sndq);
	return 0;
}

static int fd_from_json(json_t *o, struct cd_fd *d, cd_err *err)
{
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_fields_decode(o, fd_fields, ARRAY_SIZE(fd_fields), d, err)) < 0 ||
	    (r = fd_std_from_json(o, d, err)) < 0)
		return r;
	if (json_object_get(o, "path") &&
	    (r = cd_json_get_strdup(o, "path", CD_PATH_MAX, &d->path, err)) < 0)
		return r;
	/* the kind's own fields (docs/image-format.md, Files) */
	const struct cd_fd_ops *ops = cd_fd_ops_of(d->kind);
	if (!ops)
		return cd_err_set(err, EINVAL, "field \"kind\": %d is not a kind of fd", d->kind);
	if (ops->has_path && !d->path)
		return cd_err_set(err, EINVAL, "field \"path\": missing for kind %d", d->kind);
	const struct cd_field *kf;
	size_t nkf;
	if ((kf = fd_kind_fields(d->kind, &nkf)) && (r = cd_fields_decode(o, kf, nkf, d, err)) < 0)
		return r;
	if (d->kind == CD_FD_EPOLL && (r = watches_from_json(o, d, err)) < 0)
		return r;
	if (d->kind == CD_FD_INOTIFY && (r = iwatches_from_json(o, d, err)) < 0)
		return r;
	/* sun_path's bytes: the kind's check refuses more than fit */
	if (d->kind == CD_FD_UNIX &&
	    ((r = cd_json_hex_decode(o, "sk_addr", CD_UNIX_ADDR_MAX, &d->sk_addr, &d->sk_addrlen,
	                             err)) < 0 ||
	     (r = sk_queue_from_json(o, d, err)) < 0))
		return r;
	/* socket addresses: the kind's check holds them to their family's size */
	if ((d->kind == CD_FD_INET || d->kind == CD_FD_NETLINK) &&
	    ((r = cd_json_hex_decode(o, "sk_addr", CD_UNIX_ADDR_MAX, &d->sk_addr, &d->sk_addrlen,
	                             err)) < 0 ||
	     (r = cd_json_hex_decode(o, "sk_paddr", CD_UNIX_ADDR_MAX, &d->sk_paddr, &d->sk_paddrlen,
	                             err)) < 0))
		return r;
	return d->kind == CD_FD_INET ? tcp_from_json(o, d, err) : 0;
}

/* Installed with dup3: a second entry for one number would silently
 * replace the first. */
static int check_fd_numbers(const struct cd_task *t, cd_err *err)
{
	_cleanup_free_ int64_t *v = calloc(t->nfds + 1, sizeof(*v));
	int64_t dup;

	if (!v)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < t->nfds; i++)
		v[i] = t->fds[i].fd;
	if (cd_ints_sorted_repeat(v, t->nfds, &dup))
		return cd_err_set(err, EINVAL, "field \"fd\": %" PRId64 " repeated", dup);
	return 0;
}

static int fds_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	size_t i;
	json_t *a, *x;
	int r = cd_json_get_array(o, "fds", 0, CD_MAX_FDS, &a, err);

	if (r < 0)
		return r;
	t->fds = calloc(json_array_size(a) + 1, sizeof(*t->fds));
	if (!t->fds)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x)
	{
		struct cd_fd *d = &t->fds[t->nfds++];
		if ((r = fd_from_json(x, d, err)) < 0)
			return cd_err_wrap(err, "fd %zu", i);
	}
	return check_fd_numbers(t, err);
}

static int siginfo_from_json(json_t *o, uint8_t out[128], cd_err *err)
{
	_cleanup_free_ uint8_t *buf = NULL;
	int32_t signo;
	size_t len;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_json_hex_decode(o, "siginfo", 128, &buf, &len, err)) < 0)
		return r;
	if (len != 128)
		return cd_err_set(err, EINVAL, "field \"siginfo\": %zu bytes, expected 128", len);
	memcpy(&signo, buf, sizeof(signo)); /* si_signo comes first */
	if (signo < 1 || signo > CD_NSIG)
		return cd_err_set(err, EINVAL, "field \"siginfo\": signal %d out of range [1, %d]",
		                  signo, CD_NSIG);
	memcpy(out, buf, 128);
	return 0;
}

static int siginfos_from_json(json_t *o, const char *key, uint8_t (**ret)[128], size_t *ret_n,
                              cd_err *err)
{
	size_t i;
	json_t *a, *x;
	int r = cd_json_get_array(o, key, 0, CD_MAX_PENDING, &a, err);

	if (r < 0)
		return r;
	*ret = calloc(json_array_size(a) + 1, 128);
	if (!*ret)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x)
	{
		if ((r = siginfo_from_json(x, (*ret)[i], err)) < 0)
			return cd_err_wrap(err, "%s %zu", key, i);
		(*ret_n)++;
	}
	return 0;
}

/* A usec field is below one second; the seconds are never negative. */
static int itimers_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *a;
	int r = cd_json_get_array(o, "itimers", 12, 12, &a, err);

	for (size_t i = 0; r == 0 && i < 12; i++)
		r = cd_json_elem_int(a, "itimers", i, 0, i % 2 ? 999999 : INT64_MAX,
		                     &t->itimer[i / 4][i % 4], err);
	return r;
}

/* A CPU clock as the kernel records it: ~pid << 3 | which, with the
 * per-thread bit 4; which 3 is a dynamic (fd) clock. */
static bool timer_clock_ok(int clock, pid_t pid)
{
	if (clock >= 0)
		return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC ||
		       clock == CLOCK_BOOTTIME || clock == CLOCK_TAI;
	pid_t of = (pid_t)(~clock >> 3);
	return (clock & 3) != 3 && (of == 0 || of == pid);
}

/* "tid" came with threads: without it a timer notifies the task itself.
 * The kernel sends a SIGEV_THREAD_ID timer's signal to that thread only,
 * which must be one of the task's (decoded before its timers). */
static int timer_tid_from_json(json_t *o, const struct cd_task *t, struct cd_posix_timer *pt,
                               cd_err *err)
{
	int64_t v = t->pid;
	int r;

	if (json_object_get(o, "tid") &&
	    (r = cd_json_get_int(o, "tid", 1, CD_PID_MAX, &v, err)) < 0)
		return r;
	pt->tid = (pid_t)v;
	if (pt->tid == t->pid)
		return 0;
	for (size_t i = 0; (pt->notify & SIGEV_THREAD_ID) && i < t->nthreads; i++)
		if (t->threads[i].tid == pt->tid)
			return 0;
	return cd_err_set(err, EINVAL, "field \"tid\": %d is not a thread of the task it notifies",
	                  pt->tid);
}

static int timer_from_json(json_t *o, const struct cd_task *t, struct cd_posix_timer *pt,
                           cd_err *err)
{
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_fields_decode(o, timer_fields, ARRAY_SIZE(timer_fields), pt, err)) < 0)
		return r;
	if (!timer_clock_ok(pt->clock, t->pid))
		return cd_err_set(err, EINVAL, "field \"clock\": clock %d is not restored",
		                  pt->clock);
	if (pt->notify != SIGEV_SIGNAL && pt->notify != SIGEV_NONE &&
	    pt->notify != (SIGEV_SIGNAL | SIGEV_THREAD_ID))
		return cd_err_set(err, EINVAL, "field \"notify\": %d is not restored", pt->notify);
	if (pt->notify != SIGEV_NONE && pt->signo < 1)
		return cd_err_set(err, EINVAL, "field \"signo\": no signal to notify with");
	return timer_tid_from_json(o, t, pt, err);
}

/* timer_create takes each id once: a repeated one would fail half-way. */
static int timers_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *a, *x;
	size_t i;
	int r;

	if (!json_object_get(o, "posix_timers"))
		return 0; /* an image from before POSIX timers were dumped */
	if ((r = cd_json_get_array(o, "posix_timers", 0, CD_MAX_TIMERS, &a, err)) < 0)
		return r;
	t->timers = calloc(json_array_size(a) + 1, sizeof(*t->timers));
	_cleanup_free_ int64_t *ids = calloc(json_array_size(a) + 1, sizeof(*ids));
	if (!t->timers || !ids)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x)
	{
		if ((r = timer_from_json(x, t, &t->timers[t->ntimers], err)) < 0)
			return cd_err_wrap(err, "posix timer %zu", i);
		ids[i] = t->timers[t->ntimers++].id;
	}
	int64_t dup;
	if (cd_ints_sorted_repeat(ids, t->ntimers, &dup))
		return cd_err_set(err, EINVAL, "posix timers: id %" PRId64 " repeated", dup);
	return 0;
}

static const struct cd_fd *task_fd(const struct cd_task *t, int fd)
{
	for (size_t i = 0; i < t->nfds; i++)
		if (t->fds[i].fd == fd)
			return &t->fds[i];
	return NULL;
}

/* A lock is set through an fd of the task that reopens a file or directory. */
static int lock_from_json(json_t *o, const struct cd_task *t, struct cd_lock *l, cd_err *err)
{
	const struct cd_fd *d;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_fields_decode(o, lock_fields, ARRAY_SIZE(lock_fields), l, err)) < 0)
		return r;
	d = task_fd(t, l->fd);
	if (!d || (d->kind != CD_FD_REG && d->kind != CD_FD_DIR))
		return cd_err_set(err, EINVAL, "field \"fd\": %d is not a file of the task", l->fd);
	if (l->start > INT64_MAX - l->len)
		return cd_err_set(err, EINVAL, "fields \"start\", \"len\": range overflows");
	if (l->kind == CD_LOCK_FLOCK && (l->start || l->len))
		return cd_err_set(err, EINVAL, "field \"start\": a flock lock has no range");
	return 0;
}

static int locks_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *a, *x;
	size_t i;
	int r;

	if (!json_object_get(o, "locks"))
		return 0; /* an image from before file locks were dumped */
	if ((r = cd_json_get_array(o, "locks", 0, CD_MAX_LOCKS, &a, err)) < 0)
		return r;
	t->locks = calloc(json_array_size(a) + 1, sizeof(*t->locks));
	if (!t->locks)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x)
	{
		if ((r = lock_from_json(x, t, &t->locks[t->nlocks], err)) < 0)
			return cd_err_wrap(err, "lock %zu", i);
		t->nlocks++;
	}
	return 0;
}

static int groups_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *a;
	int64_t g;
	int r = cd_json_get_array(o, "groups", 0, CD_MAX_GROUPS, &a, err);

	if (r < 0)
		return r;
	t->groups = calloc(json_array_size(a) + 1, sizeof(*t->groups));
	if (!t->groups)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(a); i++) {
		if ((r = cd_json_elem_int(a, "groups", i, 0, UINT32_MAX - 1, &g, err)) < 0)
			return r;
		t->groups[t->ngroups++] = (uint32_t)g;
	}
	return 0;
}

static int sigactions_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *a, *x;
	size_t i;
	int r = cd_json_get_array(o, "sigactions", CD_NSIG, CD_NSIG, &a, err);

	if (r < 0)
		return r;
	json_array_foreach(a, i, x)
	{
		/* one [handler, flags, restorer, mask] per signal */
		r = cd_json_u64s(x, "sigactions", 4, 4, &t->act[i].handler, NULL, err);
		if (r < 0)
			return cd_err_wrap(err, "signal %zu", i + 1);
	}
	return 0;
}

static int attrs_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	int r;

	if ((r = itimers_from_json(o, t, err)) < 0 ||
	    (r = cd_json_get_u64s(o, "rlimits", 2 * CD_NRLIMIT, 2 * CD_NRLIMIT, &t->rlim[0][0],
	                          NULL, err)) < 0 ||
	    (r = cd_json_get_u64s(o, "affinity", ARRAY_SIZE(t->affinity), ARRAY_SIZE(t->affinity),
	                          t->affinity, NULL, err)) < 0 ||
	    (r = cd_json_get_u32s(o, "uids", 4, t->uid, err)) < 0 ||
	    (r = cd_json_get_u32s(o, "gids", 4, t->gid, err)) < 0 ||
	    (r = groups_from_json(o, t, err)) < 0)
		return r;
	return sigactions_from_json(o, t, err);
}

/* The page file is opened in the image directory: a plain name only. */
static int pages_file_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	const char *pf;
	int r = cd_json_get_str(o, "pages_file", sizeof(t->pages_file) - 1, &pf, err);

	if (r < 0)
		return r;
	if (!*pf || strchr(pf, '/') || !strcmp(pf, ".") || !strcmp(pf, ".."))
		return cd_err_set(err, EINVAL, "field \"pages_file\": bad page file name \"%s\"",
		                  pf);
	strcpy(t->pages_file, pf);
	return 0;
}

static int mm_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *mm;
	int r;

	if ((r = cd_json_get_object(o, "mm", &mm, err)) < 0 ||
	    (r = cd_fields_decode(mm, mm_fields, ARRAY_SIZE(mm_fields), &t->mm, err)) < 0 ||
	    (r = cd_json_get_u64s(mm, "auxv", 0, ARRAY_SIZE(t->mm.auxv), t->mm.auxv,
	                          &t->mm.auxv_len, err)) < 0 ||
	    (r = cd_json_get_strdup(mm, "exe", CD_PATH_MAX, &t->mm.exe, err)) < 0)
		return cd_err_wrap(err, "mm");
	if (t->mm.auxv_len % 2)
		return cd_err_set(err, EINVAL, "mm: field \"auxv\": odd length %zu",
		                  t->mm.auxv_len);
	return 0;
}

static int head_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *regs;
	const char *comm;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_fields_decode(o, task_fields, ARRAY_SIZE(task_fields), t, err)) < 0 ||
	    (r = cd_json_get_str(o, "comm", sizeof(t->comm) - 1, &comm, err)) < 0 ||
	    (r = pages_file_from_json(o, t, err)) < 0 ||
	    (r = cd_json_get_object(o, "regs", &regs, err)) < 0)
		return r;
	snprintf(t->comm, sizeof(t->comm), "%s", comm);
	if ((r = cd_fields_decode(regs, reg_fields, ARRAY_SIZE(reg_fields), &t->regs, err)) < 0)
		return cd_err_wrap(err, "regs");
	return 0;
}

/* What a task can exit with and the restore can exit with again: a code,
 * or a signal without the core-dump flag (that would need a core file). */
static bool exit_status_ok(int st)
{
	int sig = st & 0x7f;

	return sig == 0 ? (st & 0xff) == 0 : sig < 0x7f && (st & ~0x7f) == 0;
}

static int zombie_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	const char *comm;
	int r;

	t->zombie = true;
	if ((r = cd_fields_decode(o, zombie_fields, ARRAY_SIZE(zombie_fields), t, err)) < 0 ||
	    (r = cd_json_get_str(o, "comm", sizeof(t->comm) - 1, &comm, err)) < 0)
		return r;
	snprintf(t->comm, sizeof(t->comm), "%s", comm);
	if (!exit_status_ok(t->exit_status))
		return cd_err_set(err, EINVAL, "pid %d: field \"exit_status\": %#x is not an exit",
		                  t->pid, t->exit_status);
	return 0;
}

static bool nodes_empty(const struct cd_mempolicy *p)
{
	for (size_t i = 0; i < ARRAY_SIZE(p->nodes); i++)
		if (p->nodes[i])
			return false;
	return true;
}

/* What set_mempolicy and mbind take (mm/mempolicy.c, mpol_new and
 * sanitize_mpol_flags), and what get_mempolicy shows: default without
 * flags or nodes, local without nodes, the node-set modes with nodes. An
 * empty preferred is how older kernels show local. */
static int mempolicy_check(const struct cd_mempolicy *p, cd_err *err)
{
	bool empty = nodes_empty(p);

	if (p->flags & ~CD_MPOL_FLAGS)
		return cd_err_set(err, EINVAL, "field \"flags\": %#x is not mode flags", p->flags);
	if ((p->flags & CD_MPOL_F_STATIC) && (p->flags & CD_MPOL_F_RELATIVE))
		return cd_err_set(err, EINVAL, "field \"flags\": both static and relative nodes");
	if ((p->flags & CD_MPOL_F_BALANCE) && p->mode != MPOL_BIND &&
	    p->mode != MPOL_PREFERRED_MANY)
		return cd_err_set(err, EINVAL,
		                  "field \"flags\": NUMA balancing with mode %d (not bind)",
		                  p->mode);
	switch (p->mode) {
	case MPOL_DEFAULT:
		if (p->flags || !empty)
			return cd_err_set(err, EINVAL, "fields \"flags\", \"nodes\": on default");
		return 0;
	case MPOL_LOCAL:
		if (p->flags || !empty)
			return cd_err_set(err, EINVAL, "fields \"flags\", \"nodes\": on local");
		return 0;
	case MPOL_PREFERRED:
		return 0;
	default:
		if (empty)
			return cd_err_set(err, EINVAL, "field \"nodes\": mode %d without nodes",
			                  p->mode);
		return 0;
	}
}

/* The policy's fields in o. */
static int mpol_decode(json_t *o, struct cd_mempolicy *p, cd_err *err)
{
	int r;

	if ((r = cd_fields_decode(o, mpol_fields, ARRAY_SIZE(mpol_fields), p, err)) < 0 ||
	    (r = cd_json_get_u64s(o, "nodes", ARRAY_SIZE(p->nodes), ARRAY_SIZE(p->nodes), p->nodes,
	                          NULL, err)) < 0)
		return r;
	return mempolicy_check(p, err);
}

/* "stop_sig" and "stop_notify" came with stopped tasks: without them, a
 * running task. A group stops by SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU; only
 * a stopped task has a stop to report. */
static int stop_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	int64_t v;
	int r;

	if (json_object_get(o, "stop_sig")) {
		if ((r = cd_json_get_int(o, "stop_sig", 0, CD_NSIG, &v, err)) < 0)
			return r;
		if (v && v != SIGSTOP && v != SIGTSTP && v != SIGTTIN && v != SIGTTOU)
			return cd_err_set(err, EINVAL,
			                  "field \"stop_sig\": %d is not a stop signal", (int)v);
		t->stop_sig = (int)v;
	}
	if (json_object_get(o, "stop_notify") &&
	    (r = cd_json_get_bool(o, "stop_notify", &t->stop_notify, err)) < 0)
		return r;
	if (t->stop_notify && !t->stop_sig)
		return cd_err_set(err, EINVAL, "field \"stop_notify\": the task is not stopped");
	return 0;
}

/* One seccomp filter: a program of 1 to BPF_MAXINSNS instructions (the
 * kernel checks the program itself when it is installed), flags LOG and
 * SPEC_ALLOW only. */
static int filter_from_json(json_t *o, struct cd_seccomp_filter *f, cd_err *err)
{
	uint8_t *buf = NULL;
	size_t len;
	int64_t flags;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_json_get_int(o, "flags", 0, 6, &flags, err)) < 0)
		return r;
	if (flags & 1)
		return cd_err_set(err, EINVAL, "field \"flags\": TSYNC is not a filter's");
	f->flags = (uint32_t)flags;
	if ((r = cd_json_hex_decode(o, "insns", CD_SECCOMP_MAX_INSNS * sizeof(*f->insns), &buf,
	                            &len, err)) < 0)
		return r;
	f->insns = (uint64_t *)buf;
	f->ninsns = len / sizeof(*f->insns);
	if (!len || len % sizeof(*f->insns))
		return cd_err_set(err, EINVAL, "field \"insns\": %zu bytes, not whole instructions",
		                  len);
	return 0;
}

/* "seccomp" came with seccomp: without it, none. Filters only in filter
 * mode, at least one, within the kernel's limit for a chain. */
static int seccomp_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *s, *a, *x;
	size_t i, path = 0;
	int64_t mode;
	int r;

	if (!json_object_get(o, "seccomp"))
		return 0;
	if ((r = cd_json_get_object(o, "seccomp", &s, err)) < 0 ||
	    (r = cd_json_get_int(s, "mode", 0, 2, &mode, err)) < 0 ||
	    (r = cd_json_get_array(s, "filters", mode == 2 ? 1 : 0,
	                           mode == 2 ? CD_SECCOMP_MAX_FILTERS : 0, &a, err)) < 0)
		return cd_err_wrap(err, "seccomp");
	t->seccomp_mode = (int)mode;
	t->filters = calloc(json_array_size(a) + 1, sizeof(*t->filters));
	if (!t->filters)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x)
	{
		r = filter_from_json(x, &t->filters[t->nfilters], err);
		t->nfilters++;
		if (r < 0)
			return cd_err_wrap(err, "seccomp filter %zu", i);
		path += t->filters[i].ninsns + 4;
	}
	if (path > CD_SECCOMP_MAX_PATH)
		return cd_err_set(err, EINVAL, "seccomp: %zu instructions, above the kernel's %d",
		                  path, CD_SECCOMP_MAX_PATH);
	return 0;
}

/* "mempolicy" came with NUMA policies: without it, the default. */
static int mpol_from_json(json_t *o, struct cd_mempolicy *p, cd_err *err)
{
	json_t *x;
	int r;

	if (!json_object_get(o, "mempolicy"))
		return 0;
	if ((r = cd_json_get_object(o, "mempolicy", &x, err)) < 0)
		return r;
	if ((r = mpol_decode(x, p, err)) < 0)
		return cd_err_wrap(err, "mempolicy");
	return 0;
}

/* The mapping of t that starts at start, NULL when none (t's mappings are
 * in order: vmas_from_json). */
static const struct cd_vma *vma_at(const struct cd_task *t, uint64_t start)
{
	size_t lo = 0, hi = t->nvmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->vmas[mid].start == start)
			return &t->vmas[mid];
		if (t->vmas[mid].start < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A mapping's own policy: one whole private mapping of t, in order, not
 * the default (which is no policy of its own). Shared memory's policy
 * belongs to its object, which the dump refuses. */
static int vpol_from_json(json_t *o, const struct cd_task *t, const struct cd_vma_policy *prev,
                          struct cd_vma_policy *vp, cd_err *err)
{
	const struct cd_vma *v;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_fields_decode(o, vpol_fields, ARRAY_SIZE(vpol_fields), vp, err)) < 0 ||
	    (r = mpol_decode(o, &vp->pol, err)) < 0)
		return r;
	v = vma_at(t, vp->start);
	if (!v || v->end != vp->end || (v->kind != CD_VMA_ANON && v->kind != CD_VMA_FILE))
		return cd_err_set(err, EINVAL,
		                  "fields \"start\", \"end\": %" PRIx64 "-%" PRIx64
		                  " is not a private mapping of the task",
		                  vp->start, vp->end);
	if (prev && vp->start < prev->end)
		return cd_err_set(err, EINVAL, "field \"start\": out of order");
	if (vp->pol.mode == MPOL_DEFAULT)
		return cd_err_set(err, EINVAL, "field \"mode\": default is no policy of its own");
	return 0;
}

/* "mempolicy" and "vma_policies" came with NUMA policies: without them,
 * the default everywhere. */
static int numa_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *a, *x;
	size_t i;
	int r;

	if ((r = mpol_from_json(o, &t->mempolicy, err)) < 0 || !json_object_get(o, "vma_policies"))
		return r;
	if ((r = cd_json_get_array(o, "vma_policies", 0, CD_MAX_VMAS, &a, err)) < 0)
		return r;
	t->vpols = calloc(json_array_size(a) + 1, sizeof(*t->vpols));
	if (!t->vpols)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x)
	{
		struct cd_vma_policy *vp = &t->vpols[t->nvpols];
		r = vpol_from_json(x, t, i ? vp - 1 : NULL, vp, err);
		t->nvpols++;
		if (r < 0)
			return cd_err_wrap(err, "mapping policy %zu", i);
	}
	return 0;
}

static int thread_from_json(json_t *o, struct cd_thread *th, cd_err *err)
{
	json_t *regs;
	const char *comm;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_fields_decode(o, thread_fields, ARRAY_SIZE(thread_fields), th, err)) < 0 ||
	    (r = cd_json_get_str(o, "comm", sizeof(th->comm) - 1, &comm, err)) < 0 ||
	    (r = cd_json_get_object(o, "regs", &regs, err)) < 0)
		return r;
	snprintf(th->comm, sizeof(th->comm), "%s", comm);
	if ((r = cd_fields_decode(regs, reg_fields, ARRAY_SIZE(reg_fields), &th->regs, err)) < 0)
		return cd_err_wrap(err, "regs");
	if ((r = cd_json_hex_decode(o, "xstate", CD_XSTATE_MAX, &th->xstate, &th->xstate_len,
	                            err)) < 0 ||
	    (r = siginfos_from_json(o, "pending", &th->pending, &th->npending, err)) < 0)
		return r;
	if ((r = cd_json_get_u64s(o, "affinity", ARRAY_SIZE(th->affinity), ARRAY_SIZE(th->affinity),
	                          th->affinity, NULL, err)) < 0)
		return r;
	return mpol_from_json(o, &th->mempolicy, err);
}

/* "threads" came with multi-threaded dumps: an image without it has one. */
static int threads_from_json(json_t *o, struct cd_task *t, cd_err *err)
{
	json_t *a, *x;
	size_t i;
	int r;

	if (!json_object_get(o, "threads"))
		return 0;
	if ((r = cd_json_get_array(o, "threads", 0, CD_MAX_THREADS, &a, err)) < 0)
		return r;
	t->threads = calloc(json_array_size(a) + 1, sizeof(*t->threads));
	if (!t->threads)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(a, i, x)
	{
		struct cd_thread *th = &t->threads[t->nthreads++];
		if ((r = thread_from_json(x, th, err)) < 0)
			return cd_err_wrap(err, "thread %zu", i);
		if (th->tid == t->pid)
			return cd_err_set(err, EINVAL,
			                  "thread %zu: field \"tid\": %d is the main thread's", i,
			                  th->tid);
	}
	return 0;
}

int cd_task_from_json(json_t *o, const struct cd_runs_cuts *cuts, struct cd_task *t, cd_err *err)
{
	int r;

	/* a zombie is the object with a wait status */
	if (json_is_object(o) && json_object_get(o, "exit_status"))
		return zombie_from_json(o, t, err);
	if ((r = head_from_json(o, t, err)) < 0)
		return r;
	if ((r = cd_json_hex_decode(o, "xstate", CD_XSTATE_MAX, &t->xstate, &t->xstate_len, err)) <
	        0 ||
	    (r = mm_from_json(o, t, err)) < 0 ||
	    (r = cd_json_get_strdup(o, "cwd", CD_PATH_MAX, &t->cwd, err)) < 0 ||
	    (r = cd_json_get_strdup(o, "root", CD_PATH_MAX, &t->root, err)) < 0 ||
	    (r = vmas_from_json(o, cuts, t, err)) < 0 || (r = fds_from_json(o, t, err)) < 0 ||
	    (r = siginfos_from_json(o, "pending", &t->pending, &t->npending, err)) < 0 ||
	    (r = siginfos_from_json(o, "pending_shared", &t->pending_shared, &t->npending_shared,
	                            err)) < 0 ||
	    (r = attrs_from_json(o, t, err)) < 0 || (r = threads_from_json(o, t, err)) < 0 ||
	    (r = timers_from_json(o, t, err)) < 0 || (r = locks_from_json(o, t, err)) < 0 ||
	    (r = numa_from_json(o, t, err)) < 0 || (r = stop_from_json(o, t, err)) < 0 ||
	    (r = seccomp_from_json(o, t, err)) < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	return 0;
}
