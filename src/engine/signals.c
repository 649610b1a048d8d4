/* Signals: handlers (read and set by injected rt_sigaction), the blocked
 * mask (ptrace), pending signals (PTRACE_PEEKSIGINFO; queued again from
 * inside the task) and the alternate signal stack. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "engine/internal.h"

#define KSIGACTION_SIZE 32 /* handler, flags, restorer, mask */
#define STACK_T_SIZE    24

static int peek_pending(pid_t pid, uint32_t flags, uint8_t (**ret)[128], size_t *ret_n, cd_err *err)
{
	uint8_t buf[32][128];
	size_t n = 0;

	*ret = NULL;
	for (;;) {
		struct __ptrace_peeksiginfo_args a = {.off = n, .flags = flags, .nr = 32};
		long got = ptrace(PTRACE_PEEKSIGINFO, pid, &a, buf);
		if (got < 0)
			return cd_err_sys(err, errno, "pid %d: read pending signals", pid);
		if (got == 0)
			break;
		uint8_t(*nb)[128] = realloc(*ret, (n + (size_t)got) * 128);
		if (!nb)
			return cd_err_set(err, ENOMEM, "out of memory");
		*ret = nb;
		memcpy((*ret)[n], buf, (size_t)got * 128);
		n += (size_t)got;
	}
	*ret_n = n;
	return 0;
}

/* sigaltstack of the thread ctx->inj stops: sp, flags, size. */
static int dump_altstack(struct cd_dump_ctx *ctx, uint64_t ss[3], cd_err *err)
{
	int r = cd_call_ok(ctx->inj, "sigaltstack", SYS_sigaltstack, 0, ctx->scratch, 0, 0, 0, 0,
	                   NULL, err);

	if (r >= 0)
		r = cd_inject_read_mem(ctx->inj, ctx->scratch, ss, STACK_T_SIZE, err);
	return r;
}

static int got_altstack(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	struct cd_thread *th = arg;
	uint64_t ss[3];

	(void)arg2, (void)ret, (void)err;
	memcpy(ss, out, STACK_T_SIZE);
	th->ss_sp = ss[0];
	th->ss_flags = (int)ss[1] & ~SS_ONSTACK;
	th->ss_size = ss[2];
	return 0;
}

/* A thread's mask, alternate stack (queued in its batch) and private
 * queue; handlers and the shared queue are the task's. */
static int signals_dump_thread(struct cd_dump_ctx *ctx, const struct cd_task *t,
                               struct cd_thread *th, cd_err *err)
{
	struct cd_batch *b = ctx->batch;
	int r = cd_batch_reserve(b, 1, STACK_T_SIZE, err);

	(void)t;
	if (r < 0)
		return r;
	th->blocked = cd_inject_orig_sigmask(ctx->inj);
	uint64_t ss_at = cd_batch_buf(b, NULL, STACK_T_SIZE);
	cd_batch_add(b, "sigaltstack", SYS_sigaltstack, 0, ss_at, 0, 0, 0, 0, NULL);
	cd_batch_then(b, got_altstack, th, NULL, ss_at, STACK_T_SIZE);
	return peek_pending(th->tid, 0, &th->pending, &th->npending, err);
}

/* A handler read by a batch's rt_sigaction (arg2: the signal). */
static int got_action(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	struct cd_task *t = arg;
	int sig = (int)(intptr_t)arg2;

	if (ret < 0)
		return cd_err_sys(err, (int)-ret, "pid %d: signal %d: rt_sigaction", t->pid, sig);
	memcpy(&t->act[sig - 1], out, KSIGACTION_SIZE);
	return 0;
}

/* The handlers, read in batches: one injected call each was 62 round
 * trips per task. */
static int dump_actions(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	struct cd_batch b;
	int r = 0;

	cd_batch_init(&b, ctx->inj, ctx->batch_code, ctx->scratch);
	for (int sig = 1; sig <= CD_NSIG && r >= 0; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP ||
		    (r = cd_batch_reserve(&b, 1, KSIGACTION_SIZE, err)) < 0)
			continue;
		uint64_t at = cd_batch_buf(&b, NULL, KSIGACTION_SIZE);
		cd_batch_add(&b, NULL, SYS_rt_sigaction, (uint64_t)sig, 0, at, 8, 0, 0, NULL);
		cd_batch_then(&b, got_action, t, (const void *)(intptr_t)sig, at, KSIGACTION_SIZE);
	}
	return r < 0 ? r : cd_call_batch(&b, err);
}

