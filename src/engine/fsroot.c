/* The root directory (chroot) of a restored task. Every path of the image
 * (mapped files, the executable, fds, the cwd) was read by the dumper, so
 * it is named from the dumper's root, not the task's: the new task sets its
 * cwd and installs its fds itself, before it is seized (restore.c), and
 * the memory and mm modules open its files by injected calls, all from
 * the controller's root. Only then does the task enter its own root: by an
 * injected chroot after mm, before the credentials, which may take away
 * CAP_SYS_CHROOT. A cwd outside the new root stays where it is, as it was.
 * What the task opens after this by path (/proc files, files_restore) would
 * be looked up in its root: the dump refuses those (dumpcheck.c). */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>

#include "engine/internal.h"

static int root_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	size_t len;
	int r;

	if (!t->root || !strcmp(t->root, "/"))
		return 0;
	len = strlen(t->root) + 1;
	if (len > ctx->data_len)
		return cd_err_set(err, ENAMETOOLONG, "root %s", t->root);
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, t->root, len, err)) < 0)
		return r;
	return cd_call_ok(ctx->inj, t->root, SYS_chroot, ctx->data, 0, 0, 0, 0, 0, NULL, err);
}

const struct cd_module cd_mod_root = {.name = "root", .restore = root_restore};
