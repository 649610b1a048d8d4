/* wl-unix-rights [free|glued]: open files in flight (SCM_RIGHTS), queued before READY, each one
 * the parent holds too (one open file):
 *   stream     a socketpair(SOCK_STREAM), the child holding end 1: "R" carrying a pipe's read
 *              end (the pipe holds "pipe-data") and a regular file (<trigger>.file,
 *              "0123456789", at offset 2), then "tail"
 *   seqpacket  a connection through the abstract listener "\0wl-unix-rights-PID", the child the
 *              client: "M" carrying a memfd ("memfd-data") and a datagram socket bound to
 *              "\0wl-unix-rights-dg-PID", then "N" with no fds
 * After the trigger the child reads "R" with two fds and "tail" with none; the pipe end reads
 * "pipe-data"; the file's offset is 2 and moving it moves the parent's (the same open file); "M"
 * with two fds: the memfd reads "memfd-data", the socket is bound to its name and takes a
 * datagram sent to it; "N" with none.
 * "free" also sends, on the seqpacket connection, an fd of a file the parent then closes (held
 * by no task); "glued" sends "hdr" on the stream before "R" (a peek returns "hdrR" with the fds
 * where a read of 3 bytes gets none): the dump must refuse each by name, and the workload runs
 * on to PASS. */
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "wl.h"

static bool in_child, glued;

#define FAIL(...) (in_child ? wl_child_fail(__VA_ARGS__) : wl_fail(__VA_ARGS__))

static void send_fds(int sk, const char *data, const int *fds, size_t n)
{
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u = {0};
	struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (n) {
		mh.msg_control = u.b;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	}
	if (sendmsg(sk, &mh, MSG_DONTWAIT) != (ssize_t)iov.iov_len)
		FAIL("sendmsg %s: %s", data, strerror(errno));
}

/* Receives exactly len bytes (the data must be want) and the fds that came with them. */
static size_t recv_fds(int sk, const char *want, int *fds, size_t max)
{
	union {
		char b[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char buf[64];
	size_t len = strlen(want), n = 0;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)};
	struct pollfd p = {.fd = sk, .events = POLLIN};

	if (poll(&p, 1, 10000) != 1)
		FAIL("%s: nothing to read", want);
	ssize_t got = recvmsg(sk, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (got != (ssize_t)len || memcmp(buf, want, len))
		FAIL("%s: read %zd bytes that are not it: %s", want, got, strerror(errno));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				if (n < max)
					fds[n] = fd;
				n++;
			}
	if (mh.msg_flags & MSG_CTRUNC)
		FAIL("%s: control data cut", want);
	return n;
}

static socklen_t abstract_addr(struct sockaddr_un *sa, const char *what, pid_t pid)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "wl-unix-rights%s-%d", what,
	                 (int)pid);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void read_is(int fd, const char *want, const char *what)
{
	char buf[64] = {0};
	ssize_t n = read(fd, buf, sizeof(buf) - 1);

	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n))
		FAIL("%s: read \"%s\", want \"%s\"", what, n > 0 ? buf : "", want);
}

