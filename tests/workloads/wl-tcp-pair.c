/* wl-tcp-pair [outside|held]: established TCP connections whose both ends this process holds, with
 * data unread both ways, before READY. For each of IPv4 (127.0.0.1), IPv6 ([::1]) and dual-stack
 * (an IPv4 client of a listener on [::], accepted as a v4-mapped IPv6 socket): a listener (kept
 * open: the accepted end has its port), a client c connected to it and the accepted end a; c sends
 * 200000 pattern bytes to a (more than a's receive window: some wait unacked or unsent in c's send
 * queue), a sends 3000 bytes back, none read; c has TCP_NODELAY, SO_KEEPALIVE with TCP_KEEPIDLE 77,
 * TCP_KEEPINTVL 9, TCP_KEEPCNT 4, SO_SNDTIMEO 2 s; a is O_NONBLOCK with SO_RCVBUF 50000; c has
 * SO_SNDBUF 200000. A fourth connection over 127.0.0.1, "shut": its accepted end is shut down for
 * reading, its client has TCP_CORK, its listener SO_REUSEADDR. After the trigger every byte arrives
 * in order on each end, the addresses, flags and options are as before, twenty more messages go
 * each way, and the listener takes a new client; the shut end reads the end of the stream, the
 * corked client still corks and receives. With "outside", a process outside the tree (double fork)
 * connects to a listener on [::1] and sends "hello"; after the trigger the accepted end reads it
 * and answers "world", and the peer answers that with "bye": the dump must refuse the connection
 * without --tcp-established, and with it, the peer must see neither an end nor a reset across the
 * dump and the restore. With "held", also a second process outside the tree holds the accepted end
 * of that connection, and only it (until the trigger): the dump must refuse it, naming that
 * process. */
#include <sys/wait.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>

#include "wl-sk.h"
#include "wl.h"

#define TO_A  200000
#define TO_C  3000
#define PAIRS 3

struct pair {
	const char *name;
	int l, c, a;
	struct sockaddr_storage cl, cp, al, ap; /* c's and a's own and peer addresses */
	int rcvbuf;
};

static uint8_t pattern(size_t i, int salt)
{
	return (uint8_t)((i * 131u + (size_t)salt * 7u) ^ (i >> 9));
}

static void set(int fd, int level, int opt, int v, const char *what)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)) < 0)
		wl_fail("%s: setsockopt %d/%d: %s", what, level, opt, strerror(errno));
}

static int get(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	getsockopt(fd, level, opt, &v, &len);
	return v;
}

static void listener(struct pair *p, int family, const char *addr, int v6only)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;

	p->l = socket(family, SOCK_STREAM, 0);
	if (p->l < 0)
		wl_fail("%s: socket: %s", p->name, strerror(errno));
	if (family == AF_INET6)
		set(p->l, IPPROTO_IPV6, IPV6_V6ONLY, v6only, p->name);
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (void *)&ss;
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (void *)&ss;
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	}
	if (bind(p->l, (struct sockaddr *)&ss, len) < 0 || listen(p->l, 4) < 0)
		wl_fail("%s: bind/listen: %s", p->name, strerror(errno));
}

/* A client of family to the listener's port on addr. */
static int client(const struct pair *p, int family, const char *addr)
{
	struct sockaddr_storage ls = {0}, ss = {0};
	socklen_t len = sizeof(ls);
	int fd = socket(family, SOCK_STREAM, 0);

	getsockname(p->l, (struct sockaddr *)&ls, &len);
	in_port_t port;
	/* sin_port and sin6_port are at one offset; read as bytes, not
	 * through a cast of the storage */
	memcpy(&port, (const char *)&ls + offsetof(struct sockaddr_in, sin_port), sizeof(port));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (void *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = port;
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (void *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = port;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	}
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
		wl_fail("%s: connect: %s", p->name, strerror(errno));
	return fd;
}

static void names(int fd, struct sockaddr_storage *own, struct sockaddr_storage *peer)
{
	socklen_t len = sizeof(*own);

	memset(own, 0, sizeof(*own));
	memset(peer, 0, sizeof(*peer));
	getsockname(fd, (struct sockaddr *)own, &len);
	len = sizeof(*peer);
	getpeername(fd, (struct sockaddr *)peer, &len);
}

/* Sends len pattern bytes without blocking on a full window: what does not fit stays in
 * the send queue. */
static void send_pattern(int fd, size_t len, int salt, const char *what)
{
	static uint8_t buf[TO_A];

	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(i, salt);
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			wl_fail("%s: send: %s", what, strerror(errno));
		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno == EAGAIN)
			wl_fail("%s: send queue full after %zu of %zu bytes", what, off, len);
	}
}

