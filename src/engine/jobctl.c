/* Stopped tasks (job control): a task whose group was stopped by SIGSTOP,
 * SIGTSTP, SIGTTIN or SIGTTOU is dumped (the seize takes it out of its
 * group stop for our calls; the kernel puts it back when it is let go) and
 * comes back stopped by the same signal, so that SIGCONT resumes it. Its
 * parent, when in the tree, gets what its wait and its signals showed: the
 * stop still to report to a WUNTRACED wait (the parent's own waitid with
 * WNOWAIT tells at dump), or already reported; no SIGCHLD the image does
 * not hold. A task traced by another tracer is refused (dump.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h"

static const char *sig_name(int sig)
{
	switch (sig) {
	case SIGSTOP:
		return "SIGSTOP";
	case SIGTSTP:
		return "SIGTSTP";
	case SIGTTIN:
		return "SIGTTIN";
	case SIGTTOU:
		return "SIGTTOU";
	default:
		return "a stop signal";
	}
}

/* ---- dump ---- */

/* Whether the kernel would drop a SIGTSTP, SIGTTIN or SIGTTOU sent to a
 * member of group g as the restore lays it out: a group is orphaned when no
 * member has a parent in the same session but another group (the root's
 * parent, outside the tree, is in another session). */
static bool group_orphaned(const struct cd_image *img, pid_t g)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *m = &img->tasks[i];
		if (m->zombie || m->new_pgid != g || m->pid == img->root)
			continue;
		const struct cd_task *p = cd_image_task((struct cd_image *)img, m->ppid);
		if (p && !p->zombie && p->new_pgid != g && p->new_sid == m->new_sid)
			return false;
	}
	return true;
}

int cd_jobctl_check(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		if (t->zombie || !t->stop_sig || t->stop_sig == SIGSTOP)
			continue;
		if (group_orphaned(img, t->new_pgid))
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "pid %d (%s): stopped by %s in process group %d, which the "
			    "restore leaves orphaned: the kernel would drop that signal "
			    "(only SIGSTOP stops such a group); not supported",
			    t->pid, t->comm, sig_name(t->stop_sig), t->new_pgid);
	}
	return 0;
}

/* Whether t's own signal queue holds a SIGCHLD (si_signo, the first int). */
static bool queue_has_sigchld(const uint8_t (*q)[128], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int signo;
		memcpy(&signo, q[i], sizeof(signo));
		if (signo == SIGCHLD)
			return true;
	}
	return false;
}

/* Asks parent t itself whether its wait has still to report the stop of
 * child c (waitid with WNOWAIT: nothing is taken). */
static int dump_child_stop(struct cd_dump_ctx *ctx, const struct cd_task *t, struct cd_task *c,
                           cd_err *err)
{
	siginfo_t si;
	int r = cd_call_ok(ctx->inj, "waitid(WNOWAIT)", SYS_waitid, P_PID, (uint64_t)c->pid,
	                   ctx->scratch, WSTOPPED | WNOHANG | WNOWAIT, 0, 0, NULL, err);

	if (r < 0 || (r = cd_inject_read_mem(ctx->inj, ctx->scratch, &si, sizeof(si), err)) < 0)
		return cd_err_wrap(err, "pid %d: its stopped child %d", t->pid, c->pid);
	c->stop_notify = si.si_pid == c->pid && si.si_code == CLD_STOPPED;
	if (c->stop_notify && si.si_status != c->stop_sig)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: its wait reports child %d stopped by signal %d, which "
		                  "its group stop says was %d",
		                  t->pid, c->pid, si.si_status, c->stop_sig);
	/* the restore takes the SIGCHLD its stop sends from the shared queue:
	 * one in the main thread's own queue would be taken first */
	if (queue_has_sigchld(t->pending, t->npending))
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d (%s): a SIGCHLD queued for its main thread, and a stopped "
		    "child %d: not supported",
		    t->pid, t->comm, c->pid);
	return 0;
}

/* For each stopped child of t in the tree (after the signals module: t's
 * queues are read). */
