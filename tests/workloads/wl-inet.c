/* wl-inet [pending|established|udpqueue|udperror|packet|nlqueue|netns|held]: TCP, UDP and netlink
 * sockets with nothing in flight, before READY: tcp4   TCP listening on 127.0.0.1 (a port the
 * kernel picks), backlog 5, O_NONBLOCK, SO_REUSEADDR, SO_KEEPALIVE, TCP_NODELAY, SO_RCVTIMEO 2.5 s,
 * SO_SNDTIMEO 1 s, SO_LINGER 3 s, TCP_DEFER_ACCEPT, SO_RCVBUF 65536 tcp6   TCP listening on [::1],
 * IPV6_V6ONLY, SO_REUSEPORT, backlog 3, cloexec dual   TCP listening on [::], IPV6_V6ONLY off
 * (takes IPv4 clients too), backlog 4 bound  TCP bound to 127.0.0.1, not listening; loose: TCP
 * unbound, SO_SNDBUF 50000 udp4   UDP bound to 127.0.0.1, SO_BROADCAST; udpc: UDP connected to udp4
 *   udp6   UDP bound to [::1], unconnected
 *   nl     NETLINK_ROUTE bound with the group RTMGRP_LINK; nlu: NETLINK_KOBJECT_UEVENT unbound
 * A child holds every socket too (one open file with ours, as preforked workers do).
 * After the trigger each has its address, peer, listening state, backlog, flags and options;
 * the child accepts a client on tcp4 (the one listener both hold) and answers it; tcp6 and
 * dual take clients (dual an IPv4 one), a datagram goes from udpc to udp4 and from udp6 to
 * itself, nl answers an RTM_GETLINK dump and is still in its group.
 * With "pending" a client waits in tcp4's accept queue, with "established" a connection to it
 * is accepted and held, with "udpqueue" a datagram waits unread in udp4, with "udperror" a UDP
 * socket connected to a closed port holds the error its datagram brought back (ECONNREFUSED,
 * still there for the program to read after the refused dump), with "packet" an
 * AF_PACKET socket is open, with "nlqueue" an answer waits unread in nl, with "netns" a UDP
 * socket made in a network namespace of its own (then left) is held, with "held" a process
 * outside the tree (double fork, setsid) holds tcp4 too until the trigger (a restore would bind
 * a second listener to the port it keeps): the dump must refuse each, naming the socket (and
 * for "held" the process), and the workload runs on to PASS. */
#include <sys/wait.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>

#include "wl-sk.h"
#include "wl.h"

static int iopt(int fd, int level, int name)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, name, &v, &len) < 0)
		wl_fail("getsockopt(%d, %d): %s", level, name, strerror(errno));
	return v;
}

static void set_iopt(int fd, int level, int name, int v)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)) < 0)
		wl_fail("setsockopt(%d, %d, %d): %s", level, name, v, strerror(errno));
}

static void set_timeo(int fd, int name, long sec, long usec)
{
	struct timeval tv = {.tv_sec = sec, .tv_usec = usec};

	if (setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv)) < 0)
		wl_fail("setsockopt(timeout): %s", strerror(errno));
}

