/* TCP and UDP sockets over IPv4 and IPv6 (CD_FD_INET): unbound, bound, TCP
 * listening, UDP connected; and the refusal, by family, of every socket that
 * is neither unix, netlink nor inet (packet, raw, ...).
 *
 * The dump reads the socket through a copy of the task's fd (pidfd_getfd):
 * its address (getsockname), its TCP state, backlog and accept queue
 * (TCP_INFO), a UDP socket's peer (getpeername) and whether a datagram waits
 * (a peek), and its options. What a restore could not bring back the same is
 * refused by name: an established TCP connection, connections waiting to be
 * accepted, unread datagrams, options it does not set that differ from a
 * fresh socket's.
 *
 * The restore makes the socket in the controller with its options and status
 * flags (the tasks inherit it: a listener shared by preforked workers stays
 * one socket); the task that holds its first fd in the image binds, listens
 * and connects as itself, after its credentials, so that a port the task may
 * not bind is not bound for it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

int cd_sk_opt(int fd, int level, int opt, int *ret)
{
	socklen_t len = sizeof(*ret);

	*ret = 0;
	return getsockopt(fd, level, opt, ret, &len) < 0 ? -errno : 0;
}

/* The family of a socket fd of the task, -1 when it cannot be read. */
int cd_sk_family(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	int family = -1;

	if (!S_ISSOCK(x->st->st_mode))
		return -1;
	_cleanup_close_ int fd = cd_fd_copy_from(x->t->pid, d->fd);
	if (fd < 0 || cd_sk_opt(fd, SOL_SOCKET, SO_DOMAIN, &family) < 0)
		return -1;
	return family;
}

/* Every socket neither unix nor netlink: inet ones are restored, any other
 * family is refused by name in the dump. */
static bool inet_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	int family = cd_sk_family(x, d);

	return family >= 0 && family != AF_UNIX && family != AF_NETLINK;
}

static const char *family_name(int family)
{
	switch (family) {
	case AF_PACKET:
		return "AF_PACKET (packet socket)";
	case AF_INET:
		return "AF_INET";
	case AF_INET6:
		return "AF_INET6";
	case AF_BLUETOOTH:
		return "AF_BLUETOOTH";
	case AF_ALG:
		return "AF_ALG";
	case AF_VSOCK:
		return "AF_VSOCK";
	case AF_CAN:
		return "AF_CAN";
	case AF_XDP:
		return "AF_XDP";
	case AF_KEY:
		return "AF_KEY";
	case AF_TIPC:
		return "AF_TIPC";
	default:
		return "another";
	}
}

/* "tcp" or "udp" and an address as ss shows it: 1.2.3.4:80, [::1]:80. */
static void addr_show(const uint8_t *sa, size_t len, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	if (len == sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(buf, size, "%s:%u", a, ntohs(s4->sin_port));
	} else if (len == sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(buf, size, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, size, "unbound");
	}
}

/* What a message of the dump names: the task, the fd, the socket. */
struct sk_desc {
	pid_t pid;
	int fd;
	unsigned long ino;
	const char *proto;
	char name[64];
};

#define SK_FMT            "pid %d: fd %d (socket:[%lu], %s %s)"
#define SK_ARGS(s)        (s)->pid, (s)->fd, (s)->ino, (s)->proto, (s)->name
#define SK_REFUSE(s, ...) cd_err_set(err, EOPNOTSUPP, SK_FMT ": " __VA_ARGS__)

/* The socket's own address; a port of 0 is a socket never bound (bind
 * with port 0 takes a port). */
static int dump_addr(const struct sk_desc *s, int fd, struct cd_fd *d, cd_err *err)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_storage ss;
	} u;
	socklen_t len = sizeof(u.ss);

	memset(&u, 0, sizeof(u));
	if (getsockname(fd, &u.sa, &len) < 0)
		return cd_err_sys(err, errno, SK_FMT ": getsockname", SK_ARGS(s));
	in_port_t port = u.ss.ss_family == AF_INET ? u.in.sin_port : u.in6.sin6_port;
	if (!port)
		return 0;
	if (!(d->sk_addr = malloc(len)))
		return cd_err_set(err, ENOMEM, "out of memory");
	memcpy(d->sk_addr, &u.ss, len);
	d->sk_addrlen = len;
	return 0;
}

