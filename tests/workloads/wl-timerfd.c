/* wl-timerfd: four timerfds before READY:
 *   rel    CLOCK_MONOTONIC, relative, 1 hour, no interval
 *   abs    CLOCK_REALTIME, TFD_TIMER_ABSTIME, deadline now + 2 hours, interval 10 s
 *   tick   CLOCK_BOOTTIME, every 20 ms, TFD_NONBLOCK
 *   fired  CLOCK_MONOTONIC, 1 ms, no interval: expired once and not read (ticks 1)
 * After the trigger: each one's fdinfo clockid and settime flags are as before; rel has between
 * 50 and 60 minutes left; abs is due at the same deadline (within 30 s) with its interval;
 * tick keeps expiring (a blocking wait on it ends); fired reads the expirations it had. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/timerfd.h>

#include "wl.h"

#define NS 1000000000LL

static int64_t ts_ns(struct timespec t)
{
	return t.tv_sec * NS + t.tv_nsec;
}

static int make(int clock, int flags, int sflags, int64_t value_ns, int64_t interval_ns)
{
	struct itimerspec its = {
	    .it_value = {.tv_sec = value_ns / NS, .tv_nsec = value_ns % NS},
	    .it_interval = {.tv_sec = interval_ns / NS, .tv_nsec = interval_ns % NS}};
	int fd = timerfd_create(clock, flags);

	if (fd < 0 || timerfd_settime(fd, sflags, &its, NULL) < 0)
		wl_fail("timerfd clock %d: %s", clock, strerror(errno));
	return fd;
}

/* The fdinfo lines that must come back the same: clockid and settime flags. */
static void fdinfo_ids(int fd, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (!(f = fopen(path, "r")))
		wl_fail("open %s: %s", path, strerror(errno));
	buf[0] = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "clockid:", 8) || !strncmp(line, "settime flags:", 14))
			strncat(buf, line, len - strlen(buf) - 1);
	fclose(f);
}

static struct itimerspec get(int fd)
{
	struct itimerspec its;

	if (timerfd_gettime(fd, &its) < 0)
		wl_fail("timerfd_gettime: %s", strerror(errno));
	return its;
}

int main(void)
{
	struct timespec now;
	int fds[4];
	char before[4][256], after[256];
	int64_t deadline;
	uint64_t ticks;

	wl_init("wl-timerfd");
	clock_gettime(CLOCK_REALTIME, &now);
	deadline = ts_ns(now) + 7200 * NS;
	fds[0] = make(CLOCK_MONOTONIC, 0, 0, 3600 * NS, 0);
	fds[1] = make(CLOCK_REALTIME, TFD_CLOEXEC, TFD_TIMER_ABSTIME, deadline, 10 * NS);
	fds[2] = make(CLOCK_BOOTTIME, TFD_NONBLOCK, 0, 20000000, 20000000);
	fds[3] = make(CLOCK_MONOTONIC, 0, 0, 1000000, 0);
	wl_nap_ms(20);
	for (int i = 0; i < 4; i++)
		fdinfo_ids(fds[i], before[i], sizeof(before[i]));
	wl_ready();
	wl_await_trigger();

	for (int i = 0; i < 4; i++) {
		fdinfo_ids(fds[i], after, sizeof(after));
		if (strcmp(before[i], after))
			wl_fail("timer %d: fdinfo was\n%snow\n%s", i, before[i], after);
	}
	int64_t left = ts_ns(get(fds[0]).it_value);
	if (left < 3000 * NS || left > 3600 * NS)
		wl_fail("rel: %" PRId64 " ns left, want 50-60 minutes", left);
	struct itimerspec abs = get(fds[1]);
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t due = ts_ns(now) + ts_ns(abs.it_value);
	if (due < deadline - 30 * NS || due > deadline + 30 * NS ||
	    ts_ns(abs.it_interval) != 10 * NS)
		wl_fail("abs: due %" PRId64 " ns from the deadline, interval %" PRId64,
		        due - deadline, ts_ns(abs.it_interval));
	if (fcntl(fds[1], F_GETFD) != FD_CLOEXEC || !(fcntl(fds[2], F_GETFL) & O_NONBLOCK))
		wl_fail("flags not kept");
	fcntl(fds[2], F_SETFL, 0);
	if (read(fds[2], &ticks, sizeof(ticks)) != sizeof(ticks) || ticks < 1)
		wl_fail("tick: read: %s", strerror(errno));
	if (read(fds[2], &ticks, sizeof(ticks)) != sizeof(ticks) || ticks < 1)
		wl_fail("tick: a second read: %s", strerror(errno));
	fcntl(fds[3], F_SETFL, O_NONBLOCK);
	if (read(fds[3], &ticks, sizeof(ticks)) != sizeof(ticks) || ticks != 1)
		wl_fail("fired: read %" PRIu64 " expirations (%s), want 1", ticks, strerror(errno));
	wl_pass();
}