static int make(int family, int type, const char *addr, int backlog)
{
	int fd = socket(family, type, 0);
	struct sockaddr_storage ss;
	socklen_t len;

	if (fd < 0)
		wl_fail("socket: %s", strerror(errno));
	if (!addr)
		return fd;
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof(*s6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		wl_fail("bind %s: %s", addr, strerror(errno));
	if (backlog >= 0 && listen(fd, backlog) < 0)
		wl_fail("listen: %s", strerror(errno));
	return fd;
}

/* What getsockopt, getsockname and fcntl read of a socket: compared across the trigger. */
struct shape {
	struct sockaddr_storage name, peer;
	socklen_t nlen, plen;
	int v[12];
	struct timeval rto, sto;
	struct linger lg;
	uint32_t backlog;
	int fl, fdfl;
};

static void shape_of(int fd, struct shape *s)
{
	static const int opts[][2] = {
	    {SOL_SOCKET, SO_ACCEPTCONN}, {SOL_SOCKET, SO_REUSEADDR}, {SOL_SOCKET, SO_REUSEPORT},
	    {SOL_SOCKET, SO_KEEPALIVE},  {SOL_SOCKET, SO_BROADCAST}, {SOL_SOCKET, SO_RCVBUF},
	    {SOL_SOCKET, SO_SNDBUF},     {SOL_SOCKET, SO_TYPE},      {SOL_SOCKET, SO_PROTOCOL},
	};
	socklen_t len;
	int family = iopt(fd, SOL_SOCKET, SO_DOMAIN);

	memset(s, 0, sizeof(*s));
	s->nlen = s->plen = sizeof(s->name);
	if (getsockname(fd, (struct sockaddr *)&s->name, &s->nlen) < 0)
		wl_fail("getsockname: %s", strerror(errno));
	if (getpeername(fd, (struct sockaddr *)&s->peer, &s->plen) < 0)
		s->plen = 0;
	for (size_t i = 0; i < WL_ARRAY_SIZE(opts); i++)
		s->v[i] = iopt(fd, opts[i][0], opts[i][1]);
	if (family == AF_NETLINK)
		return;
	len = sizeof(s->rto);
	getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &s->rto, &len);
	len = sizeof(s->sto);
	getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s->sto, &len);
	len = sizeof(s->lg);
	getsockopt(fd, SOL_SOCKET, SO_LINGER, &s->lg, &len);
	if (family == AF_INET6)
		s->v[9] = iopt(fd, IPPROTO_IPV6, IPV6_V6ONLY);
	if (s->v[8] == IPPROTO_TCP) {
		struct tcp_info ti;
		len = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
		s->backlog = ti.tcpi_sacked;
		s->v[10] = iopt(fd, IPPROTO_TCP, TCP_NODELAY);
		s->v[11] = iopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT);
	}
	s->fl = fcntl(fd, F_GETFL);
	s->fdfl = fcntl(fd, F_GETFD);
}

static void same_shape(int fd, const struct shape *want, const char *what)
{
	struct shape now;

	shape_of(fd, &now);
	if (now.nlen != want->nlen || memcmp(&now.name, &want->name, now.nlen))
		wl_fail("%s: its address changed", what);
	if (now.plen != want->plen || memcmp(&now.peer, &want->peer, now.plen))
		wl_fail("%s: its peer changed", what);
	for (size_t i = 0; i < WL_ARRAY_SIZE(now.v); i++)
		if (now.v[i] != want->v[i])
			wl_fail("%s: option %zu is %d, was %d", what, i, now.v[i], want->v[i]);
	if (memcmp(&now.rto, &want->rto, sizeof(now.rto)) ||
	    memcmp(&now.sto, &want->sto, sizeof(now.sto)))
		wl_fail("%s: its timeouts changed", what);
	if (now.lg.l_onoff != want->lg.l_onoff || now.lg.l_linger != want->lg.l_linger)
		wl_fail("%s: SO_LINGER changed", what);
	if (now.backlog != want->backlog)
		wl_fail("%s: backlog %u, was %u", what, now.backlog, want->backlog);
	if (now.fl != want->fl || now.fdfl != want->fdfl)
		wl_fail("%s: flags %#x/%#x, were %#x/%#x", what, now.fl, now.fdfl, want->fl,
		        want->fdfl);
}