static int peer_of(int fd, uint8_t **ret, size_t *ret_len, cd_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	*ret = NULL;
	*ret_len = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return errno == ENOTCONN ? 0 : cd_err_sys(err, errno, "getpeername");
	if (!(*ret = malloc(len)))
		return cd_err_set(err, ENOMEM, "out of memory");
	memcpy(*ret, &ss, len);
	*ret_len = len;
	return 0;
}

static const char *tcp_state_name(unsigned state)
{
	static const char *const names[] = {
	    [TCP_SYN_SENT] = "SYN_SENT",   [TCP_SYN_RECV] = "SYN_RECV",
	    [TCP_FIN_WAIT1] = "FIN_WAIT1", [TCP_FIN_WAIT2] = "FIN_WAIT2",
	    [TCP_TIME_WAIT] = "TIME_WAIT", [TCP_CLOSE_WAIT] = "CLOSE_WAIT",
	    [TCP_LAST_ACK] = "LAST_ACK",   [TCP_CLOSING] = "CLOSING",
	};

	return state < ARRAY_SIZE(names) && names[state] ? names[state] : "unknown";
}

/* A socket also held by a process outside the tree: *ret that process's
 * pid (0: none) and its command in comm. */
static int outside_holder(const struct cd_fd_dump *x, const struct sk_desc *s, pid_t *ret,
                          char comm[static 32], cd_err *err)
{
	_cleanup_free_ char *c = NULL;
	size_t len;
	int r;

	*ret = 0;
	if ((r = cd_outside_holder(cd_dump_tree_holders(x->ctx->tree), x->ctx->img, x->st, ret,
	                           err)) < 0)
		return cd_err_wrap(err, SK_FMT, SK_ARGS(s));
	snprintf(comm, 32, "?");
	if (*ret && cd_proc_read_file(*ret, "comm", &c, &len, &(cd_err){0}) == 0 && len > 0)
		snprintf(comm, 32, "%.*s", (int)(c[len - 1] == '\n' ? len - 1 : len), c);
	return 0;
}

/* A TCP or UDP socket also held by a process outside the tree is refused.
 * An established connection (PEER, its peer) would be left to that process
 * in repair mode, then closed under it. Any other socket: the restore would
 * make a second socket for the tree while that process keeps the first
 * (bound to the same address: the restore's bind would fail on it, or share
 * a port that was one socket's), and the two would no longer be one. */
static int held_outside(const struct cd_fd_dump *x, const struct sk_desc *s, const char *peer,
                        cd_err *err)
{
	char comm[32];
	pid_t holder;
	int r;

	if ((r = outside_holder(x, s, &holder, comm, err)) < 0 || !holder)
		return r;
	if (peer)
		return SK_REFUSE(s,
		                 "a TCP connection to %s, also held by pid %d (%s) outside the "
		                 "tree: a restore could not give it back to both",
		                 SK_ARGS(s), peer, holder, comm);
	return SK_REFUSE(s,
	                 "also held by pid %d (%s) outside the tree: a restore would make a "
	                 "second socket beside the one it keeps; dump the tree that holds both",
	                 SK_ARGS(s), holder, comm);
}

/* TCP: listening (backlog and accept queue from TCP_INFO, which gives them
 * for a listener), closed (unbound or only bound), or established (its peer,
 * and on the first fd of its open file its repair state, fd-tcp.c); a
 * connection in any other state is refused, naming its peer. */
static int dump_tcp(const struct cd_fd_dump *x, const struct sk_desc *s, int fd, struct cd_fd *d,
                    cd_err *err)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	char peer[64];
	_cleanup_free_ uint8_t *pa = NULL;
	size_t palen;
	int r;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return cd_err_sys(err, errno, SK_FMT ": TCP_INFO", SK_ARGS(s));
	if (ti.tcpi_state == TCP_LISTEN) {
		/* even with their clients in the tree: the socket accept would
		 * return exists only in the listener's queue (no fd to repair it
		 * through), and a socket made in repair mode cannot be put there */
		if (ti.tcpi_unacked)
			return SK_REFUSE(s,
			                 "connections wait to be accepted (%u): a restore could "
			                 "not put them back in its accept queue (TCP repair "
			                 "makes connected sockets, never a listener's); accept "
			                 "them first",
			                 SK_ARGS(s), ti.tcpi_unacked);
		d->sk_listen = true;
		d->sk_backlog = ti.tcpi_sacked;
		return 0;
	}
	if (ti.tcpi_state == TCP_CLOSE)
		return 0;
	if ((r = peer_of(fd, &pa, &palen, err)) < 0)
		return cd_err_wrap(err, SK_FMT, SK_ARGS(s));
	addr_show(pa, palen, peer, sizeof(peer));
	if (ti.tcpi_state != TCP_ESTABLISHED)
		return SK_REFUSE(s,
		                 "a TCP connection to %s in state %s: only established "
		                 "connections are restored",
		                 SK_ARGS(s), peer, tcp_state_name(ti.tcpi_state));
	if (!x->new_obj)
		return 0; /* the open file's first fd has it */
	if ((r = held_outside(x, s, peer, err)) < 0)
		return r;
	d->sk_paddr = TAKE_PTR(pa);
	d->sk_paddrlen = palen;
	if ((r = cd_tcp_dump(x->ctx->dirfd, fd, d, err)) < 0)
		return cd_err_wrap(err, SK_FMT ": a TCP connection to %s", SK_ARGS(s), peer);
	return 0;
}

