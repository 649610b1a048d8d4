/* wl-unix-shared: socket pairs made before a fork, one end in each task (multiprocessing's
 * Pipe, a master and its worker's channel), with data queued both ways before READY:
 *   stream     socketpair(SOCK_STREAM): 5000 pattern bytes parent→child, "up" child→parent;
 *              the child's end O_NONBLOCK
 *   dgram      socketpair(SOCK_DGRAM): messages of 1 and 300 bytes parent→child, "d-up"
 *              child→parent
 *   seqpacket  socketpair(SOCK_SEQPACKET, cloexec): "one", "two" parent→child, "three"
 *              child→parent
 * The parent keeps end 0 of each at fds 20, 21, 22 and the child end 1 at fds 30, 31, 32.
 * A fourth pair (seqpacket) is the parent's whole (fds 23, 33) and the child holds end 1 too
 * (fd 33), with "q" queued in it: the child reads it after the trigger and sends "c" back, which
 * the parent reads once the child is gone.
 * After the trigger each task reads its messages whole and in order with nothing more queued,
 * its fds are where they were with their flags, SO_PEERCRED names the parent (which made the
 * pairs) with its ids in both tasks, and new data flows both ways through each pair (the child
 * first, so each side's "nothing more queued" holds before the other sends). */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "wl-sk.h"
#include "wl.h"

#define STREAM_LEN 5000

static const int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET | SOCK_CLOEXEC};
static const char *const names[3] = {"stream", "dgram", "seqpacket"};
static char pattern[STREAM_LEN];

static void empty(int fd, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);

	if (n >= 0 || errno != EAGAIN)
		WL_FAIL("%s: more queued (%zd)", what, n);
}

static void peer_is(int fd, pid_t pid, const char *what)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		WL_FAIL("%s: SO_PEERCRED: %s", what, strerror(errno));
	if (cr.pid != pid || cr.uid != geteuid() || cr.gid != getegid())
		WL_FAIL("%s: SO_PEERCRED pid %d uid %u gid %u, want pid %d uid %u gid %u", what,
		        cr.pid, cr.uid, cr.gid, pid, geteuid(), getegid());
}

static void flags_are(int fd, int fl, int fdfl, const char *what)
{
	int got = fcntl(fd, F_GETFL), gotfd = fcntl(fd, F_GETFD);

	if (got < 0 || gotfd < 0 || (got & O_NONBLOCK) != fl || (gotfd & FD_CLOEXEC) != fdfl)
		WL_FAIL("%s: flags %#x fd flags %#x, want O_NONBLOCK %#x FD_CLOEXEC %#x", what, got,
		        gotfd, fl, fdfl);
}

/* The child's side: its queue, its fds, then a new message each way (the
 * parent sends only after ours, so our queues are checked first). */
static void child_check(pid_t parent)
{
	wl_sk_get(30, true, pattern, STREAM_LEN, "stream parent→child");
	wl_sk_get(31, false, "x", 1, "dgram parent→child 1");
	wl_sk_get(31, false, pattern, 300, "dgram parent→child 2");
	wl_sk_get(32, false, "one", 3, "seqpacket parent→child 1");
	wl_sk_get(32, false, "two", 3, "seqpacket parent→child 2");
	flags_are(30, O_NONBLOCK, 0, "child stream");
	flags_are(31, 0, 0, "child dgram");
	flags_are(32, 0, FD_CLOEXEC, "child seqpacket");
	wl_sk_get(33, false, "q", 1, "common parent→child");
	empty(33, "common");
	peer_is(33, parent, "common");
	wl_sk_put(33, "c", 1, "common");
	for (int i = 0; i < 3; i++) {
		empty(30 + i, names[i]);
		peer_is(30 + i, parent, names[i]);
		wl_sk_put(30 + i, "new-c", 5, names[i]);
	}
	for (int i = 0; i < 3; i++)
		wl_sk_get(30 + i, i == 0, "new-p", 5, names[i]);
}

static void parent_check(void)
{
	wl_sk_get(20, true, "up", 2, "stream child→parent");
	wl_sk_get(21, false, "d-up", 4, "dgram child→parent");
	wl_sk_get(22, false, "three", 5, "seqpacket child→parent");
	flags_are(20, 0, 0, "parent stream");
	flags_are(21, 0, 0, "parent dgram");
	flags_are(22, 0, FD_CLOEXEC, "parent seqpacket");
	/* the child sends once it found its queues right: nothing else
	 * may come before */
	for (int i = 0; i < 3; i++) {
		wl_sk_get(20 + i, i == 0, "new-c", 5, names[i]);
		empty(20 + i, names[i]);
		peer_is(20 + i, getpid(), names[i]);
		wl_sk_put(20 + i, "new-p", 5, names[i]);
	}
}

int main(void)
{
	int sv[3][2];
	pid_t parent = getpid(), child;

	wl_init("wl-unix-shared");
	wl_fill(pattern, sizeof(pattern), 11);
	for (int i = 0; i < 3; i++) {
		if (socketpair(AF_UNIX, types[i], 0, sv[i]) < 0)
			wl_fail("socketpair %s: %s", names[i], strerror(errno));
		wl_place_fd(sv[i][0], 20 + i);
		wl_place_fd(sv[i][1], 30 + i);
	}
	if (fcntl(22, F_SETFD, FD_CLOEXEC) < 0 || fcntl(32, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(30, F_SETFL, O_NONBLOCK) < 0)
		wl_fail("fcntl: %s", strerror(errno));
	int common[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, common) < 0)
		wl_fail("socketpair common: %s", strerror(errno));
	wl_place_fd(common[0], 23);
	wl_place_fd(common[1], 33);
	wl_sk_put(23, "q", 1, "common");
	wl_sk_put(20, pattern, STREAM_LEN, "stream");
	wl_sk_put(21, "x", 1, "dgram");
	wl_sk_put(21, pattern, 300, "dgram");
	wl_sk_put(22, "one", 3, "seqpacket");
	wl_sk_put(22, "two", 3, "seqpacket");
	child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		wl_in_child = true;
		for (int i = 0; i < 4; i++)
			close(20 + i);
		wl_sk_put(30, "up", 2, "stream");
		wl_sk_put(31, "d-up", 4, "dgram");
		wl_sk_put(32, "three", 5, "seqpacket");
		wl_child_await_trigger();
		child_check(parent);
		_exit(0);
	}
	for (int i = 0; i < 3; i++)
		close(30 + i);
	/* READY once the child's messages wait in our queues */
	for (int i = 0; i < 3; i++)
		wl_sk_readable(20 + i, names[i]);
	wl_ready();
	wl_await_trigger();
	parent_check();
	wl_expect_exit(child, 0);
	/* the child's message, and our own through both ends */
	wl_sk_get(23, false, "c", 1, "common child→parent");
	empty(23, "common");
	peer_is(23, getpid(), "common");
	wl_sk_put(23, "p", 1, "common");
	wl_sk_get(33, false, "p", 1, "common parent→parent");
	wl_pass();
}
