/* wl-unix-listen [pending|pendsent|pendout|connected|dgconnect]: unix sockets that are not
 * connected, before READY: cuda   SOCK_SEQPACKET listening on the abstract name CUDA uses for its
 * uvm fd
 *          ("\0cuda-uvmfd-4026531836-PID\0"), backlog 7, O_NONBLOCK, SO_PASSCRED,
 *          SO_RCVBUF 65536
 *   file   SOCK_STREAM listening on the path <trigger>.sock (mode 0600), backlog 3, cloexec
 *   dgram  SOCK_DGRAM bound to the abstract name "\0wl-unix-dgram-PID", SO_SNDBUF 50000
 *   loose  SOCK_DGRAM, unbound; raw SOCK_STREAM, unbound, O_NONBLOCK
 * After the trigger: each has its type, name, listening state, flags and options; cuda takes
 * 8 connections (backlog 7 + 1) and refuses a 9th with EAGAIN; a client of cuda reads our pid
 * and uid as its peer (SO_PEERCRED, taken at listen) and a message goes through; file accepts
 * a client by its path, its socket file still mode 0600; dgram receives a datagram sent to its
 * name; loose and raw can still bind and connect. A child holds every socket too (one open file
 * with the parent's) and finds the listeners listening on their names.
 * With "pending", two clients of ours (the second O_NONBLOCK) also wait in file's accept queue:
 * after the trigger accept takes them in the same order (a byte written on each accepted end
 * arrives at its own client), each client's peer name is file's, SO_PEERCRED on both sides names
 * this process, and bytes go both ways; with "pendsent", the first client has also sent a byte,
 * which waits in the connection not yet accepted; with "pendout", a process outside the tree
 * (double fork, setsid; until the trigger) waits in file's accept queue; with "connected", a
 * connection to file is accepted and held open (a connection through a named socket); with
 * "dgconnect", loose connects to dgram, which is not connected back, and after the trigger reads
 * dgram's name as its peer's and sends it a datagram without naming it. "pendsent" and "pendout"
 * must be refused by name (the workload runs on to PASS); "pending", "connected" and
 * "dgconnect" come back. */
#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "wl.h"

static socklen_t abstract_addr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t n = strlen(name);
	memcpy(sa->sun_path + 1, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
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

static int opt(int fd, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, name, &v, &len) < 0)
		wl_fail("getsockopt(%d): %s", name, strerror(errno));
	return v;
}

static void set_opt(int fd, int name, int v)
{
	if (setsockopt(fd, SOL_SOCKET, name, &v, sizeof(v)) < 0)
		wl_fail("setsockopt(%d): %s", name, strerror(errno));
}

static int make(int type, const struct sockaddr_un *sa, socklen_t len, int backlog)
{
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0)
		wl_fail("socket: %s", strerror(errno));
	if (sa && bind(fd, (const struct sockaddr *)sa, len) < 0)
		wl_fail("bind: %s", strerror(errno));
	if (backlog >= 0 && listen(fd, backlog) < 0)
		wl_fail("listen: %s", strerror(errno));
	return fd;
}

/* What getsockopt and fcntl read of a socket: compared across the trigger. */
struct shape {
	int type, listening, passcred, rcvbuf, sndbuf, fl, fdfl;
	struct sockaddr_un sa;
	socklen_t len;
};

static void shape_of(int fd, struct shape *s)
{
	memset(s, 0, sizeof(*s));
	s->type = opt(fd, SO_TYPE);
	s->listening = opt(fd, SO_ACCEPTCONN);
	s->passcred = opt(fd, SO_PASSCRED);
	s->rcvbuf = opt(fd, SO_RCVBUF);
	s->sndbuf = opt(fd, SO_SNDBUF);
	s->fl = fcntl(fd, F_GETFL) & O_NONBLOCK;
	s->fdfl = fcntl(fd, F_GETFD);
	s->len = sizeof(s->sa);
	if (getsockname(fd, (struct sockaddr *)&s->sa, &s->len) < 0)
		wl_fail("getsockname: %s", strerror(errno));
}