/* UDP: its peer when connected; a datagram waiting unread refuses (the
 * restore could not send it again from its sender's address). */
static int dump_udp(const struct sk_desc *s, int fd, struct cd_fd *d, cd_err *err)
{
	int r;

	if ((r = peer_of(fd, &d->sk_paddr, &d->sk_paddrlen, err)) < 0)
		return cd_err_wrap(err, SK_FMT, SK_ARGS(s));
	if ((r = cd_sk_events(fd, err)) < 0)
		return cd_err_wrap(err, SK_FMT, SK_ARGS(s));
	if (r & POLLIN)
		return SK_REFUSE(s,
		                 "datagrams wait unread in its receive queue: a restore could "
		                 "not queue them again from their senders",
		                 SK_ARGS(s));
	return 0;
}

int cd_sk_netns_ours(int fd, cd_err *err)
{
	struct stat ours, its;
	int ns = ioctl(fd, SIOCGSKNS);

	if (ns < 0)
		return cd_err_sys(err, errno, "SIOCGSKNS");
	int r = fstat(ns, &its);
	close(ns);
	if (r < 0 || stat("/proc/self/ns/net", &ours) < 0)
		return cd_err_sys(err, errno, "stat a network namespace");
	if (its.st_ino != ours.st_ino || its.st_dev != ours.st_dev)
		return cd_err_set(err, EOPNOTSUPP,
		                  "a socket of another network namespace (net:[%lu]): a restore "
		                  "would make it in ours",
		                  (unsigned long)its.st_ino);
	return 0;
}

int cd_sk_events(int fd, cd_err *err)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (poll(&p, 1, 0) < 0)
		return cd_err_sys(err, errno, "poll");
	return p.revents;
}

int cd_sk_buf_fits(uint32_t v, int opt, cd_err *err)
{
	const char *path =
	    opt == SO_RCVBUF ? "/proc/sys/net/core/rmem_max" : "/proc/sys/net/core/wmem_max";
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	unsigned long max;

	if (!f || fscanf(f, "%lu", &max) != 1)
		return cd_err_set(err, EIO, "read %s", path);
	/* the kernel doubles what setsockopt asks, capped at the sysctl */
	if (v / 2 > max)
		return cd_err_set(err, EOPNOTSUPP,
		                  "%s %u is above %s (%lu), set by the FORCE option: a restore "
		                  "could not set it again",
		                  opt == SO_RCVBUF ? "SO_RCVBUF" : "SO_SNDBUF", v, path, max);
	return 0;
}

/* An option recorded as one bit of sk_opts. */
static int opt_bit(const struct sk_desc *s, int fd, int level, int opt, const char *name,
                   uint32_t bit, struct cd_fd *d, cd_err *err)
{
	int v, r;

	if ((r = cd_sk_opt(fd, level, opt, &v)) < 0)
		return cd_err_sys(err, -r, SK_FMT ": %s", SK_ARGS(s), name);
	if (v)
		d->sk_opts |= bit;
	return 0;
}

static bool tcp_established(int fd, const struct cd_fd *d)
{
	struct tcp_info ti = {0};
	socklen_t len = sizeof(ti);

	return d->sk_proto == IPPROTO_TCP &&
	       getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	       ti.tcpi_state == TCP_ESTABLISHED;
}

/* Options the restore does not set are refused when they differ from a
 * fresh socket's of the same family and protocol. */