static int signals_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	uint64_t ss[3];
	int r;

	t->blocked = cd_inject_orig_sigmask(ctx->inj);
	if ((r = dump_actions(ctx, t, err)) < 0)
		return r;
	if ((r = dump_altstack(ctx, ss, err)) < 0)
		return cd_err_wrap(err, "pid %d", t->pid);
	t->ss_sp = ss[0];
	t->ss_flags = (int)ss[1] & ~SS_ONSTACK;
	t->ss_size = ss[2];
	if ((r = peek_pending(t->pid, 0, &t->pending, &t->npending, err)) < 0)
		return r;
	return peek_pending(t->pid, PTRACE_PEEKSIGINFO_SHARED, &t->pending_shared,
	                    &t->npending_shared, err);
}

/* Queued again by the thread they were for (tid; shared: the task's
 * queue): rt_tgsigqueueinfo lets a thread queue a tkill-style siginfo only
 * to itself. */
static int requeue(struct cd_restore_ctx *ctx, const struct cd_task *t, pid_t tid,
                   uint8_t (*si)[128], size_t n, bool shared, cd_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int sig;
		memcpy(&sig, si[i], sizeof(sig));
		int r = cd_inject_write_mem(ctx->inj, ctx->data, si[i], 128, err);
		if (r < 0)
			return r;
		if (shared)
			r = cd_call_ok(ctx->inj, "rt_sigqueueinfo", SYS_rt_sigqueueinfo,
			               (uint64_t)t->pid, (uint64_t)sig, ctx->data, 0, 0, 0, NULL,
			               err);
		else
			r = cd_call_ok(ctx->inj, "rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo,
			               (uint64_t)t->pid, (uint64_t)tid, (uint64_t)sig, ctx->data, 0,
			               0, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int restore_altstack(struct cd_restore_ctx *ctx, const uint64_t ss[3], cd_err *err)
{
	int r = cd_inject_write_mem(ctx->inj, ctx->data, ss, STACK_T_SIZE, err);

	if (r >= 0)
		r = cd_call_ok(ctx->inj, "sigaltstack", SYS_sigaltstack, ctx->data, 0, 0, 0, 0, 0,
		               NULL, err);
	return r;
}

/* What a batch's rt_sigaction of a handler returned (arg2: the signal). */
static int set_action(void *arg, const void *arg2, long ret, const void *out, cd_err *err)
{
	(void)arg;
	(void)out;
	if (ret < 0)
		return cd_err_sys(err, (int)-ret, "signal %d: rt_sigaction", (int)(intptr_t)arg2);
	return 0;
}

static int set_action_one(struct cd_restore_ctx *ctx, const struct cd_task *t, int sig, cd_err *err)
{
	int r = cd_inject_write_mem(ctx->inj, ctx->data, &t->act[sig - 1], KSIGACTION_SIZE, err);

	if (r >= 0)
		r = cd_call_ok(ctx->inj, "rt_sigaction", SYS_rt_sigaction, (uint64_t)sig, ctx->data,
		               0, 8, 0, 0, NULL, err);
	return r < 0 ? cd_err_wrap(err, "signal %d", sig) : 0;
}

/* The handlers, set in batches. SIGTRAP's goes last and alone: the batch
 * runner ends on a trap, which the kernel would turn back to the default
 * action were SIGTRAP ignored by then (cd_inject_batch_ok). */
static int restore_actions(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	struct cd_batch b;
	int r = 0;

	cd_batch_init(&b, ctx->inj, ctx->batch_code, ctx->data);
	for (int sig = 1; sig <= CD_NSIG && r >= 0; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || sig == SIGTRAP ||
		    (r = cd_batch_reserve(&b, 1, KSIGACTION_SIZE, err)) < 0)
			continue;
		uint64_t at = cd_batch_buf(&b, &t->act[sig - 1], KSIGACTION_SIZE);
		cd_batch_add(&b, NULL, SYS_rt_sigaction, (uint64_t)sig, at, 0, 8, 0, 0, NULL);
		cd_batch_then(&b, set_action, NULL, (const void *)(intptr_t)sig, 0, 0);
	}
	if (r < 0 || (r = cd_call_batch(&b, err)) < 0)
		return r;
	return set_action_one(ctx, t, SIGTRAP, err);
}

static int signals_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	uint64_t ss[3] = {t->ss_sp, (uint64_t)(uint32_t)t->ss_flags, t->ss_size};
	int r;

	if ((r = restore_actions(ctx, t, err)) < 0)
		return r;
	if ((r = restore_altstack(ctx, ss, err)) < 0)
		return r;
	if ((r = requeue(ctx, t, t->pid, t->pending, t->npending, false, err)) < 0)
		return r;
	return requeue(ctx, t, t->pid, t->pending_shared, t->npending_shared, true, err);
}

