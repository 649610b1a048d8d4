/* wl-manyfds [PAIRS]: many fds, shared and not, within a task and with a child.
 * PAIRS (default 4000) pairs of fds from fd 100: fd 100+2k is its own open of
 * <trigger>.data at offset k, fd 101+2k a dup of it (one open file). The child
 * inherits all of them, then replaces fd 100+2k for odd k by an open of its own
 * at offset k+1. After the trigger, in both tasks: each pair shares one open
 * file (kcmp, and a seek through one moves the other), the first fds of two
 * pairs never do, offsets are as set; the parent's fds are the child's for
 * even k and for every dup, and not for the child's own opens (the child waits
 * for <trigger>.done, made once the parent is done). A dump of this
 * tree compares every fd with the others: a quadratic dump takes minutes. */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>

#include "wl.h"

#define BASE 100

static int pairs = 4000;
static pid_t peer; /* the other task, for kcmp */

static bool in_child;

/* The parent fails the run; the child says why on stderr and exits 1. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (!in_child)
		wl_fail("%s", buf);
	fprintf(stderr, "wl-manyfds child: %s\n", buf);
	_exit(1);
}

/* 0: the same open file; else different. A kcmp error fails the run. */
static int cmp(pid_t p1, int fd1, pid_t p2, int fd2)
{
	long r = syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2);

	if (r < 0)
		fail("kcmp %d:%d %d:%d: %s", (int)p1, fd1, (int)p2, fd2, strerror(errno));
	return (int)r;
}

static off_t pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

/* The checks of one task; child: whether it is the child (owns odd k's first fd). */
static void check(bool child)
{
	pid_t self = getpid();

	for (int k = 0; k < pairs; k++) {
		int a = BASE + 2 * k, b = a + 1;
		bool own = child && (k & 1);
		if ((cmp(self, a, self, b) == 0) == own)
			fail("fd %d and fd %d: sharing an open file: %s", a, b, own ? "yes" : "no");
		if (pos(a) != (own ? k + 1 : k) || pos(b) != k)
			fail("pair %d: offsets %lld %lld", k, (long long)pos(a), (long long)pos(b));
		if (k > 0 && cmp(self, a, self, a - 2) == 0)
			fail("fd %d and fd %d share an open file", a, a - 2);
		if (cmp(self, b, peer, b) != 0)
			fail("fd %d is not the other task's", b);
		if ((cmp(self, a, peer, a) == 0) == (bool)(k & 1))
			fail("fd %d: shared with the other task: %s", a, (k & 1) ? "yes" : "no");
	}
}

static int child_main(void *arg)
{
	int ready = *(int *)arg;
	char *path = wl_side_path(".data"), *done = wl_side_path(".done");

	in_child = true;
	peer = getppid();
	for (int k = 1; k < pairs; k += 2) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || lseek(fd, k + 1, SEEK_SET) < 0 || dup2(fd, BASE + 2 * k) < 0 ||
		    close(fd) < 0)
			fail("open %s: %s", path, strerror(errno));
	}
	if (write(ready, "x", 1) != 1 || close(ready) < 0)
		fail("ready: %s", strerror(errno));
	wl_child_await_trigger();
	check(true);
	/* the parent compares its fds with ours until it says it is done */
	for (unsigned long polls = wl_max_polls(); access(done, F_OK) < 0; polls--) {
		if (!polls)
			fail("the parent never finished its checks");
		wl_nap_ms(WL_POLL_MS);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char *path;
	int p[2], fd;
	char c;

	wl_init("wl-manyfds");
	if (argc > 1)
		pairs = atoi(argv[1]);
	if (pairs < 2 || BASE + 2 * pairs > (int)sysconf(_SC_OPEN_MAX))
		wl_fail("%d pairs do not fit under the fd limit %ld", pairs, sysconf(_SC_OPEN_MAX));
	path = wl_side_path(".data");
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 || close(fd) < 0)
		wl_fail("create %s: %s", path, strerror(errno));
	for (int k = 0; k < pairs; k++) {
		int a = BASE + 2 * k;
		wl_place_fd(open(path, O_RDONLY), a);
		if (lseek(a, k, SEEK_SET) < 0 || dup2(a, a + 1) < 0)
			wl_fail("pair %d: %s", k, strerror(errno));
	}
	if (pipe(p) < 0)
		wl_fail("pipe: %s", strerror(errno));
	peer = wl_spawn(child_main, &p[1]);
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		wl_fail("the child did not get ready");
	close(p[0]);
	wl_ready();
	wl_await_trigger();
	check(false);
	path = wl_side_path(".done");
	if ((fd = open(path, O_WRONLY | O_CREAT, 0600)) < 0 || close(fd) < 0)
		wl_fail("create %s: %s", path, strerror(errno));
	wl_expect_exit(peer, 0);
	/* the dups are one open file: a seek through one moves the other */
	if (lseek(BASE + 1, 12345, SEEK_SET) != 12345 || pos(BASE) != 12345)
		wl_fail("a seek through fd %d did not move fd %d", BASE + 1, BASE);
	wl_pass();
}