static int check_unset(const struct sk_desc *s, int fd, int fresh, const struct cd_fd *d,
                       cd_err *err)
{
	static const struct {
		int level, opt, tcp_only;
		const char *name;
	} unset[] = {
	    {SOL_SOCKET, SO_MARK, 0, "SO_MARK"},
	    {SOL_SOCKET, SO_PRIORITY, 0, "SO_PRIORITY"},
	    {SOL_SOCKET, SO_OOBINLINE, 0, "SO_OOBINLINE"},
	    {SOL_SOCKET, SO_RCVLOWAT, 0, "SO_RCVLOWAT"},
	    {SOL_SOCKET, SO_PASSCRED, 0, "SO_PASSCRED"},
	    {SOL_SOCKET, SO_TIMESTAMP, 0, "SO_TIMESTAMP"},
	    {SOL_IP, IP_TOS, 0, "IP_TOS"},
	    {SOL_IP, IP_TTL, 0, "IP_TTL"},
	    {SOL_IP, IP_FREEBIND, 0, "IP_FREEBIND"},
	    {SOL_IP, IP_TRANSPARENT, 0, "IP_TRANSPARENT"},
	    {SOL_IP, IP_PKTINFO, 0, "IP_PKTINFO"},
	    {SOL_IP, IP_RECVERR, 0, "IP_RECVERR"},
	    {IPPROTO_TCP, TCP_KEEPIDLE, 1, "TCP_KEEPIDLE"},
	    {IPPROTO_TCP, TCP_KEEPINTVL, 1, "TCP_KEEPINTVL"},
	    {IPPROTO_TCP, TCP_KEEPCNT, 1, "TCP_KEEPCNT"},
	    {IPPROTO_TCP, TCP_MAXSEG, 1, "TCP_MAXSEG"},
	    {IPPROTO_TCP, TCP_CORK, 1, "TCP_CORK"},
	    {IPPROTO_TCP, TCP_QUICKACK, 1, "TCP_QUICKACK"},
	    {IPPROTO_TCP, TCP_FASTOPEN, 1, "TCP_FASTOPEN"},
	    {IPPROTO_TCP, TCP_USER_TIMEOUT, 1, "TCP_USER_TIMEOUT"},
	    {IPPROTO_TCP, TCP_NOTSENT_LOWAT, 1, "TCP_NOTSENT_LOWAT"},
	};
	char dev[IFNAMSIZ + 1] = "";
	socklen_t dl = sizeof(dev);
	int v, fv;
	bool conn = tcp_established(fd, d);

	for (size_t i = 0; i < ARRAY_SIZE(unset); i++) {
		if (unset[i].tcp_only && d->sk_proto != IPPROTO_TCP)
			continue;
		/* a connection's repair state holds the first four; the kernel
		 * moves its MSS and quick-ack mode by itself */
		if (conn && unset[i].level == IPPROTO_TCP &&
		    (unset[i].opt == TCP_KEEPIDLE || unset[i].opt == TCP_KEEPINTVL ||
		     unset[i].opt == TCP_KEEPCNT || unset[i].opt == TCP_CORK ||
		     unset[i].opt == TCP_MAXSEG || unset[i].opt == TCP_QUICKACK))
			continue;
		if (d->sk_family == AF_INET6 && unset[i].level == SOL_IP)
			continue;
		if (cd_sk_opt(fd, unset[i].level, unset[i].opt, &v) < 0 ||
		    cd_sk_opt(fresh, unset[i].level, unset[i].opt, &fv) < 0)
			continue; /* not an option of this socket */
		if (v != fv)
			return SK_REFUSE(s, "%s is %d (a fresh socket's: %d): not supported",
			                 SK_ARGS(s), unset[i].name, v, fv);
	}
	if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) == 0 && dl && dev[0])
		return SK_REFUSE(s, "bound to the device %s (SO_BINDTODEVICE): not supported",
		                 SK_ARGS(s), dev);
	return 0;
}

static int dump_timeo(const struct sk_desc *s, int fd, int opt, const char *name, uint64_t *ret,
                      cd_err *err)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0)
		return cd_err_sys(err, errno, SK_FMT ": %s", SK_ARGS(s), name);
	*ret = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	return 0;
}

