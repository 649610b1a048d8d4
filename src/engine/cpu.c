/* CPU state: general registers (fs/gs base included) and the XSAVE area. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#define XSTATE_MAX (64 * 1024)

/* The registers the thread had when seized and its XSAVE area. */
static int read_cpu(cd_inject *inj, struct user_regs_struct *regs, uint8_t **xstate, size_t *len,
                    cd_err *err)
{
	_cleanup_free_ uint8_t *buf = malloc(XSTATE_MAX);

	*len = XSTATE_MAX;
	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	*regs = *cd_inject_orig_regs(inj);
	int r = cd_inject_get_xstate(inj, buf, len, err);
	if (r < 0)
		return r;
	*xstate = realloc(TAKE_PTR(buf), *len);
	return *xstate ? 0 : cd_err_set(err, ENOMEM, "out of memory");
}

static int cpu_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	return read_cpu(ctx->inj, &t->regs, &t->xstate, &t->xstate_len, err);
}

static int cpu_dump_thread(struct cd_dump_ctx *ctx, const struct cd_task *t, struct cd_thread *th,
                           cd_err *err)
{
	(void)t;
	return read_cpu(ctx->inj, &th->regs, &th->xstate, &th->xstate_len, err);
}

const struct cd_module cd_mod_cpu = {
    .name = "cpu", .dump = cpu_dump, .dump_thread = cpu_dump_thread};

/* A new thread has no kernel restart block: a call stopped with
 * -ERESTART_RESTARTBLOCK (a relative sleep, a futex wait with a timeout)
 * is restarted for the time left where the kernel wrote it back, and
 * returns EINTR otherwise; the -ERESTARTSYS family restarts as is. The
 * same for every thread (cd_inject_fix_restart). */
static int set_final(cd_inject *inj, const struct user_regs_struct *saved, const uint8_t *xstate,
                     size_t xstate_len, uint64_t blocked, cd_err *err)
{
	struct user_regs_struct regs = *saved;
	int r;

	cd_inject_fix_restart(&regs, false);
	r = cd_inject_set_xstate(inj, xstate, xstate_len, err);
	if (r < 0)
		return r;
	r = cd_inject_set_regs(inj, &regs, err);
	if (r < 0)
		return r;
	return cd_inject_set_sigmask(inj, blocked, err);
}

int cd_cpu_restore_final(cd_inject *inj, const struct cd_task *t, cd_err *err)
{
	return set_final(inj, &t->regs, t->xstate, t->xstate_len, t->blocked, err);
}

int cd_cpu_restore_thread_final(cd_inject *inj, const struct cd_thread *th, cd_err *err)
{
	return set_final(inj, &th->regs, th->xstate, th->xstate_len, th->blocked, err);
}
