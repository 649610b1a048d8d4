/* eventfds (CD_FD_EVENTFD): the counter and EFD_SEMAPHORE, from fdinfo
 * ("eventfd-count", "eventfd-semaphore"); the controller makes the eventfd
 * again with eventfd(count, flags), once per open file, and the tasks
 * inherit it. EFD_NONBLOCK and EFD_CLOEXEC are the fd's status and fd
 * flags, restored as every fd's. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <inttypes.h>
#include <unistd.h>

#include "engine/internal.h"

static bool eventfd_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return !strcmp(x->link, "anon_inode:[eventfd]");
}

/* The semaphore flag is shown since Linux 6.4: without it, an eventfd's
 * mode is unknown, and refused. */
static int eventfd_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	pid_t pid = x->t->pid;
	uint64_t sem = 0;
	int r;

	if ((r = cd_proc_fdinfo_u64(pid, d->fd, "eventfd-count", 16, &d->count, err)) < 0)
		return r;
	r = cd_proc_fdinfo_u64(pid, d->fd, "eventfd-semaphore", 10, &sem, err);
	if (r == -ENOENT)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (eventfd): the kernel does not show whether it "
		                  "is a semaphore (fdinfo eventfd-semaphore, Linux 6.4)",
		                  pid, d->fd);
	if (r < 0)
		return r;
	d->semaphore = sem != 0;
	return 0;
}

static int eventfd_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int flags = (d->semaphore ? EFD_SEMAPHORE : 0) | EFD_CLOEXEC;
	int fd, r;

	/* eventfd takes an unsigned int: a larger count is added by a write */
	fd = eventfd(0, flags);
	if (fd < 0)
		return cd_err_sys(err, errno, "eventfd");
	if (d->count && write(fd, &d->count, sizeof(d->count)) != sizeof(d->count)) {
		r = cd_err_sys(err, errno, "eventfd: write the count %" PRIu64, d->count);
		close(fd);
		return r;
	}
	if ((r = cd_fd_set_flags(fd, d, err)) < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* The kernel's counter stops below UINT64_MAX. */
static int eventfd_check(const struct cd_fd_check *c, const struct cd_task *t,
                         const struct cd_fd *d, cd_err *err)
{
	if (d->count == UINT64_MAX)
		return cd_err_set(err, EINVAL, "pid %d: fd %d: field \"count\": out of range",
		                  t->pid, d->fd);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_eventfd = {.kind = CD_FD_EVENTFD,
                                            .name = "eventfd",
                                            .has_owner = true,
                                            .claims = eventfd_claims,
                                            .dump = eventfd_dump,
                                            .open = eventfd_open,
                                            .check = eventfd_check};