static int dump_buf(const struct sk_desc *s, int fd, int fresh, int opt, const char *name,
                    uint32_t *ret, cd_err *err)
{
	int v, fv, r;

	if ((r = cd_sk_opt(fd, SOL_SOCKET, opt, &v)) < 0 ||
	    (r = cd_sk_opt(fresh, SOL_SOCKET, opt, &fv)) < 0)
		return cd_err_sys(err, -r, SK_FMT ": %s", SK_ARGS(s), name);
	*ret = v != fv ? (uint32_t)v : 0;
	return 0;
}

static int dump_options(const struct sk_desc *s, int fd, struct cd_fd *d, cd_err *err)
{
	_cleanup_close_ int fresh = socket(d->sk_family, d->sk_type | SOCK_CLOEXEC, d->sk_proto);
	struct linger lg;
	socklen_t ll = sizeof(lg);
	int v, r;

	if (fresh < 0)
		return cd_err_sys(err, errno, "socket(%s)", s->proto);
	if ((r = opt_bit(s, fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", CD_SKO_REUSEADDR, d,
	                 err)) < 0 ||
	    (r = opt_bit(s, fd, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT", CD_SKO_REUSEPORT, d,
	                 err)) < 0 ||
	    (r = opt_bit(s, fd, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE", CD_SKO_KEEPALIVE, d,
	                 err)) < 0 ||
	    (r = opt_bit(s, fd, SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST", CD_SKO_BROADCAST, d,
	                 err)) < 0 ||
	    (d->sk_proto == IPPROTO_TCP &&
	     (r = opt_bit(s, fd, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", CD_SKO_NODELAY, d, err)) <
	         0) ||
	    (d->sk_family == AF_INET6 && (r = opt_bit(s, fd, IPPROTO_IPV6, IPV6_V6ONLY,
	                                              "IPV6_V6ONLY", CD_SKO_V6ONLY, d, err)) < 0))
		return r;
	if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &ll) < 0)
		return cd_err_sys(err, errno, SK_FMT ": SO_LINGER", SK_ARGS(s));
	if (lg.l_onoff) {
		d->sk_opts |= CD_SKO_LINGER;
		d->sk_linger = (uint32_t)lg.l_linger;
	}
	if (d->sk_proto == IPPROTO_TCP) {
		if ((r = cd_sk_opt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v)) < 0)
			return cd_err_sys(err, -r, SK_FMT ": TCP_DEFER_ACCEPT", SK_ARGS(s));
		d->sk_defer = (uint32_t)v;
	}
	if ((r = dump_timeo(s, fd, SO_RCVTIMEO, "SO_RCVTIMEO", &d->sk_rcvtimeo, err)) < 0 ||
	    (r = dump_timeo(s, fd, SO_SNDTIMEO, "SO_SNDTIMEO", &d->sk_sndtimeo, err)) < 0 ||
	    (r = dump_buf(s, fd, fresh, SO_RCVBUF, "SO_RCVBUF", &d->sk_rcvbuf, err)) < 0 ||
	    (r = dump_buf(s, fd, fresh, SO_SNDBUF, "SO_SNDBUF", &d->sk_sndbuf, err)) < 0)
		return r;
	return check_unset(s, fd, fresh, d, err);
}

/* Family, type and protocol: TCP or UDP over IPv4 or IPv6, else refused by
 * name. */
static int dump_kind(const struct sk_desc *s, int fd, struct cd_fd *d, cd_err *err)
{
	int r;

	if ((r = cd_sk_opt(fd, SOL_SOCKET, SO_DOMAIN, &d->sk_family)) < 0 ||
	    (r = cd_sk_opt(fd, SOL_SOCKET, SO_TYPE, &d->sk_type)) < 0 ||
	    (r = cd_sk_opt(fd, SOL_SOCKET, SO_PROTOCOL, &d->sk_proto)) < 0)
		return cd_err_sys(err, -r, "pid %d: fd %d (socket:[%lu]): its family and type",
		                  s->pid, s->fd, s->ino);
	if (d->sk_family != AF_INET && d->sk_family != AF_INET6)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (socket:[%lu]): a socket of family %d, %s: not "
		                  "supported",
		                  s->pid, s->fd, s->ino, d->sk_family, family_name(d->sk_family));
	if (d->sk_type == SOCK_RAW)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: fd %d (socket:[%lu]): a raw %s socket (protocol %d): not "
		    "supported",
		    s->pid, s->fd, s->ino, family_name(d->sk_family), d->sk_proto);
	if (!(d->sk_type == SOCK_STREAM && d->sk_proto == IPPROTO_TCP) &&
	    !(d->sk_type == SOCK_DGRAM && d->sk_proto == IPPROTO_UDP))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (socket:[%lu]): an %s socket of type %d, protocol "
		                  "%d (not TCP or UDP): not supported",
		                  s->pid, s->fd, s->ino, family_name(d->sk_family), d->sk_type,
		                  d->sk_proto);
	return 0;
}

