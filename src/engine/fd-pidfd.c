/* pidfds (CD_FD_PIDFD): the pid fdinfo shows ("Pid:") and, with O_EXCL in
 * the flags, PIDFD_THREAD (a thread's pidfd). Pids are kept, so the task
 * opens a pidfd of the same pid again with pidfd_open, once the tree
 * exists (every process of the tree is created before any task's files,
 * and a task's own threads before its files), at its number;
 * O_NONBLOCK (PIDFD_NONBLOCK) is the fd's status flag, restored as every
 * fd's. A zombie of the tree is restored as a zombie, which pidfd_open
 * takes. Refused at dump: a process outside the tree, one that has been
 * reaped (Pid: -1) or is in another pid namespace (Pid: 0), and a thread
 * of another task (made after this task's files). A dup in the task is
 * dup'd again from the first fd of its open file; a pidfd shared with
 * other processes (inherited across fork) is one open file: the first task
 * of the image that holds it opens it, the controller keeps a copy in the
 * open file's slot (a placeholder until then), and each later task that
 * holds it receives that copy (fd-pass.c), so the tasks share its status
 * flags as before. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#define PIDFD_OPEN_FLAGS (O_NONBLOCK | O_EXCL) /* PIDFD_NONBLOCK, PIDFD_THREAD */

static bool pidfd_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	(void)d;
	/* before Linux 6.9 an anonymous inode, then pidfs */
	return !strcmp(x->link, "anon_inode:[pidfd]") || !strncmp(x->link, "pidfd:", 6);
}

/* Whether the restore can open a pidfd of pid in task t: a process of
 * the image, or with PIDFD_THREAD also one of t's own threads. */
static bool pidfd_target_ok(struct cd_image *img, const struct cd_task *t, pid_t pid, bool thread)
{
	return cd_image_task(img, pid) || (thread && cd_task_has_thread(t, pid));
}

/* The first of t's first n fds that is open file obj, NULL when none. */
static const struct cd_fd *first_of_obj(const struct cd_task *t, int obj, size_t n)
{
	for (size_t j = 0; j < n; j++)
		if (t->fds[j].obj == obj)
			return &t->fds[j];
	return NULL;
}

static int pidfd_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	pid_t pid = x->t->pid;
	bool thread = d->flags & O_EXCL;
	uint64_t v;
	int r;

	if ((r = cd_proc_fdinfo_u64(pid, d->fd, "Pid", 10, &v, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (pidfd)", pid, d->fd);
	int64_t of = (int64_t)v; /* -1 parses as its two's complement */
	if (of < 0)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (pidfd): its process has exited and been reaped "
		                  "(Pid: -1): a restore could not open a pidfd of it again",
		                  pid, d->fd);
	if (of == 0 || of > CD_PID_MAX)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (pidfd): its process is in another pid namespace",
		                  pid, d->fd);
	d->pidfd_pid = (pid_t)of;
	if (!pidfd_target_ok(x->ctx->img, x->t, d->pidfd_pid, thread)) {
		bool other = thread && !cd_image_task(x->ctx->img, d->pidfd_pid);
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (pidfd): a pidfd of %s %d, %s",
		                  pid, d->fd, thread ? "thread" : "pid", d->pidfd_pid,
		                  other ? "which is not in the checkpoint or is a thread of "
		                          "another process (not supported)"
		                        : "which is not in the checkpoint");
	}
	return 0;
}

/* Whether open file obj has an fd in a task other than t. */
static bool obj_elsewhere(const struct cd_image *img, const struct cd_task *t, int obj)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (&img->tasks[i] != t && first_of_obj(&img->tasks[i], obj, img->tasks[i].nfds))
			return true;
	return false;
}

/* The first task of the image that holds open file obj. */
static const struct cd_task *first_holder(const struct cd_image *img, int obj)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (first_of_obj(&img->tasks[i], obj, img->tasks[i].nfds))
			return &img->tasks[i];
	return NULL;
}

/* The controller's slot of the open file: a placeholder until its first
 * task opened it (the tasks do not inherit it: by_task). */
static int pidfd_open_slot(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)o;
	(void)d;
	return fd < 0 ? cd_err_sys(err, errno, "open /dev/null") : fd;
}

