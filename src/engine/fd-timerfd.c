/* timerfds (CD_FD_TIMERFD): clock, timerfd_settime flags, expirations not
 * yet read and the value, from fdinfo ("clockid", "ticks", "settime
 * flags", "it_value", "it_interval"). The controller makes it again once
 * per open file with timerfd_create and timerfd_settime, and puts the
 * unread expirations back with TFD_IOC_SET_TICKS; the tasks inherit it.
 *
 * fdinfo shows the time left. A relative timer gets that time left again
 * from the restore (the time the tree was stopped does not count, as for
 * POSIX timers); a TFD_TIMER_ABSTIME one the deadline on its clock, now
 * plus the time left when the dump read it, so it fires when it would
 * have. A periodic timer that expired and whose expirations are unread
 * shows no time left (the kernel moves it on at the next read): it comes
 * back due one interval later. Alarm clocks (CLOCK_*_ALARM, which need
 * CAP_WAKE_ALARM) are refused at dump. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

#define NSEC 1000000000LL

static bool timerfd_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return !strcmp(x->link, "anon_inode:[timerfd]");
}

/* The fdinfo lines after the common ones, all of them required. */
static int parse_fdinfo(const char *buf, struct cd_fd *d, int64_t v[4])
{
	const char *p;
	unsigned long long ticks;
	int clock;
	unsigned flags;

	if (!(p = strstr(buf, "clockid:")) || sscanf(p, "clockid: %d", &clock) != 1 ||
	    !(p = strstr(buf, "ticks:")) || sscanf(p, "ticks: %llu", &ticks) != 1 ||
	    !(p = strstr(buf, "settime flags:")) || sscanf(p, "settime flags: %o", &flags) != 1 ||
	    !(p = strstr(buf, "it_value:")) ||
	    sscanf(p, "it_value: (%" SCNd64 ", %" SCNd64 ")", &v[0], &v[1]) != 2 ||
	    !(p = strstr(buf, "it_interval:")) ||
	    sscanf(p, "it_interval: (%" SCNd64 ", %" SCNd64 ")", &v[2], &v[3]) != 2)
		return -EINVAL;
	d->tclock = clock;
	d->tflags = (int)flags;
	d->ticks = ticks;
	return 0;
}

/* Whether this kernel takes TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE):
 * it refuses 0 with EINVAL, or the ioctl with ENOTTY. */
static bool can_set_ticks(void)
{
	uint64_t zero = 0;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = ioctl(fd, TFD_IOC_SET_TICKS, &zero) < 0 && errno == EINVAL;
	close(fd);
	return ok;
}

/* The value the restore sets: the deadline for an absolute timer, the
 * time left for a relative one; an expired periodic timer with unread
 * expirations is due one interval on. */
static int dump_value(struct cd_fd *d, const int64_t v[4], cd_err *err)
{
	int64_t left = v[0] * NSEC + v[1], interval = v[2] * NSEC + v[3];
	struct timespec now;

	d->isec = v[2];
	d->insec = v[3];
	if (left == 0 && interval && d->ticks)
		left = interval;
	if (left && (d->tflags & TFD_TIMER_ABSTIME)) {
		if (clock_gettime(d->tclock, &now) < 0)
			return cd_err_sys(err, errno, "clock_gettime(%d)", d->tclock);
		left += now.tv_sec * NSEC + now.tv_nsec;
	}
	d->vsec = left / NSEC;
	d->vnsec = left % NSEC;
	return 0;
}

static int timerfd_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	char name[64];
	_cleanup_free_ char *buf = NULL;
	pid_t pid = x->t->pid;
	int64_t v[4];
	int r;

	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	if ((r = cd_proc_read_file(pid, name, &buf, NULL, err)) < 0)
		return r;
	if (parse_fdinfo(buf, d, v) < 0 || v[0] < 0 || v[1] < 0 || v[1] >= NSEC || v[2] < 0 ||
	    v[3] < 0 || v[3] >= NSEC)
		return cd_err_set(err, EINVAL, "pid %d: fd %d (timerfd): cannot parse its fdinfo",
		                  pid, d->fd);
	if (d->tclock != CLOCK_REALTIME && d->tclock != CLOCK_MONOTONIC &&
	    d->tclock != CLOCK_BOOTTIME)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (timerfd): clock %d is not supported (alarm "
		                  "clocks need CAP_WAKE_ALARM)",
		                  pid, d->fd, d->tclock);
	if (d->ticks && !can_set_ticks())
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (timerfd): %" PRIu64 " expirations not yet read, "
		                  "and this kernel cannot set them again (TFD_IOC_SET_TICKS, "
		                  "CONFIG_CHECKPOINT_RESTORE)",
		                  pid, d->fd, d->ticks);
	return dump_value(d, v, err);
}

static int timerfd_arm(int fd, const struct cd_fd *d, cd_err *err)
{
	struct itimerspec its = {.it_value = {.tv_sec = d->vsec, .tv_nsec = d->vnsec},
	                         .it_interval = {.tv_sec = d->isec, .tv_nsec = d->insec}};

	if (timerfd_settime(fd, d->tflags, &its, NULL) < 0)
		return cd_err_sys(err, errno, "timerfd_settime");
	if (d->ticks && ioctl(fd, TFD_IOC_SET_TICKS, &d->ticks) < 0)
		return cd_err_sys(err, errno, "timerfd: set %" PRIu64 " expirations", d->ticks);
	return cd_fd_set_flags(fd, d, err);
}

static int timerfd_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int fd = timerfd_create(d->tclock, TFD_CLOEXEC), r;

	if (fd < 0)
		return cd_err_sys(err, errno, "timerfd_create(%d)", d->tclock);
	if ((r = timerfd_arm(fd, d, err)) < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* The clocks the dump takes; TFD_TIMER_CANCEL_ON_SET only with an
 * absolute CLOCK_REALTIME timer, as timerfd_settime wants it. */
static int timerfd_check(const struct cd_fd_check *c, const struct cd_task *t,
                         const struct cd_fd *d, cd_err *err)
{
	if (d->tclock != CLOCK_REALTIME && d->tclock != CLOCK_MONOTONIC &&
	    d->tclock != CLOCK_BOOTTIME)
		return cd_err_set(err, EINVAL, "pid %d: fd %d: field \"tclock\": %d is not a clock",
		                  t->pid, d->fd, d->tclock);
	if ((d->tflags & TFD_TIMER_CANCEL_ON_SET) &&
	    (d->tclock != CLOCK_REALTIME || !(d->tflags & TFD_TIMER_ABSTIME)))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"tflags\": cancel-on-set without an "
		                  "absolute CLOCK_REALTIME timer",
		                  t->pid, d->fd);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_timerfd = {.kind = CD_FD_TIMERFD,
                                            .name = "timerfd",
                                            .has_owner = true,
                                            .claims = timerfd_claims,
                                            .dump = timerfd_dump,
                                            .open = timerfd_open,
                                            .check = timerfd_check};