static int inet_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	struct sk_desc s = {.pid = x->t->pid, .fd = d->fd, .ino = x->st->st_ino};
	int r;

	_cleanup_close_ int fd = cd_fd_copy_from(s.pid, d->fd);
	if (fd < 0)
		return cd_err_sys(err, -fd, "pid %d: fd %d (socket:[%lu]): pidfd_getfd", s.pid,
		                  d->fd, s.ino);
	if ((r = dump_kind(&s, fd, d, err)) < 0)
		return r;
	if ((r = cd_sk_netns_ours(fd, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (socket:[%lu])", s.pid, s.fd, s.ino);
	s.proto = d->sk_proto == IPPROTO_TCP ? (d->sk_family == AF_INET ? "tcp" : "tcp6")
	                                     : (d->sk_family == AF_INET ? "udp" : "udp6");
	if ((r = dump_addr(&s, fd, d, err)) < 0)
		return r;
	addr_show(d->sk_addr, d->sk_addrlen, s.name, sizeof(s.name));
	d->sk_ino = (int64_t)s.ino;
	d->sk_iuid = x->st->st_uid;
	d->sk_igid = x->st->st_gid;
	/* a pending error (a refused connect, an ICMP error) is read once by
	 * the program; poll sees it without clearing it */
	if ((r = cd_sk_events(fd, err)) < 0)
		return cd_err_wrap(err, SK_FMT, SK_ARGS(&s));
	if (r & POLLERR)
		return SK_REFUSE(&s, "an error waits to be read (SO_ERROR): not supported",
		                 SK_ARGS(&s));
	/* an established connection's first fd is checked in dump_tcp, naming its peer */
	if (x->new_obj && !tcp_established(fd, d) && (r = held_outside(x, &s, NULL, err)) < 0)
		return r;
	/* options first: repair mode (dump_tcp) shows SO_REUSEADDR as its own */
	if ((r = dump_options(&s, fd, d, err)) < 0)
		return r;
	if ((r = d->sk_proto == IPPROTO_TCP ? dump_tcp(x, &s, fd, d, err)
	                                    : dump_udp(&s, fd, d, err)) < 0)
		return r;
	/* a connection's buffers grow by themselves (autotuning) past what
	 * SO_RCVBUF may set: its restore sets them with the FORCE options */
	if (tcp_established(fd, d))
		return 0;
	if ((d->sk_rcvbuf && (r = cd_sk_buf_fits(d->sk_rcvbuf, SO_RCVBUF, err)) < 0) ||
	    (d->sk_sndbuf && (r = cd_sk_buf_fits(d->sk_sndbuf, SO_SNDBUF, err)) < 0))
		return cd_err_wrap(err, SK_FMT, SK_ARGS(&s));
	return 0;
}

/* ---- restore ---- */

static int set_int(int fd, int level, int opt, const char *name, int v, cd_err *err)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)) < 0)
		return cd_err_sys(err, errno, "setsockopt(%s, %d)", name, v);
	return 0;
}

/* getsockopt reads back twice what setsockopt was given. */
int cd_sk_set_buf(int fd, int opt, const char *name, uint32_t want, cd_err *err)
{
	int got, r;

	if (!want)
		return 0;
	if ((r = set_int(fd, SOL_SOCKET, opt, name, (int)(want / 2), err)) < 0)
		return r;
	if (cd_sk_opt(fd, SOL_SOCKET, opt, &got) < 0)
		return cd_err_sys(err, errno, "getsockopt(%s)", name);
	if ((uint32_t)got != want)
		return cd_err_set(err, EINVAL,
		                  "%s %u came back as %d (above net.core.rmem_max or wmem_max?)",
		                  name, want, got);
	return 0;
}

/* A connection's buffer with the FORCE option (root's: a user's image has
 * no connection, image-trust), any other socket's as any process may. */
