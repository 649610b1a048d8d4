/* wl-unix-pair [rights|shared|outside]: connected unix socket pairs held by this process,
 * with data queued in both directions, before READY:
 *   stream     socketpair(SOCK_STREAM): 100000 pattern bytes a→b in three writes, "pong" b→a;
 *              a is O_NONBLOCK and also at a second fd (dup)
 *   dgram      socketpair(SOCK_DGRAM): messages of 1, 300 and 70000 bytes a→b (the last
 *              larger than one injection page), none back; b has SO_RCVBUF 100000
 *   seqpacket  socketpair(SOCK_SEQPACKET, cloexec): "one", "two" a→b, "three" b→a, then a shuts
 *              down writing (b sees the end of the stream after its two messages)
 *   idle       socketpair(SOCK_STREAM), nothing queued, b shut down for reading
 * After the trigger every message comes back whole and in order, nothing more is queued, the
 * flags are as set, SO_PEERCRED names this process, the shutdowns hold, and new data flows both
 * ways through each pair.
 * With "rights", a message carrying an fd (SCM_RIGHTS) also waits in a queue; "shared" gives
 * both ends of a pair it made to a child and closes its own (the maker holds no end); "outside"
 * connects to a listener of a process outside the tree: the dump must refuse each, naming it, and
 * the workload runs on to PASS. */
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "wl.h"

#define BIG 100000

static void pair(int type, int sv[2])
{
	if (socketpair(AF_UNIX, type, 0, sv) < 0)
		wl_fail("socketpair: %s", strerror(errno));
}

static void put(int fd, const void *buf, size_t len, const char *what)
{
	if (send(fd, buf, len, MSG_DONTWAIT) != (ssize_t)len)
		wl_fail("%s: send %zu bytes: %s", what, len, strerror(errno));
}

static int opt_type(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len);
	return v;
}

/* The next message (or, for a stream, len bytes) must be buf. */
static void get(int fd, const void *buf, size_t len, const char *what)
{
	static char got[BIG + 1];
	size_t off = 0;

	do {
		ssize_t n = recv(fd, got + off, sizeof(got) - off, MSG_DONTWAIT);
		if (n <= 0)
			wl_fail("%s: recv after %zu of %zu bytes: %s", what, off, len,
			        n ? strerror(errno) : "end");
		off += (size_t)n;
	} while (off < len && opt_type(fd) == SOCK_STREAM);
	if (off != len || memcmp(got, buf, len))
		wl_fail("%s: got %zu bytes, want %zu (or other bytes)", what, off, len);
}

static void empty(int fd, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);

	if (n >= 0 || errno != EAGAIN)
		wl_fail("%s: more queued (%zd)", what, n);
}

static void peer_is_us(int fd, const char *what)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		wl_fail("%s: SO_PEERCRED: %s", what, strerror(errno));
	if (cr.pid != getpid() || cr.uid != geteuid() || cr.gid != getegid())
		wl_fail("%s: SO_PEERCRED pid %d uid %u gid %u, want %d %u %u", what, cr.pid, cr.uid,
		        cr.gid, getpid(), geteuid(), getegid());
}

static void round_trip(int a, int b, const char *what)
{
	put(a, "new", 3, what);
	get(b, "new", 3, what);
	put(b, "back", 4, what);
	get(a, "back", 4, what);
}

/* A listener in a process outside the tree (double fork: its parent exits), and our
 * connection to it. */
