/* epolls (CD_FD_EPOLL): the watches, from fdinfo ("tfd: N events: X
 * data: Y ..."), recorded on the first fd of the epoll's open file in the
 * image. The controller makes the epoll (epoll_create1) once per open
 * file and the tasks inherit it; the task of that first fd adds the
 * watches itself (injected epoll_ctl), once all its fds exist, so each
 * watch is on the same fd number and open file as before (an epoll keys a
 * watch by both), an epoll or any other event object included.
 *
 * Refused at dump, by name: a watch whose fd number is not, in that task,
 * the file the epoll watches (closed while still registered, or
 * registered by another task), found with kcmp(KCMP_EPOLL_TFD); and
 * EPOLLWAKEUP (it needs CAP_BLOCK_SUSPEND, else the kernel drops it); an
 * EPOLLONESHOT watch that has reported and waits to be re-armed. The
 * ready list is not kept: a ready edge-triggered target reports once more
 * after the restore (the kernel checks readiness on EPOLL_CTL_ADD). */
#include <errno.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

static bool epoll_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return !strcmp(x->link, "anon_inode:[eventpoll]");
}

/* Whether the task's fd tfd is the file its epoll efd watches as tfd. */
static int watch_is_fd(pid_t pid, int efd, int tfd, bool *ret, cd_err *err)
{
	struct kcmp_epoll_slot slot = {.efd = (uint32_t)efd, .tfd = (uint32_t)tfd, .toff = 0};
	long r = syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, tfd, &slot);

	if (r < 0 && (errno == EBADF || errno == ENOENT)) {
		*ret = false;
		return 0;
	}
	if (r < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d (epoll): kcmp of its watch of fd %d",
		                  pid, efd, tfd);
	*ret = r == 0;
	return 0;
}

static int add_watch(const struct cd_fd_dump *x, struct cd_fd *d, size_t *cap, int tfd,
                     uint32_t events, uint64_t data, cd_err *err)
{
	pid_t pid = x->t->pid;
	bool same = false;
	int r;

	if (events & EPOLLWAKEUP)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (epoll): the watch of fd %d has EPOLLWAKEUP, "
		                  "which is not supported",
		                  pid, d->fd, tfd);
	/* a oneshot watch that reported keeps only these: EPOLL_CTL_ADD and
	 * MOD always add EPOLLERR | EPOLLHUP, so it cannot be made again */
	if ((events & EPOLLONESHOT) &&
	    !(events & ~(uint32_t)(EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE | EPOLLWAKEUP)))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (epoll): the EPOLLONESHOT watch of fd %d has "
		                  "reported and is not re-armed (EPOLL_CTL_MOD), which is not "
		                  "supported",
		                  pid, d->fd, tfd);
	if ((r = watch_is_fd(pid, d->fd, tfd, &same, err)) < 0)
		return r;
	if (!same)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (epoll): it watches a file as fd %d, which is not "
		                  "that file in this task (closed while still watched, or watched "
		                  "by another task): not supported",
		                  pid, d->fd, tfd);
	if (d->nwatches == *cap) {
		size_t n = *cap ? *cap * 2 : 8;
		struct cd_epoll_watch *w = realloc(d->watches, n * sizeof(*w));
		if (!w)
			return cd_err_set(err, ENOMEM, "out of memory");
		d->watches = w;
		*cap = n;
	}
	d->watches[d->nwatches++] = (struct cd_epoll_watch){tfd, events, data};
	return 0;
}

static int epoll_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	char name[64];
	_cleanup_free_ char *buf = NULL;
	size_t cap = 0;
	int r;

	/* the first fd of the open file holds the watches */
	if (!x->new_obj)
		return 0;
	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	if ((r = cd_proc_read_file(x->t->pid, name, &buf, NULL, err)) < 0)
		return r;
	for (char *p = strstr(buf, "tfd:"); p; p = strstr(p + 1, "\ntfd:")) {
		int tfd;
		unsigned events;
		unsigned long long data;
		if (*p == '\n')
			p++;
		if (sscanf(p, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3)
			return cd_err_set(err, EINVAL,
			                  "pid %d: fd %d (epoll): cannot parse its fdinfo",
			                  x->t->pid, d->fd);
		if ((r = add_watch(x, d, &cap, tfd, events, data, err)) < 0)
			return r;
	}
	return 0;
}

static int epoll_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int fd = epoll_create1(EPOLL_CLOEXEC), r;

	if (fd < 0)
		return cd_err_sys(err, errno, "epoll_create1");
	if ((r = cd_fd_set_flags(fd, d, err)) < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* As the task: epoll_ctl(EPOLL_CTL_ADD) for each watch, at its fd. */
static int epoll_restore_late(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	for (size_t i = 0; i < d->nwatches; i++) {
		const struct cd_epoll_watch *w = &d->watches[i];
		struct epoll_event ev = {.events = w->events, .data.u64 = w->data};
		int r;
		if ((r = cd_inject_write_mem(ctx->inj, ctx->data, &ev, sizeof(ev), err)) < 0 ||
		    (r = cd_call_ok(ctx->inj, "epoll_ctl", SYS_epoll_ctl, (uint64_t)d->fd,
		                    EPOLL_CTL_ADD, (uint64_t)w->tfd, ctx->data, 0, 0, NULL, err)) <
		        0)
			return cd_err_wrap(err, "watch of fd %d", w->tfd);
	}
	return 0;
}

/* Each watch is on another fd of the task, without EPOLLWAKEUP. */
static int epoll_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                       cd_err *err)
{
	for (size_t i = 0; i < d->nwatches; i++) {
		const struct cd_epoll_watch *w = &d->watches[i];
		bool found = false;
		for (size_t j = 0; !found && j < t->nfds; j++)
			found = t->fds[j].fd == w->tfd;
		if (!found || w->tfd == d->fd || (w->events & EPOLLWAKEUP))
			return cd_err_set(
			    err, EINVAL,
			    "pid %d: fd %d: field \"watches\": %zu: fd %d is not another "
			    "fd of the task, or EPOLLWAKEUP",
			    t->pid, d->fd, i, w->tfd);
	}
	return 0;
}

const struct cd_fd_ops cd_fd_ops_epoll = {.kind = CD_FD_EPOLL,
                                          .name = "epoll",
                                          .has_owner = true,
                                          .claims = epoll_claims,
                                          .dump = epoll_dump,
                                          .open = epoll_open,
                                          .restore_late = epoll_restore_late,
                                          .check = epoll_check};
