/* wl-eventfd: three eventfds before READY:
 *   sem   EFD_SEMAPHORE | EFD_NONBLOCK, counter 5
 *   plain EFD_CLOEXEC, counter 3, also at a second fd (dup): one open file
 *   big   counter 2^40 + 7 (above what eventfd()'s initval can hold)
 * After the trigger: the flags are as set; sem gives 1 five times, then EAGAIN; the counter
 * of plain comes back as 3 through its dup after a write of 4 through plain (7); big reads
 * 2^40 + 7 at once. */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/eventfd.h>

#include "wl.h"

#define BIG ((1ULL << 40) + 7)

static void add(int fd, uint64_t v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		wl_fail("eventfd write: %s", strerror(errno));
}

static uint64_t take(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		wl_fail("eventfd read: %s", strerror(errno));
	return v;
}

static void want_flags(int fd, const char *name, int fl, int fdfl)
{
	int got = fcntl(fd, F_GETFL), gotfd = fcntl(fd, F_GETFD);

	if ((got & O_NONBLOCK) != fl || gotfd != fdfl)
		wl_fail("%s: flags %#o fd flags %d, want nonblock %#o fd flags %d", name, got,
		        gotfd, fl, fdfl);
}

int main(void)
{
	int sem, plain, dupfd, big;
	uint64_t v;

	wl_init("wl-eventfd");
	sem = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK);
	plain = eventfd(0, EFD_CLOEXEC);
	big = eventfd(0, 0);
	if (sem < 0 || plain < 0 || big < 0)
		wl_fail("eventfd: %s", strerror(errno));
	dupfd = dup(plain);
	if (dupfd < 0)
		wl_fail("dup: %s", strerror(errno));
	add(plain, 3);
	add(big, BIG);
	wl_ready();
	wl_await_trigger();

	want_flags(sem, "sem", O_NONBLOCK, 0);
	want_flags(plain, "plain", 0, FD_CLOEXEC);
	want_flags(big, "big", 0, 0);
	for (int i = 0; i < 5; i++)
		if ((v = take(sem)) != 1)
			wl_fail("sem: read %d gave %" PRIu64 ", want 1", i, v);
	if (read(sem, &v, sizeof(v)) >= 0 || errno != EAGAIN)
		wl_fail("sem: a sixth read did not fail with EAGAIN");
	add(plain, 4);
	if ((v = take(dupfd)) != 7)
		wl_fail("plain: read %" PRIu64 " through the dup, want 7", v);
	if ((v = take(big)) != BIG)
		wl_fail("big: read %" PRIu64 ", want %llu", v, BIG);
	wl_pass();
}