/* d's new pidfd at fd, of the task: a copy in the controller's slot, for
 * the later tasks that hold it. */
static int export_pidfd(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	int slot = cd_files_obj_fd(ctx->objs, d->obj);
	_cleanup_close_ int copy = cd_fd_copy_from(cd_inject_pid(ctx->inj), d->fd);

	if (slot < 0)
		return cd_err_set(err, EINVAL, "fd %d: pidfd of %d: no slot", d->fd, d->pidfd_pid);
	if (copy < 0)
		return cd_err_sys(err, -copy, "fd %d: pidfd of %d: pidfd_getfd", d->fd,
		                  d->pidfd_pid);
	if (dup3(copy, slot, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "fd %d: pidfd of %d: dup3", d->fd, d->pidfd_pid);
	return 0;
}

/* A pidfd an earlier task opened: received from the controller's slot. */
static int receive_pidfd(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	int slot = cd_files_obj_fd(ctx->objs, d->obj), fd = -1, r;
	long ignored;

	if (slot < 0)
		return cd_err_set(err, EINVAL, "fd %d: pidfd of %d: no slot", d->fd, d->pidfd_pid);
	if ((r = cd_fd_send_to_task(ctx, slot, &fd, err)) < 0)
		return cd_err_wrap(err, "fd %d: pidfd of %d", d->fd, d->pidfd_pid);
	r = cd_call_ok(ctx->inj, "dup3", SYS_dup3, (uint64_t)fd, (uint64_t)d->fd,
	               (uint64_t)(d->flags & O_CLOEXEC), 0, 0, 0, &ignored, err);
	cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
	return r;
}

/* Opened by the task at its number, after the credentials. */
static int pidfd_restore(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	const struct cd_task *t =
	    cd_image_task((struct cd_image *)ctx->img, cd_inject_pid(ctx->inj));
	const struct cd_fd *first = t ? first_of_obj(t, d->obj, t->nfds) : NULL;
	long fd, ignored;
	int r;

	/* a dup of an earlier fd of the task: the same open file again */
	if (first && first->fd != d->fd)
		return cd_call_ok(ctx->inj, "dup3", SYS_dup3, (uint64_t)first->fd, (uint64_t)d->fd,
		                  (uint64_t)(d->flags & O_CLOEXEC), 0, 0, 0, &ignored, err);
	/* another task's open file, inherited across fork */
	if (t && first_holder(ctx->img, d->obj) != t)
		return receive_pidfd(ctx, d, err);
	if ((r = cd_call_ok(ctx->inj, "pidfd_open", SYS_pidfd_open, (uint64_t)d->pidfd_pid,
	                    (uint64_t)(d->flags & PIDFD_OPEN_FLAGS), 0, 0, 0, 0, &fd, err)) < 0)
		return cd_err_wrap(err, "pidfd of %d", d->pidfd_pid);
	if (fd != d->fd) {
		r = cd_call_ok(ctx->inj, "dup3", SYS_dup3, (uint64_t)fd, (uint64_t)d->fd,
		               (uint64_t)(d->flags & O_CLOEXEC), 0, 0, 0, &ignored, err);
		cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
		if (r < 0)
			return r;
	}
	if ((r = cd_fd_set_flags_in(ctx, d, err)) < 0)
		return r;
	return t && obj_elsewhere(ctx->img, t, d->obj) ? export_pidfd(ctx, d, err) : 0;
}

static int pidfd_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                       cd_err *err)
{
	if (!pidfd_target_ok((struct cd_image *)c->img, t, d->pidfd_pid, d->flags & O_EXCL))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"pidfd_pid\": %d is not a task of the "
		                  "image (nor, for a thread's pidfd, a thread of its own)",
		                  t->pid, d->fd, d->pidfd_pid);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_pidfd = {.kind = CD_FD_PIDFD,
                                          .name = "pidfd",
                                          .has_owner = true,
                                          .by_task = true,
                                          .claims = pidfd_claims,
                                          .dump = pidfd_dump,
                                          .open = pidfd_open_slot,
                                          .restore = pidfd_restore,
                                          .check = pidfd_check};