/* A client of the listener at sa; the listener's accepted end says hi. */
static int client(const struct shape *l, int family)
{
	struct sockaddr_storage to = l->name;
	int c = socket(family, SOCK_STREAM, 0);

	if (family == AF_INET && l->name.ss_family == AF_INET6) {
		/* a dual-stack listener on [::]: an IPv4 client to 127.0.0.1 */
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to;
		in_port_t port = ((const struct sockaddr_in6 *)&l->name)->sin6_port;
		memset(&to, 0, sizeof(to));
		s4->sin_family = AF_INET;
		s4->sin_port = port;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (c < 0 || connect(c, (struct sockaddr *)&to,
	                     to.ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                             : sizeof(struct sockaddr_in6)) < 0)
		wl_fail("connect: %s", strerror(errno));
	return c;
}

/* Accepts one client of l (blocking up to its SO_RCVTIMEO and our polls) and says hi. */
static int serve_one(int l)
{
	for (unsigned long i = 0; i < wl_max_polls(); i++) {
		int a = accept(l, NULL, NULL);
		if (a >= 0) {
			char x;
			/* what the client wrote is read: unread data would make close a reset */
			(void)!recv(a, &x, 1, 0);
			int r = write(a, "hi", 2) == 2 ? 0 : -1;
			close(a);
			return r;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		wl_nap_ms(WL_POLL_MS);
	}
	return -1;
}

static void expect_hi(int c, const char *what)
{
	char buf[2];

	if (recv(c, buf, 2, MSG_WAITALL) != 2 || memcmp(buf, "hi", 2))
		wl_fail("%s: no answer: %s", what, strerror(errno));
	close(c);
}

static void check_udp(int udp4, int udpc, int udp6)
{
	struct sockaddr_storage self;
	socklen_t len = sizeof(self);
	char buf[8];

	if (send(udpc, "dg", 2, 0) != 2)
		wl_fail("udpc: send: %s", strerror(errno));
	if (recv(udp4, buf, sizeof(buf), 0) != 2 || memcmp(buf, "dg", 2))
		wl_fail("udp4: recv: %s", strerror(errno));
	getsockname(udp6, (struct sockaddr *)&self, &len);
	if (sendto(udp6, "d6", 2, 0, (struct sockaddr *)&self, len) != 2 ||
	    recv(udp6, buf, sizeof(buf), 0) != 2 || memcmp(buf, "d6", 2))
		wl_fail("udp6: a datagram to itself: %s", strerror(errno));
}

static void nl_ask(int nl)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
	} req = {.h = {.nlmsg_len = sizeof(req),
	               .nlmsg_type = RTM_GETLINK,
	               .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
	               .nlmsg_seq = 1},
	         .g = {.rtgen_family = AF_UNSPEC}};

	if (send(nl, &req, sizeof(req), 0) < 0)
		wl_fail("nl: send: %s", strerror(errno));
}

