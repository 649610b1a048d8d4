/* wl-unix-creds [outside]: credentials in flight (SCM_CREDENTIALS) in the queues of unix socket
 * pairs whose receiving end has SO_PASSCRED, before READY: a SOCK_DGRAM pair and a SOCK_STREAM
 * pair, made by this process, which forks a child holding the sending ends too. This process
 * sends "p" on the dgram pair and "ab" on the stream pair, then the child sends "c" and "cd";
 * none is read. After the trigger the dgram end reads "p" with this process's pid, uid and gid,
 * then "c" with the child's pid; the stream end reads "ab" with this process's credentials, then
 * "cd" with the child's (a read stops where the credentials change). With "outside", a process
 * outside the tree (double fork, setsid) sends "o" on its copy of the dgram pair's sending end and
 * exits before READY: the dump must refuse the queue, naming that pid, and the workload runs on to
 * PASS (the datagram read first is then "o"). */
#include <sys/socket.h>

#include "wl.h"

/* One message (up to len bytes) and the credentials it carries. */
static size_t recv_creds(int fd, char *buf, size_t len, struct ucred *cr, const char *what)
{
	union {
		char b[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.b,
	                    .msg_controllen = sizeof(ctl.b)};
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
	struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;

	if (n <= 0)
		wl_fail("%s: recvmsg: %s", what, n < 0 ? strerror(errno) : "end of stream");
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS)
		wl_fail("%s: no credentials on the message", what);
	memcpy(cr, CMSG_DATA(c), sizeof(*cr));
	return (size_t)n;
}

static void expect(int fd, const char *want, pid_t pid, const char *what)
{
	char buf[16] = {0};
	struct ucred cr;
	size_t n = recv_creds(fd, buf, sizeof(buf) - 1, &cr, what);

	if (n != strlen(want) || memcmp(buf, want, n))
		wl_fail("%s: read \"%s\", want \"%s\"", what, buf, want);
	if (cr.pid != pid || cr.uid != getuid() || cr.gid != getgid())
		wl_fail("%s: \"%s\" came with pid %d uid %u gid %u, want pid %d uid %u gid %u",
		        what, want, cr.pid, cr.uid, cr.gid, pid, getuid(), getgid());
}

/* A process outside the tree sends "o" on its copy of out, and exits;
 * back when in (out's peer) has it. */
static void send_outside(int in, int out)
{
	char b;
	pid_t k = fork();

	if (k < 0)
		wl_fail("fork: %s", strerror(errno));
	if (k == 0) {
		if (fork() == 0 && setsid() >= 0)
			_exit(send(out, "o", 1, 0) == 1 ? 0 : 1);
		_exit(0);
	}
	waitpid(k, NULL, 0);
	for (unsigned long i = 0; i < wl_max_polls(); i++) {
		if (recv(in, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
			return;
		wl_nap_ms(WL_POLL_MS);
	}
	wl_fail("outside: no datagram from the outside process");
}

int main(int argc, char **argv)
{
	bool outside = argc > 1 && !strcmp(argv[1], "outside");
	int dg[2], st[2], go[2], on = 1;
	char c;

	wl_init("wl-unix-creds");
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, st) < 0 || pipe(go) < 0)
		wl_fail("socketpair: %s", strerror(errno));
	if (setsockopt(dg[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0 ||
	    setsockopt(st[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
		wl_fail("SO_PASSCRED: %s", strerror(errno));
	if (outside)
		send_outside(dg[0], dg[1]);
	if (send(dg[1], "p", 1, 0) != 1 || send(st[1], "ab", 2, 0) != 2)
		wl_fail("send: %s", strerror(errno));
	pid_t kid = fork();
	if (kid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (kid == 0) {
		close(go[0]);
		if (send(dg[1], "c", 1, 0) != 1 || send(st[1], "cd", 2, 0) != 2 ||
		    write(go[1], "s", 1) != 1)
			wl_child_fail("send: %s", strerror(errno));
		wl_child_await_trigger();
		_exit(0);
	}
	wl_children[wl_nr_children++] = kid;
	close(go[1]);
	if (read(go[0], &c, 1) != 1)
		wl_fail("the child did not send");
	close(go[0]);
	wl_ready();
	wl_await_trigger();

	if (outside) {
		char buf[4];
		struct ucred cr;
		recv_creds(dg[0], buf, sizeof(buf), &cr, "outside");
	}
	expect(dg[0], "p", getpid(), "dgram");
	expect(dg[0], "c", kid, "dgram");
	expect(st[0], "ab", getpid(), "stream");
	expect(st[0], "cd", kid, "stream");
	wl_expect_exit(kid, 0);
	wl_pass();
}
