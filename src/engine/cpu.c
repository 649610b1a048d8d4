/* CPU state: general registers (fs/gs base included) and the XSAVE area. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#define XSTATE_MAX (64 * 1024)

static int cpu_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	_cleanup_free_ uint8_t *buf = malloc(XSTATE_MAX);
	size_t len = XSTATE_MAX;

	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	t->regs = *cd_inject_orig_regs(ctx->inj);
	int r = cd_inject_get_xstate(ctx->inj, buf, &len, err);
	if (r < 0)
		return r;
	t->xstate = realloc(TAKE_PTR(buf), len);
	t->xstate_len = len;
	return t->xstate ? 0 : cd_err_set(err, ENOMEM, "out of memory");
}

const struct cd_module cd_mod_cpu = {.name = "cpu", .dump = cpu_dump};

int cd_cpu_restore_final(cd_inject *inj, const struct cd_task *t, cd_err *err)
{
	struct user_regs_struct regs = t->regs;
	int r;

	/* A new task has no kernel restart block: restart_syscall-style calls
	 * return EINTR, the others restart. */
	cd_inject_fix_restart(&regs, false);
	r = cd_inject_set_xstate(inj, t->xstate, t->xstate_len, err);
	if (r < 0)
		return r;
	r = cd_inject_set_regs(inj, &regs, err);
	if (r < 0)
		return r;
	return cd_inject_set_sigmask(inj, t->blocked, err);
}
