/* wl-unix-conn: connections made through listeners of the tree, before READY:
 *   path      SOCK_STREAM listening on <trigger>.sock
 *   abstract  SOCK_SEQPACKET listening on "\0wl-unix-conn-PID"
 * A child (the client) connects to each; the parent (the server) accepts both. Queued before
 * READY, unread: "c2s-path" (2000 pattern bytes) and the messages "c2s-a1", "c2s-a2" to the
 * server; "s2c-path" and "s2c-a" to the client. The parent also holds a connection whose both
 * ends are its own (connected to path and accepted), "self" queued each way, its client end
 * O_NONBLOCK and shut down for writing after "self" (the accepted end reads it, then the end of
 * the stream). The child's seqpacket connection is shut down for writing after its messages.
 * After the trigger each side reads its data whole and in order; an accepted end reads the
 * listener's name (getsockname) and the client end the listener's name as its peer's
 * (getpeername); SO_PEERCRED reads our uid and gid on both sides; the flags are what they were;
 * new data flows both ways on each connection; each listener accepts a new client.
 * "outside" also accepts a connection from a client outside the tree (a process that double
 * forked, as psql is to a server's tree): the dump must refuse it, naming the client, and the
 * workload runs on to PASS. */
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "wl-sk.h"
#include "wl.h"

#define BIG 2000

static char pattern[BIG];

/* Nothing more queued (or the end, when ended). */
static void drained(int fd, bool ended, const char *what)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	if (ended ? n != 0 : !(n < 0 && errno == EAGAIN))
		WL_FAIL("%s: %s", what, ended ? "no end of stream" : "more data than was sent");
}

static socklen_t path_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		wl_fail("path %s too long for a socket", path);
	strcpy(sa->sun_path, path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

static socklen_t abstract_addr(struct sockaddr_un *sa, pid_t pid)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "wl-unix-conn-%d", (int)pid);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int listener(int type, const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0 || bind(fd, (const struct sockaddr *)sa, len) < 0 || listen(fd, 4) < 0)
		wl_fail("listen: %s", strerror(errno));
	return fd;
}

static int connect_to(int type, const struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0 || connect(fd, (const struct sockaddr *)sa, len) < 0)
		WL_FAIL("connect: %s", strerror(errno));
	return fd;
}

/* getsockname (local) or getpeername must be the listener's name. */
static void named(int fd, bool local, const struct sockaddr_un *sa, socklen_t len, const char *what)
{
	struct sockaddr_un got;
	socklen_t gl = sizeof(got);
	int r = local ? getsockname(fd, (struct sockaddr *)&got, &gl)
	              : getpeername(fd, (struct sockaddr *)&got, &gl);

	if (r < 0 || gl != len || memcmp(&got, sa, len))
		WL_FAIL("%s: its %s name is not the listener's (length %u, want %u)", what,
		        local ? "own" : "peer's", gl, len);
}

static void peer_ids(int fd, const char *what)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0)
		WL_FAIL("%s: SO_PEERCRED: %s", what, strerror(errno));
	if (cr.uid != geteuid() || cr.gid != getegid())
		WL_FAIL("%s: SO_PEERCRED uid %u gid %u, want %u %u", what, cr.uid, cr.gid,
		        geteuid(), getegid());
}

static void flags_are(int fd, int fl, const char *what)
{
	if ((fcntl(fd, F_GETFL) & O_NONBLOCK) != fl)
		WL_FAIL("%s: O_NONBLOCK changed", what);
}

static void client(int sp, int sa_)
{
	wl_in_child = true;
	wl_child_await_trigger();
	wl_sk_get(sp, true, "s2c-path", 8, "client path");
	wl_sk_get(sa_, false, "s2c-a", 5, "client abstract");
	/* the server has read everything and sends nothing more until "ping" */
	wl_sk_get(sa_, false, "go", 2, "client abstract go");
	drained(sp, false, "client path");
	drained(sa_, false, "client abstract");
	peer_ids(sp, "client path");
	peer_ids(sa_, "client abstract");
	wl_sk_put(sp, "ping", 4, "client path");
	wl_sk_get(sp, true, "pong", 4, "client path reply");
	_exit(0);
}

/* A client outside our tree (a grandchild, orphaned), connected to path until its connection
 * ends; returns the accepted end. */