static void same_shape(int fd, const struct shape *want, const char *what)
{
	struct shape got;

	shape_of(fd, &got);
	if (got.type != want->type || got.listening != want->listening ||
	    got.passcred != want->passcred || got.rcvbuf != want->rcvbuf ||
	    got.sndbuf != want->sndbuf || got.fl != want->fl || got.fdfl != want->fdfl)
		wl_fail("%s: type %d listening %d passcred %d rcvbuf %d sndbuf %d nonblock %#o "
		        "fd flags %d, want %d %d %d %d %d %#o %d",
		        what, got.type, got.listening, got.passcred, got.rcvbuf, got.sndbuf, got.fl,
		        got.fdfl, want->type, want->listening, want->passcred, want->rcvbuf,
		        want->sndbuf, want->fl, want->fdfl);
	if (got.len != want->len || memcmp(&got.sa, &want->sa, got.len))
		wl_fail("%s: its name changed (length %u, want %u)", what, got.len, want->len);
}

/* backlog + 1 connections are queued, the next one is refused. */
static void check_backlog(const struct sockaddr_un *sa, socklen_t len, int backlog, int srv)
{
	int c[16], i;

	for (i = 0; i <= backlog + 1; i++) {
		c[i] = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
		int r = connect(c[i], (const struct sockaddr *)sa, len);
		if (i <= backlog && r < 0)
			wl_fail("cuda: connection %d of backlog %d: %s", i + 1, backlog,
			        strerror(errno));
		if (i == backlog + 1 && (r == 0 || errno != EAGAIN))
			wl_fail("cuda: connection %d over backlog %d: %s", i + 1, backlog,
			        r == 0 ? "accepted" : strerror(errno));
	}
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	if (getsockopt(c[0], SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0)
		wl_fail("SO_PEERCRED: %s", strerror(errno));
	if (cr.pid != getpid() || cr.uid != geteuid())
		wl_fail("cuda: a client sees pid %d uid %u as the server, want %d %u", cr.pid,
		        cr.uid, getpid(), geteuid());
	if (send(c[0], "uvm", 3, 0) != 3)
		wl_fail("cuda: send: %s", strerror(errno));
	int a = accept4(srv, NULL, NULL, 0);
	char buf[8];
	if (a < 0 || recv(a, buf, sizeof(buf), 0) != 3 || memcmp(buf, "uvm", 3))
		wl_fail("cuda: accept and read: %s", strerror(errno));
	close(a);
	for (i = 0; i <= backlog + 1; i++)
		close(c[i]);
}

static void check_file(int srv, const char *path)
{
	struct sockaddr_un sa;
	socklen_t len = path_addr(&sa, path);
	struct stat st;
	int c = socket(AF_UNIX, SOCK_STREAM, 0), a;
	char buf[8];

	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || (st.st_mode & 07777) != 0600)
		wl_fail("file: %s is not a socket file of mode 0600 (%o)", path, st.st_mode);
	if (connect(c, (struct sockaddr *)&sa, len) < 0)
		wl_fail("file: connect %s: %s", path, strerror(errno));
	a = accept(srv, NULL, NULL);
	if (a < 0 || write(c, "hi", 2) != 2 || read(a, buf, sizeof(buf)) != 2)
		wl_fail("file: accept and read: %s", strerror(errno));
	close(a);
	close(c);
}

/* A client outside the tree (its parent exits, it starts a session) that
 * connects to sa and waits, connected, for the trigger. */
static void connect_outside(const struct sockaddr_un *sa, socklen_t len)
{
	int done[2];
	char c;

	if (pipe(done) < 0)
		wl_fail("pipe: %s", strerror(errno));
	pid_t k = fork();
	if (k < 0)
		wl_fail("fork: %s", strerror(errno));
	if (k == 0) {
		if (fork() == 0 && setsid() >= 0) {
			int fd = socket(AF_UNIX, SOCK_STREAM, 0);
			close(done[0]);
			if (fd < 0 || connect(fd, (const struct sockaddr *)sa, len) < 0 ||
			    write(done[1], "c", 1) != 1)
				_exit(1);
			close(done[1]);
			for (unsigned long i = 0; i < wl_max_polls() && !wl_triggered(); i++)
				wl_nap_ms(WL_POLL_MS);
			_exit(0);
		}
		_exit(0);
	}
	close(done[1]);
	waitpid(k, NULL, 0);
	if (read(done[0], &c, 1) != 1)
		wl_fail("pendout: the outside client did not connect");
	close(done[0]);
}