static int set_buf(int fd, const struct cd_fd *d, int opt, const char *name, uint32_t want,
                   cd_err *err)
{
	int force = opt == SO_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, got, r;

	if (!d->sk_tcp || !want)
		return cd_sk_set_buf(fd, opt, name, want, err);
	if ((r = set_int(fd, SOL_SOCKET, force, name, (int)(want / 2), err)) < 0)
		return r;
	if ((r = cd_sk_opt(fd, SOL_SOCKET, opt, &got)) < 0)
		return cd_err_sys(err, -r, "getsockopt(%s)", name);
	if ((uint32_t)got != want)
		return cd_err_set(err, EINVAL, "%s %u came back as %d", name, want, got);
	return 0;
}

static int set_timeo(int fd, int opt, const char *name, uint64_t us, cd_err *err)
{
	struct timeval tv = {.tv_sec = (time_t)(us / 1000000u), .tv_usec = (long)(us % 1000000u)};

	if (us && setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) < 0)
		return cd_err_sys(err, errno, "setsockopt(%s)", name);
	return 0;
}

/* The options of sk_opts, set before bind (SO_REUSEADDR, SO_REUSEPORT and
 * IPV6_V6ONLY decide what bind accepts). */
static int set_bits(int fd, const struct cd_fd *d, cd_err *err)
{
	static const struct {
		uint32_t bit;
		int level, opt;
		const char *name;
	} bits[] = {
	    {CD_SKO_REUSEADDR, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"},
	    {CD_SKO_REUSEPORT, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"},
	    {CD_SKO_KEEPALIVE, SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE"},
	    {CD_SKO_BROADCAST, SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST"},
	    {CD_SKO_NODELAY, IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"},
	};
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(bits); i++)
		if ((d->sk_opts & bits[i].bit) &&
		    (r = set_int(fd, bits[i].level, bits[i].opt, bits[i].name, 1, err)) < 0)
			return r;
	/* a fresh socket's IPV6_V6ONLY is net.ipv6.bindv6only's: set it either way */
	if (d->sk_family == AF_INET6)
		return set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY",
		               (d->sk_opts & CD_SKO_V6ONLY) != 0, err);
	return 0;
}

static int set_up(int fd, const struct cd_fd *d, cd_err *err)
{
	struct linger lg = {.l_onoff = 1, .l_linger = (int)d->sk_linger};
	int r;

	if ((r = set_bits(fd, d, err)) < 0)
		return r;
	if ((d->sk_opts & CD_SKO_LINGER) &&
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		return cd_err_sys(err, errno, "setsockopt(SO_LINGER, %u)", d->sk_linger);
	if (d->sk_defer && (r = set_int(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT",
	                                (int)d->sk_defer, err)) < 0)
		return r;
	if ((r = set_timeo(fd, SO_RCVTIMEO, "SO_RCVTIMEO", d->sk_rcvtimeo, err)) < 0 ||
	    (r = set_timeo(fd, SO_SNDTIMEO, "SO_SNDTIMEO", d->sk_sndtimeo, err)) < 0 ||
	    (r = set_buf(fd, d, SO_RCVBUF, "SO_RCVBUF", d->sk_rcvbuf, err)) < 0 ||
	    (r = set_buf(fd, d, SO_SNDBUF, "SO_SNDBUF", d->sk_sndbuf, err)) < 0)
		return r;
	return 0;
}

static int inet_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int r;
	_cleanup_close_ int fd = socket(d->sk_family, d->sk_type | SOCK_CLOEXEC, d->sk_proto);

	(void)o;
	if (fd < 0)
		return cd_err_sys(err, errno, "socket(%d, %d, %d)", d->sk_family, d->sk_type,
		                  d->sk_proto);
	/* a connection is made once the tree is restored (cd_tcp_restore_all);
	 * repair mode after SO_REUSEADDR, which would replace its own */
	if ((r = set_up(fd, d, err)) < 0 || (d->sk_tcp && (r = cd_tcp_repair_on(fd, err)) < 0) ||
	    (r = cd_fd_set_flags(fd, d, err)) < 0)
		return r;
	/* the socket is the task's, as fstat shows it; the kernel takes its
	 * owner for SO_REUSEPORT's group too */
	if (fchown(fd, d->sk_iuid, d->sk_igid) < 0)
		return cd_err_sys(err, errno, "fchown socket to %u:%u", d->sk_iuid, d->sk_igid);
	return TAKE_FD(fd);
}

/* Whether d is the first fd of its open file in the image: the one whose
 * task binds, listens and connects. */
bool cd_sk_first_of_obj(const struct cd_image *img, const struct cd_fd *d)
{
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++)
			if (img->tasks[i].fds[j].obj == d->obj)
				return &img->tasks[i].fds[j] == d;
	return false;
}

/* A syscall of the task taking a socket address (bind, connect) on d's fd. */
int cd_sk_addr_call(struct cd_restore_ctx *ctx, const struct cd_fd *d, long nr, const char *name,
                    const uint8_t *sa, size_t len, cd_err *err)
{
	int r;

	if (len > ctx->data_len)
		return cd_err_set(err, E2BIG, "no room for a socket address");
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, sa, len, err)) < 0)
		return r;
	return cd_call_ok(ctx->inj, name, nr, (uint64_t)d->fd, ctx->data, len, 0, 0, 0, NULL, err);
}