static int outside_client(int pl, const struct sockaddr_un *psa, socklen_t plen)
{
	pid_t p = fork();

	if (p < 0)
		wl_fail("fork: %s", strerror(errno));
	if (p == 0) {
		if (fork() == 0) {
			char buf[4];
			int c = socket(AF_UNIX, SOCK_STREAM, 0);
			if (c < 0 || connect(c, (const struct sockaddr *)psa, plen) < 0)
				_exit(1);
			while (read(c, buf, sizeof(buf)) > 0)
				;
			_exit(0);
		}
		_exit(0);
	}
	wl_expect_exit(p, 0);
	int a = accept(pl, NULL, NULL);
	if (a < 0)
		wl_fail("accept the outside client: %s", strerror(errno));
	return a;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int out = -1;

	struct sockaddr_un psa, asa;
	socklen_t plen, alen;
	char *path;
	int pl, al, sp, sa_, self_c, self_a, done[2];
	pid_t kid;

	wl_init("wl-unix-conn");
	wl_fill(pattern, sizeof(pattern), 7);
	path = wl_side_path(".sock");
	unlink(path);
	plen = path_addr(&psa, path);
	alen = abstract_addr(&asa, getpid());
	pl = listener(SOCK_STREAM, &psa, plen);
	al = listener(SOCK_SEQPACKET | SOCK_CLOEXEC, &asa, alen);

	if (pipe(done) < 0)
		wl_fail("pipe: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (kid == 0) {
		int cp = connect_to(SOCK_STREAM, &psa, plen);
		int ca = connect_to(SOCK_SEQPACKET, &asa, alen);
		wl_in_child = true;
		wl_sk_put(cp, "c2s-path", 8, "client path");
		wl_sk_put(cp, pattern, BIG, "client path");
		wl_sk_put(ca, "c2s-a1", 6, "client abstract");
		wl_sk_put(ca, "c2s-a2", 6, "client abstract");
		if (shutdown(ca, SHUT_WR) < 0)
			WL_FAIL("shutdown: %s", strerror(errno));
		close(pl);
		close(al);
		close(done[0]);
		if (write(done[1], "k", 1) != 1)
			WL_FAIL("write: %s", strerror(errno));
		close(done[1]);
		client(cp, ca);
	}
	close(done[1]);
	sp = accept(pl, NULL, NULL);
	sa_ = accept4(al, NULL, NULL, SOCK_CLOEXEC);
	if (sp < 0 || sa_ < 0)
		wl_fail("accept: %s", strerror(errno));
	wl_sk_put(sp, "s2c-path", 8, "server path");
	wl_sk_put(sa_, "s2c-a", 5, "server abstract");
	/* a connection whose both ends are ours */
	self_c = connect_to(SOCK_STREAM | SOCK_NONBLOCK, &psa, plen);
	if ((self_a = accept(pl, NULL, NULL)) < 0)
		wl_fail("accept self: %s", strerror(errno));
	wl_sk_put(self_c, "self", 4, "self client");
	wl_sk_put(self_a, "self", 4, "self accepted");
	if (shutdown(self_c, SHUT_WR) < 0)
		wl_fail("shutdown: %s", strerror(errno));
	if (!strcmp(mode, "outside"))
		out = outside_client(pl, &psa, plen);
	/* the child's data is all queued before READY */
	char k;
	if (read(done[0], &k, 1) != 1)
		wl_fail("the client did not send its data");
	close(done[0]);
	wl_ready();
	wl_await_trigger();

	wl_sk_get(sp, true, "c2s-path", 8, "server path");
	wl_sk_get(sp, true, pattern, BIG, "server path pattern");
	drained(sp, false, "server path");
	wl_sk_get(sa_, false, "c2s-a1", 6, "server abstract");
	wl_sk_get(sa_, false, "c2s-a2", 6, "server abstract");
	drained(sa_, true, "server abstract");
	wl_sk_get(self_a, true, "self", 4, "self accepted");
	drained(self_a, true, "self accepted");
	wl_sk_get(self_c, true, "self", 4, "self client");
	drained(self_c, false, "self client");
	if (send(self_c, "x", 1, MSG_NOSIGNAL) >= 0 || errno != EPIPE)
		wl_fail("self client: a send after SHUT_WR did not fail with EPIPE");
	named(sp, true, &psa, plen, "server path");
	named(sa_, true, &asa, alen, "server abstract");
	named(self_a, true, &psa, plen, "self accepted");
	named(self_c, false, &psa, plen, "self client");
	peer_ids(sp, "server path");
	peer_ids(sa_, "server abstract");
	peer_ids(self_c, "self client");
	flags_are(self_c, O_NONBLOCK, "self client");
	flags_are(sp, 0, "server path");
	if (!(fcntl(sa_, F_GETFD) & FD_CLOEXEC) || (fcntl(sp, F_GETFD) & FD_CLOEXEC))
		wl_fail("the accepted ends' FD_CLOEXEC changed");
	/* new data both ways: the client checks it has nothing more queued,
	 * then sends "ping" */
	wl_sk_put(sa_, "go", 2, "server abstract");
	wl_sk_get(sp, true, "ping", 4, "server path");
	wl_sk_put(sp, "pong", 4, "server path");
	char why[256];
	const char *bad = wl_reap(kid, 0, why, sizeof(why));
	if (bad)
		wl_fail("client: %s", bad);
	/* the listeners still take new clients */
	for (int i = 0; i < 2; i++) {
		int c =
		    connect_to(i ? SOCK_SEQPACKET : SOCK_STREAM, i ? &asa : &psa, i ? alen : plen);
		int a = accept(i ? al : pl, NULL, NULL);
		if (a < 0)
			wl_fail("accept a new client: %s", strerror(errno));
		wl_sk_put(c, "new", 3, "new client");
		wl_sk_get(a, i == 0, "new", 3, "new client");
		named(c, false, i ? &asa : &psa, i ? alen : plen, "new client");
		close(a);
		close(c);
	}
	if (out >= 0)
		close(out);
	unlink(path);
	printf("PASS\n");
	return 0;
}