static int jobctl_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ctx->img->ntasks; i++) {
		struct cd_task *c = &ctx->img->tasks[i];
		if (c != t && !c->zombie && c->stop_sig && c->ppid == t->pid)
			r = dump_child_stop(ctx, t, c, err);
	}
	return r;
}

const struct cd_module cd_mod_jobctl = {.name = "jobctl", .dump = jobctl_dump};

/* ---- restore ---- */

/* Polls until every thread of t is in the group stop (state T), up to 5 s. */
static int wait_group_stopped(const struct cd_task *t, cd_err *err)
{
	for (int tries = 0; tries < 5000; tries++) {
		bool all = true;
		for (size_t k = 0; all && k <= t->nthreads; k++) {
			struct cd_proc_stat st;
			pid_t tid = k ? t->threads[k - 1].tid : t->pid;
			int r = cd_proc_stat(tid, &st, err);
			if (r < 0)
				return r;
			all = st.state == 'T';
		}
		if (all)
			return 0;
		usleep(1000);
	}
	return cd_err_set(err, ETIMEDOUT, "pid %d: did not stop (%s)", t->pid,
	                  sig_name(t->stop_sig));
}

/* Lets t go into its group stop: the signal is queued while t is still in
 * our stop, so it stops before an instruction of its own; its other
 * threads are let go once the main thread has started the group stop. */
static int stop_task(const struct cd_task *t, cd_inject *inj, cd_inject **thr, cd_err *err)
{
	int r;

	if (syscall(SYS_tgkill, t->pid, t->pid, t->stop_sig) < 0)
		return cd_err_sys(err, errno, "pid %d: queue %s", t->pid, sig_name(t->stop_sig));
	if ((r = cd_inject_detach(inj, err)) < 0)
		return r;
	for (size_t k = 0; k < t->nthreads; k++) {
		struct cd_proc_stat st;
		for (int tries = 0; k == 0 && tries < 5000; tries++) {
			if ((r = cd_proc_stat(t->pid, &st, err)) < 0)
				return r;
			if (st.state == 'T')
				break;
			usleep(1000);
		}
		if ((r = cd_inject_detach(thr[k], err)) < 0)
			return r;
	}
	return wait_group_stopped(t, err);
}

/* Scratch memory in parent p, below its stack pointer and red zone, whose
 * contents are put back after. */
#define SCRATCH_BELOW 1024
#define SCRATCH_LEN   256

struct parent_call {
	cd_inject *inj;
	uint64_t blocked; /* the mask the transplant gave it */
	struct user_regs_struct regs;
	uint64_t at;
	uint8_t saved[SCRATCH_LEN];
};

/* Every signal blocked meanwhile: the SIGCHLD of the stop would otherwise
 * stop our calls for its delivery. */
static int parent_begin(struct parent_call *pc, const struct cd_task *p, cd_inject *inj,
                        cd_err *err)
{
	int r;

	pc->inj = inj;
	pc->blocked = p->blocked;
	if ((r = cd_inject_find_vdso_site(inj, err)) < 0 ||
	    (r = cd_inject_get_regs(inj, &pc->regs, err)) < 0 ||
	    (r = cd_inject_set_sigmask(inj, ~0ULL, err)) < 0)
		return r;
	pc->at = (pc->regs.rsp - SCRATCH_BELOW - SCRATCH_LEN) & ~(uint64_t)15;
	return cd_inject_read_mem(inj, pc->at, pc->saved, sizeof(pc->saved), err);
}

/* Puts the parent's registers and memory back as the transplant left them. */
static int parent_end(struct parent_call *pc, cd_err *err)
{
	int r = cd_inject_write_mem(pc->inj, pc->at, pc->saved, sizeof(pc->saved), err);

	if (r >= 0)
		r = cd_inject_set_regs(pc->inj, &pc->regs, err);
	return r < 0 ? r : cd_inject_set_sigmask(pc->inj, pc->blocked, err);
}

/* The wait of parent p reports c's stop as soon as the group is stopped:
 * taken, as p had taken it before the dump. */