static void child(int st, int sq, const struct sockaddr_un *dsa, socklen_t dlen, int done)
{
	int fds[8];
	size_t n;

	in_child = true;
	if (write(done, "k", 1) != 1)
		FAIL("write: %s", strerror(errno));
	wl_child_await_trigger();
	if (glued && (n = recv_fds(st, "hdr", fds, 8)) != 0)
		FAIL("stream: \"hdr\" came with %zu fds, want none", n);
	if ((n = recv_fds(st, "R", fds, 8)) != 2)
		FAIL("stream: \"R\" came with %zu fds, want 2", n);
	read_is(fds[0], "pipe-data", "the pipe in flight");
	if (lseek(fds[1], 0, SEEK_CUR) != 2)
		FAIL("the file in flight is not at offset 2");
	if (lseek(fds[1], 5, SEEK_SET) != 5) /* the parent sees it: one open file */
		FAIL("lseek: %s", strerror(errno));
	if ((n = recv_fds(st, "tail", fds + 2, 6)) != 0)
		FAIL("stream: \"tail\" came with %zu fds, want none", n);
	if ((n = recv_fds(sq, "M", fds, 8)) != 2)
		FAIL("seqpacket: \"M\" came with %zu fds, want 2", n);
	if ((n = recv_fds(sq, "N", fds + 2, 6)) != 0)
		FAIL("seqpacket: \"N\" came with %zu fds, want none", n);
	char buf[32] = {0};
	if (pread(fds[0], buf, 10, 0) != 10 || memcmp(buf, "memfd-data", 10))
		FAIL("the memfd in flight does not read memfd-data");
	struct sockaddr_un got;
	socklen_t gl = sizeof(got);
	if (getsockname(fds[1], (struct sockaddr *)&got, &gl) < 0 || gl != dlen ||
	    memcmp(&got, dsa, dlen))
		FAIL("the socket in flight is not bound to its name");
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (sendto(s, "dg", 2, 0, (const struct sockaddr *)dsa, dlen) != 2 ||
	    recv(fds[1], buf, sizeof(buf), MSG_DONTWAIT) != 2 || memcmp(buf, "dg", 2))
		FAIL("the socket in flight does not take a datagram: %s", strerror(errno));
	if (write(done, "d", 1) != 1)
		FAIL("write: %s", strerror(errno));
	_exit(0);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	struct sockaddr_un lsa, dsa;
	socklen_t llen, dlen;
	int st[2], pp[2], done[2], lis, acc, cq, dg, mfd, file;
	char *path;
	pid_t kid;

	wl_init("wl-unix-rights");
	glued = !strcmp(mode, "glued");
	path = wl_side_path(".file");
	file = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (file < 0 || write(file, "0123456789", 10) != 10 || lseek(file, 2, SEEK_SET) != 2)
		wl_fail("%s: %s", path, strerror(errno));
	if (pipe(pp) < 0 || write(pp[1], "pipe-data", 9) != 9)
		wl_fail("pipe: %s", strerror(errno));
	mfd = memfd_create("wl-unix-rights", MFD_CLOEXEC);
	if (mfd < 0 || write(mfd, "memfd-data", 10) != 10)
		wl_fail("memfd: %s", strerror(errno));
	dlen = abstract_addr(&dsa, "-dg", getpid());
	dg = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (dg < 0 || bind(dg, (struct sockaddr *)&dsa, dlen) < 0)
		wl_fail("dgram: %s", strerror(errno));
	llen = abstract_addr(&lsa, "", getpid());
	lis = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (lis < 0 || bind(lis, (struct sockaddr *)&lsa, llen) < 0 || listen(lis, 2) < 0)
		wl_fail("listen: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) < 0 || pipe(done) < 0)
		wl_fail("socketpair: %s", strerror(errno));
	cq = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (cq < 0 || connect(cq, (struct sockaddr *)&lsa, llen) < 0 ||
	    (acc = accept(lis, NULL, NULL)) < 0)
		wl_fail("connect: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (kid == 0) {
		close(st[0]);
		close(acc);
		close(done[0]);
		child(st[1], cq, &dsa, dlen, done[1]);
	}
	close(st[1]);
	close(cq);
	close(done[1]);
	if (glued)
		send_fds(st[0], "hdr", NULL, 0);
	send_fds(st[0], "R", (int[]){pp[0], file}, 2);
	send_fds(st[0], "tail", NULL, 0);
	send_fds(acc, "M", (int[]){mfd, dg}, 2);
	send_fds(acc, "N", NULL, 0);
	if (!strcmp(mode, "free")) {
		int gone = open("/dev/null", O_RDONLY | O_CLOEXEC);
		send_fds(acc, "F", &gone, 1);
		close(gone);
	}
	char k;
	if (read(done[0], &k, 1) != 1)
		wl_fail("the child did not start");
	wl_ready();
	wl_await_trigger();

	if (read(done[0], &k, 1) != 1)
		wl_fail("the child did not check its fds");
	if (lseek(file, 0, SEEK_CUR) != 5)
		wl_fail("the file in flight was not our open file: our offset did not move");
	wl_expect_exit(kid, 0);
	unlink(path);
	printf("PASS\n");
	return 0;
}