/* Exactly len bytes, waiting up to 10 s for each piece. */
static void recv_exact(int fd, uint8_t *buf, size_t len, const char *what)
{
	size_t off = 0;

	while (off < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0)
			wl_fail("%s: nothing more after %zu of %zu bytes", what, off, len);
		ssize_t n = recv(fd, buf + off, len - off, MSG_DONTWAIT);
		if (n == 0)
			wl_fail("%s: end of stream after %zu of %zu bytes", what, off, len);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			wl_fail("%s: recv after %zu bytes: %s", what, off, strerror(errno));
		if (n > 0)
			off += (size_t)n;
	}
}

static void recv_pattern(int fd, size_t len, int salt, const char *what)
{
	static uint8_t buf[TO_A];

	recv_exact(fd, buf, len, what);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern(i, salt))
			wl_fail("%s: byte %zu is %u, want %u", what, i, buf[i], pattern(i, salt));
}

static void make(struct pair *p)
{
	if ((p->a = accept(p->l, NULL, NULL)) < 0)
		wl_fail("%s: accept: %s", p->name, strerror(errno));
	struct timeval tv = {.tv_sec = 2};
	set(p->c, IPPROTO_TCP, TCP_NODELAY, 1, p->name);
	set(p->c, SOL_SOCKET, SO_KEEPALIVE, 1, p->name);
	set(p->c, IPPROTO_TCP, TCP_KEEPIDLE, 77, p->name);
	set(p->c, IPPROTO_TCP, TCP_KEEPINTVL, 9, p->name);
	set(p->c, IPPROTO_TCP, TCP_KEEPCNT, 4, p->name);
	if (setsockopt(p->c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		wl_fail("%s: SO_SNDTIMEO: %s", p->name, strerror(errno));
	set(p->a, SOL_SOCKET, SO_RCVBUF, 50000, p->name);
	set(p->c, SOL_SOCKET, SO_SNDBUF, 200000, p->name);
	p->rcvbuf = get(p->a, SOL_SOCKET, SO_RCVBUF);
	if (fcntl(p->a, F_SETFL, O_NONBLOCK) < 0)
		wl_fail("%s: O_NONBLOCK: %s", p->name, strerror(errno));
	send_pattern(p->c, TO_A, 1, p->name);
	send_pattern(p->a, TO_C, 2, p->name);
	names(p->c, &p->cl, &p->cp);
	names(p->a, &p->al, &p->ap);
}

static void same_names(int fd, const struct sockaddr_storage *own,
                       const struct sockaddr_storage *peer, const char *what)
{
	struct sockaddr_storage o, q;

	names(fd, &o, &q);
	if (memcmp(&o, own, sizeof(o)) || memcmp(&q, peer, sizeof(q)))
		wl_fail("%s: its address or its peer's changed", what);
}

static void check_opts(const struct pair *p)
{
	struct timeval tv = {0};
	socklen_t len = sizeof(tv);

	if (get(p->c, IPPROTO_TCP, TCP_NODELAY) != 1 || get(p->c, SOL_SOCKET, SO_KEEPALIVE) != 1 ||
	    get(p->c, IPPROTO_TCP, TCP_KEEPIDLE) != 77 ||
	    get(p->c, IPPROTO_TCP, TCP_KEEPINTVL) != 9 || get(p->c, IPPROTO_TCP, TCP_KEEPCNT) != 4)
		wl_fail("%s: the client's options: nodelay %d keepalive %d idle %d intvl %d cnt %d",
		        p->name, get(p->c, IPPROTO_TCP, TCP_NODELAY),
		        get(p->c, SOL_SOCKET, SO_KEEPALIVE), get(p->c, IPPROTO_TCP, TCP_KEEPIDLE),
		        get(p->c, IPPROTO_TCP, TCP_KEEPINTVL), get(p->c, IPPROTO_TCP, TCP_KEEPCNT));
	getsockopt(p->c, SOL_SOCKET, SO_SNDTIMEO, &tv, &len);
	if (tv.tv_sec != 2 || tv.tv_usec)
		wl_fail("%s: SO_SNDTIMEO %ld.%06ld", p->name, (long)tv.tv_sec, (long)tv.tv_usec);
	if (!(fcntl(p->a, F_GETFL) & O_NONBLOCK) || (fcntl(p->c, F_GETFL) & O_NONBLOCK))
		wl_fail("%s: O_NONBLOCK flags", p->name);
	if (get(p->a, SOL_SOCKET, SO_RCVBUF) != p->rcvbuf)
		wl_fail("%s: SO_RCVBUF %d, want %d", p->name, get(p->a, SOL_SOCKET, SO_RCVBUF),
		        p->rcvbuf);
}

static void verify(struct pair *p)
{
	char what[64];
	uint8_t buf[16];

	same_names(p->c, &p->cl, &p->cp, p->name);
	same_names(p->a, &p->al, &p->ap, p->name);
	check_opts(p);
	snprintf(what, sizeof(what), "%s: client to accepted", p->name);
	recv_pattern(p->a, TO_A, 1, what);
	snprintf(what, sizeof(what), "%s: accepted to client", p->name);
	recv_pattern(p->c, TO_C, 2, what);
	for (int i = 0; i < 20; i++) {
		char m[16];
		snprintf(m, sizeof(m), "ping %04d", i);
		if (send(p->c, m, 9, 0) != 9)
			wl_fail("%s: send ping: %s", p->name, strerror(errno));
		recv_exact(p->a, buf, 9, p->name);
		if (memcmp(buf, m, 9))
			wl_fail("%s: ping %d came as %.9s", p->name, i, buf);
		m[1] = 'o';
		if (send(p->a, m, 9, 0) != 9)
			wl_fail("%s: send pong: %s", p->name, strerror(errno));
		recv_exact(p->c, buf, 9, p->name);
		if (memcmp(buf, m, 9))
			wl_fail("%s: pong %d came as %.9s", p->name, i, buf);
	}
}

/* A connection whose accepted end was shut down for reading, its client corked. */
static void make_shut(struct pair *p)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};

	/* SO_REUSEADDR: with --leave-running the killed original's end closes
	 * cleanly (nothing unread) and leaves TIME_WAIT on the port */
	p->l = socket(AF_INET, SOCK_STREAM, 0);
	set(p->l, SOL_SOCKET, SO_REUSEADDR, 1, "shut");
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (bind(p->l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(p->l, 4) < 0)
		wl_fail("shut: bind/listen: %s", strerror(errno));
	p->c = client(p, AF_INET, "127.0.0.1");
	if ((p->a = accept(p->l, NULL, NULL)) < 0 || shutdown(p->a, SHUT_RD) < 0)
		wl_fail("shut: accept/shutdown: %s", strerror(errno));
	set(p->c, IPPROTO_TCP, TCP_CORK, 1, "shut");
}

static void verify_shut(const struct pair *p)
{
	struct pollfd q = {.fd = p->a, .events = POLLIN | POLLRDHUP};
	uint8_t b;

	if (poll(&q, 1, 0) != 1 || !(q.revents & POLLRDHUP))
		wl_fail("shut: the accepted end is not shut down for reading (revents %#x)",
		        q.revents);
	if (recv(p->a, &b, 1, MSG_DONTWAIT) != 0)
		wl_fail("shut: recv did not read the end of the stream: %s", strerror(errno));
	if (get(p->c, IPPROTO_TCP, TCP_CORK) != 1)
		wl_fail("shut: TCP_CORK is %d", get(p->c, IPPROTO_TCP, TCP_CORK));
	if (send(p->a, "x", 1, 0) != 1)
		wl_fail("shut: send: %s", strerror(errno));
	recv_exact(p->c, &b, 1, "shut");
}

/* The outside peer: "hello", then "bye" once "world" came (up to 300 s). */
static void peer(const struct pair *p)
{
	uint8_t buf[5];
	size_t off = 0;
	int c = client(p, AF_INET6, "::1");

	/* the listener is the tree's alone */
	close(p->l);

	if (send(c, "hello", 5, 0) != 5)
		_exit(1);
	while (off < 5) {
		struct pollfd q = {.fd = c, .events = POLLIN};
		if (poll(&q, 1, 300000) <= 0)
			break;
		ssize_t n = recv(c, buf + off, 5 - off, 0);
		if (n <= 0) {
			fprintf(stderr, "wl-tcp-pair: outside peer: %s\n",
			        n ? strerror(errno) : "end");
			_exit(1);
		}
		off += (size_t)n;
	}
	if (off == 5 && !memcmp(buf, "world", 5) && send(c, "bye", 3, 0) == 3)
		_exit(0);
	fprintf(stderr, "wl-tcp-pair: outside peer: no \"world\"\n");
	_exit(1);
}

static void make_outside(struct pair *p)
{
	listener(p, AF_INET6, "::1", 1);
	pid_t k = fork();
	if (k < 0)
		wl_fail("fork: %s", strerror(errno));
	if (k == 0) {
		/* a session of its own: the tree's session id must be free for its
		 * restore */
		if (fork() == 0 && setsid() >= 0)
			peer(p);
		_exit(0);
	}
	waitpid(k, NULL, 0);
	if ((p->a = accept(p->l, NULL, NULL)) < 0)
		wl_fail("outside: accept: %s", strerror(errno));
}

static void verify_outside(const struct pair *p)
{
	uint8_t buf[5];

	recv_exact(p->a, buf, 5, "outside");
	if (memcmp(buf, "hello", 5))
		wl_fail("outside: the peer's first message came as %.5s", buf);
	if (send(p->a, "world", 5, 0) != 5)
		wl_fail("outside: send: %s", strerror(errno));
	recv_exact(p->a, buf, 3, "outside");
	if (memcmp(buf, "bye", 3))
		wl_fail("outside: the peer's answer came as %.3s", buf);
}

int main(int argc, char **argv)
{
	struct pair p[PAIRS] = {{.name = "tcp4"}, {.name = "tcp6"}, {.name = "dual"}};
	struct pair shut = {.name = "shut"}, out = {.name = "outside"};
	bool held = argc > 1 && !strcmp(argv[1], "held");
	bool outside = held || (argc > 1 && !strcmp(argv[1], "outside"));

	wl_init("wl-tcp-pair");
	if (outside)
		make_outside(&out);
	if (held)
		wl_hold_outside(out.a);
	listener(&p[0], AF_INET, "127.0.0.1", 0);
	p[0].c = client(&p[0], AF_INET, "127.0.0.1");
	listener(&p[1], AF_INET6, "::1", 1);
	p[1].c = client(&p[1], AF_INET6, "::1");
	listener(&p[2], AF_INET6, "::", 0);
	p[2].c = client(&p[2], AF_INET, "127.0.0.1");
	for (int i = 0; i < PAIRS; i++)
		make(&p[i]);
	make_shut(&shut);
	wl_nap_ms(100); /* what fits in the windows has gone across */
	wl_ready();
	wl_await_trigger();
	for (int i = 0; i < PAIRS; i++)
		verify(&p[i]);
	verify_shut(&shut);
	if (outside)
		verify_outside(&out);
	for (int i = 0; i < PAIRS; i++) {
		int c = client(&p[i], i == 1 ? AF_INET6 : AF_INET, i == 1 ? "::1" : "127.0.0.1");
		int a = accept(p[i].l, NULL, NULL);
		if (a < 0 || send(c, "x", 1, 0) != 1)
			wl_fail("%s: a new client: %s", p[i].name, strerror(errno));
		uint8_t x;
		recv_exact(a, &x, 1, p[i].name);
		close(a);
		close(c);
	}
	wl_pass();
}