/* The clients that waited in srv's accept queue come in the same order,
 * connected to srv's name, each side reading this process as its peer. */
static void check_pending(int srv, const int *cl, int n, const struct sockaddr_un *sa,
                          socklen_t len)
{
	for (int i = 0; i < n; i++) {
		struct sockaddr_un pa;
		socklen_t pl = sizeof(pa);
		struct ucred cr;
		socklen_t crl = sizeof(cr);
		char b = (char)('a' + i), got = 0;
		int a = accept(srv, NULL, NULL);
		if (a < 0)
			wl_fail("pending: accept %d: %s", i, strerror(errno));
		if (getpeername(cl[i], (struct sockaddr *)&pa, &pl) < 0 || pl != len ||
		    memcmp(&pa, sa, len))
			wl_fail("pending: client %d is not connected to file's name", i);
		if (getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 || cr.pid != getpid() ||
		    cr.uid != getuid())
			wl_fail("pending: accepted end %d: SO_PEERCRED pid %d uid %u", i, cr.pid,
			        cr.uid);
		if (getsockopt(cl[i], SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 || cr.pid != getpid())
			wl_fail("pending: client %d: SO_PEERCRED pid %d", i, cr.pid);
		if (write(a, &b, 1) != 1 || recv(cl[i], &got, 1, MSG_DONTWAIT) != 1 || got != b)
			wl_fail("pending: accept %d did not take client %d (got %c: %s)", i, i,
			        got ? got : '-', strerror(errno));
		if (write(cl[i], "z", 1) != 1 || read(a, &got, 1) != 1 || got != 'z')
			wl_fail("pending: client %d to its accepted end: %s", i, strerror(errno));
		close(a);
	}
}

static void check_dgram(int d, const struct sockaddr_un *sa, socklen_t len)
{
	int c = socket(AF_UNIX, SOCK_DGRAM, 0);
	char buf[8];

	if (sendto(c, "dg", 2, 0, (const struct sockaddr *)sa, len) != 2)
		wl_fail("dgram: sendto: %s", strerror(errno));
	if (recv(d, buf, sizeof(buf), MSG_DONTWAIT) != 2 || memcmp(buf, "dg", 2))
		wl_fail("dgram: recv: %s", strerror(errno));
	close(c);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	char name[64], dname[64];
	struct sockaddr_un csa, fsa, dsa;
	socklen_t clen, flen, dlen;
	struct shape cs, fs, ds, ls, rs;
	char *path;
	int cuda, file, dgram, loose, raw, pending[2] = {-1, -1}, pair[2] = {-1, -1};

	wl_init("wl-unix-listen");
	path = wl_side_path(".sock");
	snprintf(name, sizeof(name), "cuda-uvmfd-4026531836-%d", getpid());
	snprintf(dname, sizeof(dname), "wl-unix-dgram-%d", getpid());
	/* CUDA's name ends with a NUL, part of the name */
	clen = abstract_addr(&csa, name) + 1;
	flen = path_addr(&fsa, path);
	dlen = abstract_addr(&dsa, dname);

	cuda = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
	if (cuda < 0)
		wl_fail("socket: %s", strerror(errno));
	set_opt(cuda, SO_PASSCRED, 1);
	set_opt(cuda, SO_RCVBUF, 65536);
	if (bind(cuda, (struct sockaddr *)&csa, clen) < 0 || listen(cuda, 7) < 0)
		wl_fail("cuda: bind and listen: %s", strerror(errno));
	file = make(SOCK_STREAM | SOCK_CLOEXEC, &fsa, flen, 3);
	if (chmod(path, 0600) < 0)
		wl_fail("chmod %s: %s", path, strerror(errno));
	dgram = make(SOCK_DGRAM, &dsa, dlen, -1);
	set_opt(dgram, SO_SNDBUF, 50000);
	loose = make(SOCK_DGRAM, NULL, 0, -1);
	raw = make(SOCK_STREAM | SOCK_NONBLOCK, NULL, 0, -1);
	if (!strcmp(mode, "pending") || !strcmp(mode, "pendsent")) {
		pending[0] = socket(AF_UNIX, SOCK_STREAM, 0);
		pending[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		for (int i = 0; i < 2; i++)
			if (connect(pending[i], (struct sockaddr *)&fsa, flen) < 0)
				wl_fail("pending: connect: %s", strerror(errno));
		if (!strcmp(mode, "pendsent") && write(pending[0], "s", 1) != 1)
			wl_fail("pendsent: write: %s", strerror(errno));
	} else if (!strcmp(mode, "pendout")) {
		connect_outside(&fsa, flen);
	} else if (!strcmp(mode, "dgconnect")) {
		if (connect(loose, (struct sockaddr *)&dsa, dlen) < 0)
			wl_fail("dgconnect: %s", strerror(errno));
	} else if (!strcmp(mode, "connected")) {
		pair[0] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(pair[0], (struct sockaddr *)&fsa, flen) < 0 ||
		    (pair[1] = accept(file, NULL, NULL)) < 0)
			wl_fail("connected: %s", strerror(errno));
	}
	shape_of(cuda, &cs);
	shape_of(file, &fs);
	shape_of(dgram, &ds);
	shape_of(loose, &ls);
	shape_of(raw, &rs);
	if (!cs.passcred || cs.rcvbuf != 131072 || !cs.fl || !cs.listening || fs.fdfl != FD_CLOEXEC)
		wl_fail("the sockets are not set up as meant");
	/* a child shares every socket, as a preforked server's workers do */
	pid_t kid = fork();
	if (kid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (kid == 0) {
		wl_child_await_trigger();
		struct sockaddr_un sa;
		socklen_t len = sizeof(sa);
		if (!opt(cuda, SO_ACCEPTCONN) || !opt(file, SO_ACCEPTCONN) ||
		    getsockname(cuda, (struct sockaddr *)&sa, &len) < 0 || len != clen ||
		    memcmp(&sa, &csa, len))
			wl_child_fail("the child's sockets are not the listeners they were");
		_exit(0);
	}
	wl_ready();
	wl_await_trigger();

	same_shape(cuda, &cs, "cuda");
	same_shape(file, &fs, "file");
	same_shape(dgram, &ds, "dgram");
	same_shape(loose, &ls, "loose");
	same_shape(raw, &rs, "raw");
	check_backlog(&csa, clen, 7, cuda);
	if (!strcmp(mode, "pending")) {
		check_pending(file, pending, 2, &fsa, flen);
	} else if (!strcmp(mode, "pendsent") || !strcmp(mode, "pendout")) {
		/* the refused dump left them waiting: take them */
		for (int i = 0; i < 2; i++) {
			int a = accept(file, NULL, NULL);
			if (a < 0)
				wl_fail("%s: accept: %s", mode, strerror(errno));
			close(a);
			if (!strcmp(mode, "pendout"))
				break;
		}
	}
	check_file(file, path);
	check_dgram(dgram, &dsa, dlen);
	if (!strcmp(mode, "dgconnect")) {
		struct sockaddr_un pa;
		socklen_t pl = sizeof(pa);
		char buf[8];
		if (getpeername(loose, (struct sockaddr *)&pa, &pl) < 0 || pl != dlen ||
		    memcmp(&pa, &dsa, dlen))
			wl_fail("dgconnect: loose is not connected to dgram's name");
		if (send(loose, "dc", 2, 0) != 2 ||
		    recv(dgram, buf, sizeof(buf), MSG_DONTWAIT) != 2 || memcmp(buf, "dc", 2))
			wl_fail("dgconnect: a datagram through the connection: %s",
			        strerror(errno));
	}
	/* unbound ones take a name still */
	snprintf(dname, sizeof(dname), "wl-unix-loose-%d", getpid());
	dlen = abstract_addr(&dsa, dname);
	if (bind(loose, (struct sockaddr *)&dsa, dlen) < 0)
		wl_fail("loose: bind: %s", strerror(errno));
	if (connect(raw, (struct sockaddr *)&fsa, flen) < 0 && errno != EAGAIN)
		wl_fail("raw: connect: %s", strerror(errno));
	if (pair[0] >= 0 && (write(pair[0], "x", 1) != 1 || read(pair[1], name, 1) != 1))
		wl_fail("connection: %s", strerror(errno));
	wl_expect_exit(kid, 0);
	unlink(path);
	wl_pass();
}