static int outside(void)
{
	char name[64];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int ready[2];
	pid_t p;

	snprintf(name, sizeof(name), "wl-unix-outside-%d", getpid());
	memcpy(sa.sun_path + 1, name, strlen(name));
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	if (pipe(ready) < 0)
		wl_fail("pipe: %s", strerror(errno));
	p = fork();
	if (p == 0) {
		if (fork() == 0) {
			int l = socket(AF_UNIX, SOCK_STREAM, 0);
			if (bind(l, (struct sockaddr *)&sa, len) < 0 || listen(l, 1) < 0)
				_exit(1);
			if (write(ready[1], "x", 1) != 1)
				_exit(1);
			int c = accept(l, NULL, NULL);
			char buf[4];
			/* until our end closes */
			while (c >= 0 && read(c, buf, sizeof(buf)) > 0)
				;
			_exit(0);
		}
		_exit(0);
	}
	wl_expect_exit(p, 0);
	char c;
	if (read(ready[0], &c, 1) != 1)
		wl_fail("outside listener did not start");
	close(ready[0]);
	close(ready[1]);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, len) < 0)
		wl_fail("connect outside: %s", strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	static char pattern[BIG], msg70k[70000];
	int st[2], dg[2], sp[2], idle[2], stdup, extra = -1, rights[2] = {-1, -1};
	pid_t child = 0;

	wl_init("wl-unix-pair");
	wl_fill(pattern, sizeof(pattern), 7);
	wl_fill(msg70k, sizeof(msg70k), 9);
	pair(SOCK_STREAM, st);
	pair(SOCK_DGRAM, dg);
	pair(SOCK_SEQPACKET | SOCK_CLOEXEC, sp);
	pair(SOCK_STREAM, idle);
	if (fcntl(st[0], F_SETFL, O_NONBLOCK) < 0 || (stdup = dup(st[0])) < 0)
		wl_fail("fcntl or dup: %s", strerror(errno));
	put(st[0], pattern, 40000, "stream");
	put(st[0], pattern + 40000, 50000, "stream");
	put(st[0], pattern + 90000, BIG - 90000, "stream");
	put(st[1], "pong", 4, "stream");
	int rcv = 100000;
	if (setsockopt(dg[1], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) < 0)
		wl_fail("SO_RCVBUF: %s", strerror(errno));
	put(dg[0], "x", 1, "dgram");
	put(dg[0], pattern, 300, "dgram");
	put(dg[0], msg70k, sizeof(msg70k), "dgram");
	put(sp[0], "one", 3, "seqpacket");
	put(sp[0], "two", 3, "seqpacket");
	put(sp[1], "three", 5, "seqpacket");
	if (shutdown(sp[0], SHUT_WR) < 0 || shutdown(idle[1], SHUT_RD) < 0)
		wl_fail("shutdown: %s", strerror(errno));
	if (!strcmp(mode, "rights")) {
		pair(SOCK_DGRAM, rights);
		char b = 'r';
		struct iovec iov = {.iov_base = &b, .iov_len = 1};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = u.buf,
		                    .msg_controllen = sizeof(u.buf)};
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &idle[0], sizeof(int));
		if (sendmsg(rights[0], &mh, 0) != 1)
			wl_fail("sendmsg SCM_RIGHTS: %s", strerror(errno));
	} else if (!strcmp(mode, "shared")) {
		/* made here, both ends only the child's: the task that made it
		 * holds no end */
		pair(SOCK_STREAM, rights);
		child = fork();
		if (child == 0) {
			wl_child_await_trigger();
			_exit(0);
		}
		close(rights[0]);
		close(rights[1]);
		rights[0] = rights[1] = -1;
	} else if (!strcmp(mode, "outside")) {
		extra = outside();
	}
	peer_is_us(st[0], "stream");
	wl_ready();
	wl_await_trigger();

	if ((fcntl(st[0], F_GETFL) & O_NONBLOCK) == 0 || (fcntl(st[1], F_GETFL) & O_NONBLOCK) ||
	    fcntl(sp[0], F_GETFD) != FD_CLOEXEC || fcntl(dg[0], F_GETFD) != 0)
		wl_fail("flags changed");
	int v = 0;
	socklen_t vl = sizeof(v);
	if (getsockopt(dg[1], SOL_SOCKET, SO_RCVBUF, &v, &vl) < 0 || v != 200000)
		wl_fail("dgram: SO_RCVBUF %d, want 200000", v);
	peer_is_us(st[0], "stream");
	peer_is_us(dg[1], "dgram");
	peer_is_us(sp[1], "seqpacket");
	get(st[1], pattern, BIG, "stream a→b");
	get(stdup, "pong", 4, "stream b→a (through the dup)");
	empty(st[1], "stream b");
	empty(st[0], "stream a");
	get(dg[1], "x", 1, "dgram 1");
	get(dg[1], pattern, 300, "dgram 2");
	get(dg[1], msg70k, sizeof(msg70k), "dgram 3");
	empty(dg[1], "dgram b");
	empty(dg[0], "dgram a");
	get(sp[1], "one", 3, "seqpacket 1");
	get(sp[1], "two", 3, "seqpacket 2");
	get(sp[0], "three", 5, "seqpacket back");
	char c;
	if (recv(sp[1], &c, 1, MSG_DONTWAIT) != 0)
		wl_fail("seqpacket: b does not see the end after a's shutdown");
	if (send(sp[0], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0 || errno != EPIPE)
		wl_fail("seqpacket: a may write after its shutdown");
	if (send(idle[0], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0 || errno != EPIPE)
		wl_fail("idle: a may write to b shut down for reading");
	round_trip(st[0], st[1], "stream");
	round_trip(dg[0], dg[1], "dgram");
	put(idle[1], "b", 1, "idle b→a");
	get(idle[0], "b", 1, "idle b→a");
	if (rights[0] >= 0 && child == 0) {
		char r;
		if (recv(rights[1], &r, 1, 0) != 1)
			wl_fail("rights: %s", strerror(errno));
	}
	if (child)
		wl_expect_exit(child, 0);
	if (extra >= 0)
		close(extra);
	wl_pass();
}