static int take_stop_report(struct parent_call *pc, const struct cd_task *p,
                            const struct cd_task *c, cd_err *err)
{
	siginfo_t si = {0};
	int r = cd_call_ok(pc->inj, "waitid", SYS_waitid, P_PID, (uint64_t)c->pid, pc->at,
	                   WSTOPPED | WNOHANG, 0, 0, NULL, err);

	if (r < 0 || (r = cd_inject_read_mem(pc->inj, pc->at, &si, sizeof(si), err)) < 0)
		return r;
	if (si.si_pid != c->pid || si.si_code != CLD_STOPPED)
		return cd_err_set(err, EPROTO, "pid %d: its wait did not report child %d stopped",
		                  p->pid, c->pid);
	return 0;
}

static bool queue_sigchld(const struct cd_task *p)
{
	return queue_has_sigchld(p->pending_shared, p->npending_shared);
}

/* c's stop sent p a SIGCHLD (unless p ignores it or asked SA_NOCLDSTOP;
 * a traced p queues it even at its default): taken from the shared queue
 * when the image's holds none. */
static int take_sigchld(struct parent_call *pc, const struct cd_task *p, cd_err *err)
{
	const struct cd_sigact *a = &p->act[SIGCHLD - 1];
	const uint64_t set = 1ULL << (SIGCHLD - 1), zero[2] = {0, 0};
	struct cd_proc_status st = {0};
	int r;

	if (a->handler == (uint64_t)(uintptr_t)SIG_IGN || (a->flags & SA_NOCLDSTOP) ||
	    queue_sigchld(p))
		return 0;
	for (int tries = 0; tries < 5000 && !(st.shdpnd & set); tries++) {
		if ((r = cd_proc_status(p->pid, &st, err)) < 0)
			return r;
		if (!(st.shdpnd & set))
			usleep(1000);
	}
	if (!(st.shdpnd & set))
		return cd_err_set(err, ETIMEDOUT, "pid %d: no SIGCHLD from its child's stop",
		                  p->pid);
	if ((r = cd_inject_write_mem(pc->inj, pc->at, &set, sizeof(set), err)) < 0 ||
	    (r = cd_inject_write_mem(pc->inj, pc->at + 16, zero, sizeof(zero), err)) < 0)
		return r;
	return cd_call_ok(pc->inj, "rt_sigtimedwait(SIGCHLD)", SYS_rt_sigtimedwait, pc->at, 0,
	                  pc->at + 16, sizeof(set), 0, 0, NULL, err);
}

/* Parent p, still ours at its final state, gets its wait and its queue
 * back to the image's. */
static int fix_parent(const struct cd_task *p, cd_inject *inj, const struct cd_task *c, cd_err *err)
{
	struct parent_call pc;
	int r = parent_begin(&pc, p, inj, err);

	if (r < 0)
		return r;
	if (!c->stop_notify)
		r = take_stop_report(&pc, p, c, err);
	if (r >= 0)
		r = take_sigchld(&pc, p, err);
	int r2 = parent_end(&pc, r < 0 ? &(cd_err){0} : err);
	return r < 0 ? r : r2;
}

int cd_jobctl_release(const struct cd_image *img, cd_inject **inj, cd_inject ***thr, cd_err *err)
{
	int r = 0;

	/* children first: a parent is fixed while it is still ours */
	for (size_t i = img->ntasks; r >= 0 && i-- > 0;) {
		const struct cd_task *t = &img->tasks[i];
		if (t->zombie || !t->stop_sig || !inj[i])
			continue;
		r = stop_task(t, inj[i], thr[i], err);
		const struct cd_task *p =
		    t->pid == img->root ? NULL : cd_image_task((struct cd_image *)img, t->ppid);
		size_t j = p ? (size_t)(p - img->tasks) : 0;
		if (r >= 0 && p && inj[j])
			r = fix_parent(p, inj[j], t, err);
		if (r < 0)
			r = cd_err_wrap(err, "pid %d", t->pid);
	}
	return r;
}
