/* wl-epoll: an epoll watching, with distinct data each:
 *   0x1111  a pipe's read end (EPOLLIN) with unread data; the pipe is shared with a child
 *   0x2222  an eventfd at 1 (EPOLLIN)
 *   0x3333  a timerfd expiring every 20 ms (EPOLLIN)
 *   0x4444  the pipe's write end (EPOLLOUT | EPOLLET)
 *   0x5555  another epoll (EPOLLIN), itself watching an eventfd at 0 (data 0x7777)
 *   0x6666  an eventfd at 0 with EPOLLONESHOT (armed, not ready)
 * After the trigger: the watches in fdinfo (tfd, events, data) are as before; waits on the
 * epoll report 0x1111, 0x2222 and 0x3333, never 0x5555 nor 0x6666; after a write to the inner
 * epoll's eventfd it reports 0x5555, and the inner one 0x7777; after a write to the oneshot
 * eventfd it reports 0x6666 once, then no more; the child's end of the pipe is still the same
 * pipe (a byte the child writes arrives).
 * The epoll itself is shared with the child (inherited by fork): after the trigger kcmp says the
 * child's fd is the parent's open file, and a watch the parent adds then (an eventfd at 1, data
 * 0x8888, that both hold) is reported by the child's epoll_wait on its fd. The child starts
 * waiting only when the parent tells it to (a byte on a second pipe), after the parent's own
 * checks, so it takes no event the parent looks for.
 * With "fired-oneshot" the oneshot eventfd is at 1 and has reported (a disabled watch, which
 * the dump refuses); with "closed-target" the eventfd 0x2222 is watched through an fd closed
 * since (a dup keeps it open), which the dump refuses. Both PASS at once after the trigger. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>

#include "wl.h"

static void watch(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		wl_fail("epoll_ctl(%d): %s", fd, strerror(errno));
}

/* The watch lines of fdinfo, sorted. */
static void watches(int ep, char *out, size_t len)
{
	wl_fdinfo_lines(ep, "tfd:", " pos:", out, len);
}

/* Waits up to 500 ms in all and returns the set of data seen, as bits 0x1..0x7 of their
 * first hex digit. */
static unsigned seen(int ep)
{
	struct epoll_event ev[16];
	unsigned got = 0;

	for (int round = 0; round < 25; round++) {
		int n = epoll_wait(ep, ev, 16, 0);
		if (n < 0 && errno != EINTR)
			wl_fail("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			got |= 1u << (ev[i].data.u64 >> 12);
		wl_nap_ms(20);
	}
	return got;
}

/* The child's part after the trigger: waits for the parent's go, then for the watch 0x8888 the
 * parent added to the epoll they share. */
static void child_sees_shared_watch(int ep, int go)
{
	struct epoll_event ev[16];
	char c;

	if (read(go, &c, 1) != 1)
		wl_child_fail("read go: %s", strerror(errno));
	for (int round = 0; round < 100; round++) {
		int n = epoll_wait(ep, ev, 16, 20);
		if (n < 0 && errno != EINTR)
			wl_child_fail("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			if (ev[i].data.u64 == 0x8888)
				_exit(0);
	}
	wl_child_fail("the watch the parent added to the shared epoll is not seen here");
}

/* The parent's part: same open file by kcmp, then a watch added here is seen by the child. */
static void check_shared_epoll(int ep, pid_t child, int shared_efd, int go)
{
	long same = syscall(SYS_kcmp, getpid(), child, KCMP_FILE, ep, ep);

	if (same < 0)
		wl_fail("kcmp: %s", strerror(errno));
	if (same != 0)
		wl_fail("the child's epoll fd %d is not the parent's open file", ep);
	watch(ep, shared_efd, EPOLLIN, 0x8888);
	if (write(go, "g", 1) != 1)
		wl_fail("write go: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int ep, inner, p[2], go[2], efd, once, inner_efd, tfd, shared_efd;
	struct itimerspec its = {.it_value = {.tv_nsec = 20000000},
	                         .it_interval = {.tv_nsec = 20000000}};
	struct epoll_event ev;
	char before[2048], after[2048];
	uint64_t one = 1;
	unsigned got;

	wl_init("wl-epoll");
	if (pipe(p) < 0 || pipe(go) < 0)
		wl_fail("pipe: %s", strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	inner = epoll_create1(0);
	efd = eventfd(1, EFD_NONBLOCK);
	once = eventfd(!strcmp(mode, "fired-oneshot"), 0);
	inner_efd = eventfd(0, EFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	shared_efd = eventfd(1, EFD_NONBLOCK);
	if (ep < 0 || inner < 0 || efd < 0 || once < 0 || inner_efd < 0 || tfd < 0 ||
	    shared_efd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
		wl_fail("setup: %s", strerror(errno));
	if (write(p[1], "x", 1) != 1)
		wl_fail("write: %s", strerror(errno));
	watch(ep, p[0], EPOLLIN, 0x1111);
	watch(ep, efd, EPOLLIN, 0x2222);
	watch(ep, tfd, EPOLLIN, 0x3333);
	watch(ep, p[1], EPOLLOUT | EPOLLET, 0x4444);
	watch(inner, inner_efd, EPOLLIN, 0x7777);
	watch(ep, inner, EPOLLIN, 0x5555);
	watch(ep, once, EPOLLIN | EPOLLONESHOT, 0x6666);
	got = seen(ep);
	if ((got & ~(1u << 6)) != (1u << 1 | 1u << 2 | 1u << 3 | 1u << 4))
		wl_fail("before: saw %#x", got);
	if (!strcmp(mode, "closed-target")) {
		int keep = dup(efd);
		if (keep < 0 || close(efd) < 0)
			wl_fail("dup, close: %s", strerror(errno));
	}
	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		wl_child_await_trigger();
		if (write(p[1], "y", 1) != 1)
			wl_child_fail("child write: %s", strerror(errno));
		if (*mode)
			_exit(0);
		child_sees_shared_watch(ep, go[0]);
	}
	wl_children[wl_nr_children++] = child;
	watches(ep, before, sizeof(before));
	wl_ready();
	wl_await_trigger();
	if (*mode)
		wl_pass();

	watches(ep, after, sizeof(after));
	if (strcmp(before, after))
		wl_fail("watches were\n%snow\n%s", before, after);
	got = seen(ep);
	if ((got & (1u << 1 | 1u << 2 | 1u << 3)) != (1u << 1 | 1u << 2 | 1u << 3) ||
	    (got & (1u << 5 | 1u << 6)))
		wl_fail("after: saw %#x", got);
	if (write(inner_efd, &one, sizeof(one)) != sizeof(one))
		wl_fail("write: %s", strerror(errno));
	if (!(seen(ep) & 1u << 5))
		wl_fail("the inner epoll did not report through the outer one");
	if (epoll_wait(inner, &ev, 1, 1000) != 1 || ev.data.u64 != 0x7777)
		wl_fail("the inner epoll did not report its eventfd");
	if (write(once, &one, sizeof(one)) != sizeof(one))
		wl_fail("write: %s", strerror(errno));
	if (!(seen(ep) & 1u << 6))
		wl_fail("the oneshot watch did not report");
	if (seen(ep) & 1u << 6)
		wl_fail("the oneshot watch reported twice");
	check_shared_epoll(ep, child, shared_efd, go[1]);
	wl_expect_exit(child, 0);
	char buf[4] = {0};
	if (read(p[0], buf, sizeof(buf)) != 2 || strcmp(buf, "xy"))
		wl_fail("pipe: read \"%s\", want \"xy\"", buf);
	wl_pass();
}