static int inet_restore(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	char shown[64];
	int r = 0;

	if (!d->sk_tcp && cd_sk_first_of_obj(ctx->img, d)) {
		addr_show(d->sk_addr, d->sk_addrlen, shown, sizeof(shown));
		if (d->sk_addrlen && (r = cd_sk_addr_call(ctx, d, SYS_bind, "bind", d->sk_addr,
		                                          d->sk_addrlen, err)) < 0)
			return cd_err_wrap(err, "socket %s", shown);
		if (d->sk_listen && (r = cd_call_ok(ctx->inj, "listen", SYS_listen, (uint64_t)d->fd,
		                                    d->sk_backlog, 0, 0, 0, 0, NULL, err)) < 0)
			return cd_err_wrap(err, "socket %s", shown);
		if (d->sk_paddrlen && (r = cd_sk_addr_call(ctx, d, SYS_connect, "connect",
		                                           d->sk_paddr, d->sk_paddrlen, err)) < 0)
			return cd_err_wrap(err, "socket %s", shown);
	}
	/* O_ASYNC is set through the fd whose number SIGIO names */
	if (d->flags & O_ASYNC)
		r = cd_fd_set_flags_in(ctx, d, err);
	return r;
}

/* An address of the family's own size and family. */
static bool addr_ok(const uint8_t *sa, size_t len, int family)
{
	sa_family_t f;

	if (!len)
		return true;
	if (len != (family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
		return false;
	memcpy(&f, sa, sizeof(f));
	return f == family;
}

static int inet_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                      cd_err *err)
{
	bool tcp = d->sk_type == SOCK_STREAM && d->sk_proto == IPPROTO_TCP;
	bool udp = d->sk_type == SOCK_DGRAM && d->sk_proto == IPPROTO_UDP;

	if ((d->sk_family != AF_INET && d->sk_family != AF_INET6) || (!tcp && !udp))
		return cd_err_set(
		    err, EINVAL,
		    "pid %d: fd %d: family %d, type %d, protocol %d: not a TCP or UDP "
		    "socket",
		    t->pid, d->fd, d->sk_family, d->sk_type, d->sk_proto);
	if (!addr_ok(d->sk_addr, d->sk_addrlen, d->sk_family) ||
	    !addr_ok(d->sk_paddr, d->sk_paddrlen, d->sk_family))
		return cd_err_set(
		    err, EINVAL,
		    "pid %d: fd %d: field \"sk_addr\" or \"sk_paddr\": not an address "
		    "of family %d",
		    t->pid, d->fd, d->sk_family);
	if (d->sk_tcp && (!tcp || d->sk_listen || !d->sk_addrlen || !d->sk_paddrlen ||
	                  !cd_sk_first_of_obj(c->img, d)))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"sk_tcp\": not on the first fd of a bound "
		                  "and connected TCP socket",
		                  t->pid, d->fd);
	if ((d->sk_listen && (!tcp || !d->sk_addrlen)) || (d->sk_paddrlen && !udp && !d->sk_tcp) ||
	    ((d->sk_opts & CD_SKO_V6ONLY) && d->sk_family != AF_INET6) ||
	    ((d->sk_opts & CD_SKO_NODELAY) && !tcp) || (d->sk_defer && !tcp) ||
	    (!(d->sk_opts & CD_SKO_LINGER) && d->sk_linger))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: a state or an option of another kind of socket",
		                  t->pid, d->fd);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_inet = {.kind = CD_FD_INET,
                                         .name = "inet socket",
                                         .has_owner = true,
                                         .claims = inet_claims,
                                         .dump = inet_dump,
                                         .open = inet_open,
                                         .restore = inet_restore,
                                         .check = inet_check};