/* The alternate stack and the pending signals, queued again, in the
 * thread's batch (each siginfo takes 128 bytes of its buffer). */
static int signals_restore_thread(struct cd_restore_ctx *ctx, const struct cd_task *t,
                                  const struct cd_thread *th, cd_err *err)
{
	const uint64_t ss[3] = {th->ss_sp, (uint64_t)(uint32_t)th->ss_flags, th->ss_size};
	struct cd_batch *b = ctx->batch;
	int r = cd_batch_reserve(b, 1, STACK_T_SIZE, err);

	if (r < 0)
		return r;
	cd_batch_add(b, "sigaltstack", SYS_sigaltstack, cd_batch_buf(b, ss, STACK_T_SIZE), 0, 0, 0,
	             0, 0, NULL);
	for (size_t i = 0; i < th->npending; i++) {
		int sig;
		memcpy(&sig, th->pending[i], sizeof(sig));
		/* a SIGTRAP pending while the runner runs would meet its trap:
		 * queued by a batch of its own, run as a single call (SIGTRAP
		 * blocked), after which the thread's batches run one by one */
		bool alone = sig == SIGTRAP;
		if ((alone && (r = cd_call_batch(b, err)) < 0) ||
		    (r = cd_batch_reserve(b, 1, 128, err)) < 0)
			return r;
		cd_batch_add(b, "rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo, (uint64_t)t->pid,
		             (uint64_t)th->tid, (uint64_t)sig, cd_batch_buf(b, th->pending[i], 128),
		             0, 0, NULL);
		if (alone && (r = cd_call_batch(b, err)) < 0)
			return r;
	}
	return 0;
}

const struct cd_module cd_mod_signals = {.name = "signals",
                                         .dump = signals_dump,
                                         .restore = signals_restore,
                                         .dump_thread = signals_dump_thread,
                                         .restore_thread = signals_restore_thread};

/* ---- interval timers ---- */

static int timers_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	for (int which = 0; which < 3; which++) {
		int r = cd_call_ok(ctx->inj, "getitimer", SYS_getitimer, (uint64_t)which,
		                   ctx->scratch, 0, 0, 0, 0, NULL, err);
		if (r >= 0)
			r = cd_inject_read_mem(ctx->inj, ctx->scratch, t->itimer[which],
			                       sizeof(t->itimer[which]), err);
		if (r < 0)
			return cd_err_wrap(err, "pid %d", t->pid);
	}
	return 0;
}

static int timers_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	for (int which = 0; which < 3; which++) {
		int64_t v[4];
		memcpy(v, t->itimer[which], sizeof(v));
		if (!v[0] && !v[1] && !v[2] && !v[3])
			continue;
		/* A periodic timer that just fired reads as disarmed until its
		 * signal (still pending, restored above) is taken: arm it for one
		 * interval, as the kernel would on taking the signal. */
		if (!v[2] && !v[3]) {
			v[2] = v[0];
			v[3] = v[1];
		}
		int r = cd_inject_write_mem(ctx->inj, ctx->data, v, sizeof(v), err);
		if (r >= 0)
			r = cd_call_ok(ctx->inj, "setitimer", SYS_setitimer, (uint64_t)which,
			               ctx->data, 0, 0, 0, 0, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

const struct cd_module cd_mod_timers = {
    .name = "timers", .dump = timers_dump, .restore = timers_restore};