/* Reads the dump's answer to its end (and drops anything else queued). */
static void nl_drain(int nl)
{
	static long buf[8192];

	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		if (n < 0)
			wl_fail("nl: recv: %s", strerror(errno));
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == NLMSG_DONE)
				return;
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	struct shape s[10];
	int fds[10], pending = -1, held[2] = {-1, -1}, packet = -1, uerr = -1;
	const char *names[10] = {"tcp4", "tcp6", "dual", "bound", "loose",
	                         "udp4", "udpc", "udp6", "nl",    "nlu"};

	wl_init("wl-inet");
	int tcp4 = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (tcp4 < 0)
		wl_fail("socket: %s", strerror(errno));
	set_iopt(tcp4, SOL_SOCKET, SO_REUSEADDR, 1);
	set_iopt(tcp4, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_iopt(tcp4, IPPROTO_TCP, TCP_NODELAY, 1);
	set_iopt(tcp4, IPPROTO_TCP, TCP_DEFER_ACCEPT, 5);
	set_iopt(tcp4, SOL_SOCKET, SO_RCVBUF, 65536);
	set_timeo(tcp4, SO_RCVTIMEO, 2, 500000);
	set_timeo(tcp4, SO_SNDTIMEO, 1, 0);
	struct linger lg = {.l_onoff = 1, .l_linger = 3};
	if (setsockopt(tcp4, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		wl_fail("SO_LINGER: %s", strerror(errno));
	struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(tcp4, (struct sockaddr *)&lo, sizeof(lo)) < 0 || listen(tcp4, 5) < 0)
		wl_fail("tcp4: %s", strerror(errno));
	fds[0] = tcp4;
	fds[1] = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[1] < 0)
		wl_fail("socket: %s", strerror(errno));
	set_iopt(fds[1], IPPROTO_IPV6, IPV6_V6ONLY, 1);
	set_iopt(fds[1], SOL_SOCKET, SO_REUSEPORT, 1);
	struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	if (bind(fds[1], (struct sockaddr *)&lo6, sizeof(lo6)) < 0 || listen(fds[1], 3) < 0)
		wl_fail("tcp6: %s", strerror(errno));
	fds[2] = socket(AF_INET6, SOCK_STREAM, 0);
	set_iopt(fds[2], IPPROTO_IPV6, IPV6_V6ONLY, 0);
	struct sockaddr_in6 any6 = {.sin6_family = AF_INET6};
	if (bind(fds[2], (struct sockaddr *)&any6, sizeof(any6)) < 0 || listen(fds[2], 4) < 0)
		wl_fail("dual: %s", strerror(errno));
	fds[3] = make(AF_INET, SOCK_STREAM, "127.0.0.1", -1);
	fds[4] = make(AF_INET, SOCK_STREAM, NULL, -1);
	set_iopt(fds[4], SOL_SOCKET, SO_SNDBUF, 50000);
	fds[5] = make(AF_INET, SOCK_DGRAM, "127.0.0.1", -1);
	set_iopt(fds[5], SOL_SOCKET, SO_BROADCAST, 1);
	fds[6] = make(AF_INET, SOCK_DGRAM, NULL, -1);
	struct sockaddr_in u4;
	socklen_t ul = sizeof(u4);
	if (getsockname(fds[5], (struct sockaddr *)&u4, &ul) < 0 ||
	    connect(fds[6], (struct sockaddr *)&u4, ul) < 0)
		wl_fail("udpc: connect: %s", strerror(errno));
	fds[7] = make(AF_INET6, SOCK_DGRAM, "::1", -1);
	fds[8] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct sockaddr_nl nsa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
	if (fds[8] < 0 || bind(fds[8], (struct sockaddr *)&nsa, sizeof(nsa)) < 0)
		wl_fail("nl: %s", strerror(errno));
	fds[9] = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
	if (fds[9] < 0)
		wl_fail("nlu: %s", strerror(errno));

	if (!strcmp(mode, "pending")) {
		struct shape l;
		shape_of(tcp4, &l);
		pending = client(&l, AF_INET);
		if (write(pending, "x", 1) != 1) /* past TCP_DEFER_ACCEPT */
			wl_fail("pending: write: %s", strerror(errno));
		wl_nap_ms(100);
	} else if (!strcmp(mode, "established")) {
		struct shape l;
		shape_of(fds[1], &l);
		held[0] = client(&l, AF_INET6);
		if ((held[1] = accept(fds[1], NULL, NULL)) < 0)
			wl_fail("established: accept: %s", strerror(errno));
	} else if (!strcmp(mode, "udpqueue")) {
		if (send(fds[6], "q", 1, 0) != 1)
			wl_fail("udpqueue: %s", strerror(errno));
	} else if (!strcmp(mode, "udperror")) {
		/* a port nothing listens on any more answers port unreachable */
		int gone = make(AF_INET, SOCK_DGRAM, "127.0.0.1", -1);
		struct sockaddr_in ga;
		socklen_t gl = sizeof(ga);
		getsockname(gone, (struct sockaddr *)&ga, &gl);
		close(gone);
		uerr = socket(AF_INET, SOCK_DGRAM, 0);
		if (uerr < 0 || connect(uerr, (struct sockaddr *)&ga, gl) < 0 ||
		    send(uerr, "e", 1, 0) != 1)
			wl_fail("udperror: %s", strerror(errno));
		wl_nap_ms(100);
	} else if (!strcmp(mode, "netns")) {
		int ours = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (ours < 0 || unshare(CLONE_NEWNET) < 0)
			wl_fail("netns: %s", strerror(errno));
		packet = socket(AF_INET, SOCK_DGRAM, 0);
		if (packet < 0 || setns(ours, CLONE_NEWNET) < 0)
			wl_fail("netns: %s", strerror(errno));
		close(ours);
	} else if (!strcmp(mode, "packet")) {
		if ((packet = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))) < 0)
			wl_fail("packet: %s", strerror(errno));
	} else if (!strcmp(mode, "nlqueue")) {
		nl_ask(fds[8]);
		wl_nap_ms(50);
	}
	for (int i = 0; i < 10; i++)
		shape_of(fds[i], &s[i]);
	if (!s[0].v[0] || s[0].backlog != 5 || s[1].v[9] != 1 || s[2].v[9] != 0 || !s[6].plen ||
	    !(s[0].fl & O_NONBLOCK) || s[1].fdfl != FD_CLOEXEC)
		wl_fail("the sockets are not set up as meant");

	if (!strcmp(mode, "held"))
		wl_hold_outside(tcp4);
	/* a child shares every socket, as preforked workers do, and serves tcp4 */
	int go[2];
	if (pipe(go) < 0)
		wl_fail("pipe: %s", strerror(errno));
	pid_t kid = fork();
	if (kid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (kid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			wl_child_fail("no go from the parent");
		if (!iopt(tcp4, SOL_SOCKET, SO_ACCEPTCONN) || serve_one(tcp4) < 0)
			wl_child_fail("the child could not serve tcp4: %s", strerror(errno));
		_exit(0);
	}
	wl_children[wl_nr_children++] = kid;
	close(go[0]);
	wl_ready();
	wl_await_trigger();

	if (pending >= 0) { /* the refused dump left it waiting: take it */
		int a = accept(tcp4, NULL, NULL);
		if (a < 0)
			wl_fail("pending: accept: %s", strerror(errno));
		close(a);
		close(pending);
	}
	if (held[0] >= 0) {
		close(held[0]);
		close(held[1]);
	}
	if (!strcmp(mode, "udpqueue")) {
		char b;
		if (recv(fds[5], &b, 1, 0) != 1)
			wl_fail("udpqueue: recv: %s", strerror(errno));
	}
	if (uerr >= 0) {
		char b;
		if (recv(uerr, &b, 1, MSG_DONTWAIT) >= 0 || errno != ECONNREFUSED)
			wl_fail("udperror: the pending error is gone: %s", strerror(errno));
		close(uerr);
	}
	if (packet >= 0)
		close(packet);
	if (!strcmp(mode, "nlqueue"))
		nl_drain(fds[8]);
	for (int i = 0; i < 10; i++)
		same_shape(fds[i], &s[i], names[i]);

	if (write(go[1], "g", 1) != 1)
		wl_fail("go: %s", strerror(errno));
	/* TCP_DEFER_ACCEPT: the listener sees the client only once it writes */
	int c4 = client(&s[0], AF_INET);
	if (write(c4, "x", 1) != 1)
		wl_fail("tcp4: write: %s", strerror(errno));
	expect_hi(c4, "tcp4 (the child)");
	wl_expect_exit(kid, 0);
	int c6 = client(&s[1], AF_INET6);
	if (write(c6, "x", 1) != 1)
		wl_fail("tcp6: write: %s", strerror(errno));
	if (serve_one(fds[1]) < 0)
		wl_fail("tcp6: accept: %s", strerror(errno));
	expect_hi(c6, "tcp6");
	int cd = client(&s[2], AF_INET);
	if (write(cd, "x", 1) != 1)
		wl_fail("dual: write: %s", strerror(errno));
	if (serve_one(fds[2]) < 0)
		wl_fail("dual: accept an IPv4 client: %s", strerror(errno));
	expect_hi(cd, "dual");
	check_udp(fds[5], fds[6], fds[7]);
	nl_ask(fds[8]);
	nl_drain(fds[8]);
	wl_pass();
}
