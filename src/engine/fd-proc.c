/* A file under /proc/PID of a task of the image (kind CD_FD_PROC): pids
 * come back as they were, so the task reopens it by its path once the tree
 * exists, at its number, with its flags and position. Another pid would be
 * another process after a restore, or none: refused at dump. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "engine/internal.h"

static bool proc_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return cd_fd_proc_pid(x->link) != 0;
}

static int proc_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	pid_t pid = x->t->pid, of = cd_fd_proc_pid(x->link);

	if (!cd_image_task(x->ctx->img, of))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): a file of pid %d, which is not in the "
		                  "checkpoint",
		                  pid, d->fd, x->link, of);
	if (d->flags & O_PATH)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): O_PATH fds of /proc files are not supported",
		                  pid, d->fd, x->link);
	/* each fd reopens its own: one open file shared by two fds cannot be */
	if (!x->new_obj)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): a /proc file shared with another fd is not "
		                  "supported",
		                  pid, d->fd, x->link);
	if (!S_ISREG(x->st->st_mode) && !S_ISDIR(x->st->st_mode))
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): unsupported /proc file",
		                  pid, d->fd, x->link);
	return 0;
}

/* Opened by the task at its number, after the credentials. */
static int proc_restore(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	size_t len = strlen(d->path) + 1;
	int flags = d->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_ASYNC);
	long fd, ignored;
	int r;

	if (len > ctx->data_len)
		return cd_err_set(err, ENAMETOOLONG, "path %s", d->path);
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, d->path, len, err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, d->path, SYS_openat, (uint64_t)AT_FDCWD, ctx->data,
	                    (uint64_t)flags, 0, 0, 0, &fd, err)) < 0)
		return r;
	if (fd != d->fd) {
		r = cd_call_ok(ctx->inj, "dup3", SYS_dup3, (uint64_t)fd, (uint64_t)d->fd,
		               (uint64_t)(d->flags & O_CLOEXEC), 0, 0, 0, &ignored, err);
		cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
		if (r < 0)
			return r;
	}
	if (d->pos && (r = cd_call_ok(ctx->inj, "lseek", SYS_lseek, (uint64_t)d->fd, d->pos,
	                              SEEK_SET, 0, 0, 0, &ignored, err)) < 0)
		return r;
	return cd_fd_set_flags_in(ctx, d, err);
}

/* The restore reopens a /proc file of a task of the image only. */
static int proc_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                      cd_err *err)
{
	if (!cd_image_task((struct cd_image *)c->img, cd_fd_proc_pid(d->path)))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"path\": %s is not a file of a task of "
		                  "the image",
		                  t->pid, d->fd, d->path);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_proc = {.kind = CD_FD_PROC,
                                         .name = "/proc file",
                                         .has_path = true,
                                         .has_owner = true,
                                         .by_task = true,
                                         .claims = proc_claims,
                                         .dump = proc_dump,
                                         .restore = proc_restore,
                                         .check = proc_check};
