/* Established TCP connections (part of CD_FD_INET), through the kernel's TCP
 * repair mode (TCP_REPAIR, which needs CAP_NET_ADMIN).
 *
 * Dump: the socket (our pidfd_getfd copy of it) goes into repair mode, in
 * which the kernel sends nothing on it and lets us read its sequence
 * numbers (TCP_QUEUE_SEQ), both queues (recvmsg MSG_PEEK with
 * TCP_REPAIR_QUEUE naming the queue), its negotiated options and window.
 * It stays in repair mode until the dump ends: when the tree is killed, a
 * socket in repair mode closes without a FIN or RST; when the tree runs on
 * (a failed dump, --leave-running), repair is turned off again (the kernel
 * then sends a window probe, which any peer takes as a duplicate ACK).
 * Repair mode does not stop the kernel from taking what the peer sends: a
 * peer outside the tree is kept out by a lock (tcp-lock.c) from before the
 * state is read until the restore.
 *
 * Restore: the controller makes the socket in repair mode (inet_open); once
 * the whole tree is restored, just before it is let go, it binds it to its
 * address (repair mode allows a port a listener holds), sets both queues'
 * first sequence numbers, connects (repair mode: no packet, the socket is
 * established at once), sets the options, puts the queues' bytes back and
 * the window, and turns repair off. Unsent bytes go back as sent and
 * unacknowledged: the retransmission timer sends them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"
#include "shared/fdio.h"

/* The sockets this dump put in repair mode (our copies), with the
 * SO_REUSEADDR they had (repair mode replaces it, leaving it clears it),
 * and what becomes of each at the end (cd_tcp_check_peers): one dump runs
 * in a process at a time (the daemon's worker). */
struct held_sk {
	int fd, reuse;
	int64_t ino;
	uint8_t a[sizeof(struct sockaddr_in6)], pa[sizeof(struct sockaddr_in6)];
	size_t alen, plen;
	bool locked;   /* its nftables table exists */
	bool external; /* its peer is outside the tree */
	bool close;    /* --tcp-close: let it go out of repair before the kill */
};
static struct held_sk *held;
static size_t nheld, held_cap;
static bool lock_outside; /* --tcp-established: lock every connection */

static int hold(int fd, int reuse, const struct cd_fd *d, cd_err *err)
{
	struct held_sk h = {.fd = fd, .reuse = reuse, .ino = d->sk_ino};

	if (d->sk_addrlen > sizeof(h.a) || d->sk_paddrlen > sizeof(h.pa))
		return cd_err_set(err, EINVAL, "an address of %zu bytes", d->sk_addrlen);
	memcpy(h.a, d->sk_addr, d->sk_addrlen);
	memcpy(h.pa, d->sk_paddr, d->sk_paddrlen);
	h.alen = d->sk_addrlen;
	h.plen = d->sk_paddrlen;
	if (nheld == held_cap) {
		size_t cap = held_cap ? held_cap * 2 : 16;
		struct held_sk *n = realloc(held, cap * sizeof(*n));
		if (!n)
			return cd_err_set(err, ENOMEM, "out of memory");
		held = n;
		held_cap = cap;
	}
	held[nheld++] = h;
	return 0;
}

/* Out of repair mode, with the SO_REUSEADDR it had. */
static int repair_off(int fd, int reuse)
{
	int off = TCP_REPAIR_OFF;

	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0)
		return -errno;
	if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) < 0)
		return -errno;
	return 0;
}

void cd_tcp_dump_begin(bool established)
{
	lock_outside = established && cd_tcp_lock_available();
}

void cd_tcp_dump_end(bool killed)
{
	for (size_t i = 0; i < nheld; i++) {
		struct held_sk *h = &held[i];
		if (!killed || h->close)
			repair_off(h->fd, h->reuse);
		close(h->fd);
		/* a connection to the outside stays locked until its restore */
		if (h->locked && (!killed || !h->external || h->close))
			cd_tcp_unlock(h->a, h->alen, h->pa, h->plen);
	}
	free(held);
	held = NULL;
	nheld = held_cap = 0;
	lock_outside = false;
}

static struct held_sk *held_of(const struct cd_fd *d)
{
	for (size_t i = 0; i < nheld; i++)
		if (held[i].ino == d->sk_ino)
			return &held[i];
	return NULL;
}

void cd_tcp_show(const uint8_t *sa, size_t len, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";

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

static int set_int(int fd, int opt, int v, const char *name, cd_err *err)
{
	if (setsockopt(fd, IPPROTO_TCP, opt, &v, sizeof(v)) < 0)
		return cd_err_sys(err, errno, "setsockopt(%s, %d)", name, v);
	return 0;
}

static int get_u32(int fd, int opt, const char *name, uint32_t *ret, cd_err *err)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, IPPROTO_TCP, opt, &v, &len) < 0)
		return cd_err_sys(err, errno, "getsockopt(%s)", name);
	*ret = (uint32_t)v;
	return 0;
}

static int ioctl_u32(int fd, unsigned long req, const char *name, uint32_t *ret, cd_err *err)
{
	int v = 0;

	if (ioctl(fd, req, &v) < 0)
		return cd_err_sys(err, errno, "ioctl(%s)", name);
	*ret = (uint32_t)v;
	return 0;
}

/* len bytes of the queue repair mode points at, peeked into buf. */
static int peek_queue(int fd, uint8_t *buf, size_t len, const char *which, cd_err *err)
{
	ssize_t n;

	if (!len)
		return 0;
	do
		n = recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return cd_err_sys(err, errno, "peek the %s queue", which);
	if ((size_t)n != len)
		return cd_err_set(err, EIO, "the %s queue gave %zd of its %zu bytes", which, n,
		                  len);
	return 0;
}

/* One queue: its first sequence number, its length and bytes. seq_end is
 * where the queue ends (write_seq, rcv_nxt). */
static int dump_queue(int fd, int q, struct cd_tcp_conn *c, uint8_t **ret, cd_err *err)
{
	bool snd = q == TCP_SEND_QUEUE;
	uint32_t end = 0, len = 0;
	int r;

	if ((r = set_int(fd, TCP_REPAIR_QUEUE, q, "TCP_REPAIR_QUEUE", err)) < 0 ||
	    (r = get_u32(fd, TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ", &end, err)) < 0 ||
	    (r = ioctl_u32(fd, snd ? SIOCOUTQ : SIOCINQ, snd ? "SIOCOUTQ" : "SIOCINQ", &len, err)) <
	        0)
		return r;
	if (len > CD_TCP_QUEUE_MAX)
		return cd_err_set(err, EOPNOTSUPP, "%u bytes in its %s queue: more than %u", len,
		                  snd ? "send" : "receive", CD_TCP_QUEUE_MAX);
	if (snd) {
		c->snd_seq = end - len;
		c->sndq = len;
		if ((r = ioctl_u32(fd, SIOCOUTQNSD, "SIOCOUTQNSD", &c->unsq, err)) < 0)
			return r;
		if (c->unsq > len)
			return cd_err_set(err, EIO, "%u unsent bytes of a send queue of %u",
			                  c->unsq, len);
	} else {
		c->rcv_seq = end - len;
		c->rcvq = len;
	}
	if (!(*ret = malloc(len + 1)))
		return cd_err_set(err, ENOMEM, "out of memory");
	return peek_queue(fd, *ret, len, snd ? "send" : "receive", err);
}

static int dump_opts(int fd, struct cd_tcp_conn *c, cd_err *err)
{
	struct tcp_info ti;
	struct tcp_repair_window w;
	socklen_t len = sizeof(ti);
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};
	int r;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return cd_err_sys(err, errno, "TCP_INFO");
	c->topts = ti.tcpi_options & (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
	if (c->topts & TCPI_OPT_WSCALE) {
		c->swscale = ti.tcpi_snd_wscale;
		c->rwscale = ti.tcpi_rcv_wscale;
	}
	if ((r = get_u32(fd, TCP_MAXSEG, "TCP_MAXSEG", &c->mss, err)) < 0 ||
	    ((c->topts & TCPI_OPT_TIMESTAMPS) &&
	     (r = get_u32(fd, TCP_TIMESTAMP, "TCP_TIMESTAMP", &c->tsval, err)) < 0) ||
	    (r = get_u32(fd, TCP_KEEPIDLE, "TCP_KEEPIDLE", &c->kidle, err)) < 0 ||
	    (r = get_u32(fd, TCP_KEEPINTVL, "TCP_KEEPINTVL", &c->kintvl, err)) < 0 ||
	    (r = get_u32(fd, TCP_KEEPCNT, "TCP_KEEPCNT", &c->kcnt, err)) < 0 ||
	    (r = get_u32(fd, TCP_CORK, "TCP_CORK", &c->cork, err)) < 0)
		return r;
	c->cork = c->cork != 0;
	len = sizeof(w);
	if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) < 0)
		return cd_err_sys(err, errno, "TCP_REPAIR_WINDOW");
	c->wl1 = w.snd_wl1;
	c->swnd = w.snd_wnd;
	c->maxwnd = w.max_window;
	c->rwnd = w.rcv_wnd;
	c->rwup = w.rcv_wup;
	/* established, RCV_SHUTDOWN comes only from shutdown(SHUT_RD): a FIN
	 * received would have moved it to CLOSE_WAIT */
	if (poll(&p, 1, 0) < 0)
		return cd_err_sys(err, errno, "poll");
	c->shut_rd = (p.revents & POLLRDHUP) != 0;
	return 0;
}

/* The queues' file: tcp-INO.img, private like the rest of the image. */
static void queue_file(int64_t ino, char *buf, size_t size)
{
	snprintf(buf, size, "tcp-%lld.img", (long long)ino);
}

static int write_queues(int dirfd, int64_t ino, const uint8_t *snd, size_t sndlen,
                        const uint8_t *rcv, size_t rcvlen, cd_err *err)
{
	char name[64];
	int r;

	queue_file(ino, name, sizeof(name));
	_cleanup_close_ int fd =
	    openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cd_err_sys(err, errno, "create %s", name);
	if ((r = fd_write_all(fd, snd, sndlen, err)) < 0 ||
	    (r = fd_write_all(fd, rcv, rcvlen, err)) < 0)
		return cd_err_wrap(err, "%s", name);
	if (fsync(fd) < 0)
		return cd_err_sys(err, errno, "fsync %s", name);
	return 0;
}

int cd_tcp_dump(int dirfd, int sk, struct cd_fd *d, cd_err *err)
{
	_cleanup_free_ uint8_t *snd = NULL;
	_cleanup_free_ uint8_t *rcv = NULL;
	struct cd_tcp_conn *c;
	int on = TCP_REPAIR_ON, reuse, r;

	if (!(c = d->sk_tcp = calloc(1, sizeof(*c))))
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((r = cd_sk_opt(sk, SOL_SOCKET, SO_REUSEADDR, &reuse)) < 0)
		return cd_err_sys(err, -r, "SO_REUSEADDR");
	int copy = fcntl(sk, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return cd_err_sys(err, errno, "dup");
	if ((r = hold(copy, reuse, d, err)) < 0) {
		close(copy);
		return r;
	}
	/* traffic stops before the state is read (held: unlocked at the end) */
	if (lock_outside) {
		if ((r = cd_tcp_lock(d->sk_addr, d->sk_addrlen, d->sk_paddr, d->sk_paddrlen, err)) <
		    0)
			return cd_err_wrap(err, "lock its traffic");
		held[nheld - 1].locked = true;
	}
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
		return cd_err_sys(err, errno, "TCP_REPAIR (needs CAP_NET_ADMIN)");
	if ((r = dump_queue(sk, TCP_SEND_QUEUE, c, &snd, err)) < 0 ||
	    (r = dump_queue(sk, TCP_RECV_QUEUE, c, &rcv, err)) < 0 ||
	    (r = set_int(sk, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE", err)) < 0 ||
	    (r = dump_opts(sk, c, err)) < 0)
		return r;
	return write_queues(dirfd, d->sk_ino, snd, c->sndq, rcv, c->rcvq, err);
}

/* ---- the peers ---- */

/* An address as IPv6 (IPv4 mapped) and port, so that a v4-mapped end of a
 * dual-stack socket matches its IPv4 peer. */
static bool norm(const uint8_t *sa, size_t len, uint8_t out[18])
{
	memset(out, 0, 18);
	if (len == sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const void *)sa;
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &s4->sin_addr, 4);
		memcpy(out + 16, &s4->sin_port, 2);
		return true;
	}
	if (len == sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		memcpy(out, &s6->sin6_addr, 16);
		memcpy(out + 16, &s6->sin6_port, 2);
		return true;
	}
	return false;
}

static bool same_addr(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	uint8_t x[18], y[18];

	return norm(a, alen, x) && norm(b, blen, y) && !memcmp(x, y, sizeof(x));
}

/* Whether the other end of d's connection is a socket of the image. */
static bool peer_in_image(const struct cd_image *img, const struct cd_fd *d)
{
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *e = &img->tasks[i].fds[j];
			if (e != d && e->kind == CD_FD_INET && e->sk_tcp &&
			    same_addr(e->sk_addr, e->sk_addrlen, d->sk_paddr, d->sk_paddrlen) &&
			    same_addr(e->sk_paddr, e->sk_paddrlen, d->sk_addr, d->sk_addrlen))
				return true;
		}
	return false;
}

/* A connection to the outside: refused unless established_ok; with
 * close_ok made a closed socket (no address, no state: what a restore
 * gives a socket whose connection is gone). */
static int outside_peer(int dirfd, const struct cd_task *t, struct cd_fd *d, unsigned flags,
                        cd_err *err)
{
	struct held_sk *h = held_of(d);
	char l[64], p[64], name[64];

	cd_tcp_show(d->sk_addr, d->sk_addrlen, l, sizeof(l));
	cd_tcp_show(d->sk_paddr, d->sk_paddrlen, p, sizeof(p));
	if (flags & CD_TCP_CLOSE) {
		queue_file(d->sk_ino, name, sizeof(name));
		unlinkat(dirfd, name, 0);
		free(d->sk_tcp);
		free(d->sk_addr);
		free(d->sk_paddr);
		d->sk_tcp = NULL;
		d->sk_addr = d->sk_paddr = NULL;
		d->sk_addrlen = d->sk_paddrlen = 0;
		if (h)
			h->close = true;
		return 0;
	}
	if (!(flags & CD_TCP_ESTABLISHED))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (socket:[%lld]): a TCP connection %s -> %s to a "
		                  "peer outside the tree: dump with --tcp-established to keep it "
		                  "(or --tcp-close to restore it closed)",
		                  t->pid, d->fd, (long long)d->sk_ino, l, p);
	if (!h || !h->locked)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (socket:[%lld]): a TCP connection %s -> %s to a "
		                  "peer outside the tree: --tcp-established needs nft (nftables) "
		                  "to lock its traffic while it is dumped",
		                  t->pid, d->fd, (long long)d->sk_ino, l, p);
	h->external = true;
	return 0;
}

int cd_tcp_check_peers(struct cd_image *img, int dirfd, unsigned flags, cd_err *err)
{
	int r;

	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			struct cd_fd *d = &img->tasks[i].fds[j];
			if (d->kind == CD_FD_INET && d->sk_tcp && !peer_in_image(img, d) &&
			    (r = outside_peer(dirfd, &img->tasks[i], d, flags, err)) < 0)
				return r;
		}
	return 0;
}

int cd_tcp_restore_check(const struct cd_image *img, unsigned flags, cd_err *err)
{
	char l[64], p[64];

	if ((flags & CD_TCP_ESTABLISHED) && (flags & CD_TCP_CLOSE))
		return cd_err_set(err, EINVAL, "--tcp-established and --tcp-close together");
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *d = &img->tasks[i].fds[j];
			if (d->kind != CD_FD_INET || !d->sk_tcp || flags || peer_in_image(img, d))
				continue;
			cd_tcp_show(d->sk_addr, d->sk_addrlen, l, sizeof(l));
			cd_tcp_show(d->sk_paddr, d->sk_paddrlen, p, sizeof(p));
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "pid %d: fd %d: a TCP connection %s -> %s to a peer outside "
			    "the checkpoint: restore with --tcp-established to bring it "
			    "back (or --tcp-close to restore it closed)",
			    img->tasks[i].pid, d->fd, l, p);
		}
	return 0;
}

/* ---- restore ---- */

int cd_tcp_repair_on(int fd, cd_err *err)
{
	return set_int(fd, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR", err);
}

static int set_seq(int fd, int q, uint32_t seq, cd_err *err)
{
	int r;

	if ((r = set_int(fd, TCP_REPAIR_QUEUE, q, "TCP_REPAIR_QUEUE", err)) < 0)
		return r;
	if (setsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, sizeof(seq)) < 0)
		return cd_err_sys(err, errno, "setsockopt(TCP_QUEUE_SEQ, %u)", seq);
	return 0;
}

/* The queue's bytes, sent into it in repair mode (no packet goes out). */
static int fill_queue(int fd, int q, const uint8_t *buf, size_t len, cd_err *err)
{
	size_t done = 0, chunk = 1u << 20;
	int r;

	if (!len)
		return 0;
	if ((r = set_int(fd, TCP_REPAIR_QUEUE, q, "TCP_REPAIR_QUEUE", err)) < 0)
		return r;
	while (done < len) {
		size_t n = len - done < chunk ? len - done : chunk;
		ssize_t w = send(fd, buf + done, n, MSG_DONTWAIT);
		if (w < 0 && errno == ENOMEM && chunk > 4096) {
			chunk /= 2;
			continue;
		}
		if ((w < 0 && errno != EINTR) || w == 0)
			return cd_err_sys(err, w ? errno : EIO,
			                  "fill the %s queue (%zu of %zu bytes in)",
			                  q == TCP_SEND_QUEUE ? "send" : "receive", done, len);
		if (w > 0)
			done += (size_t)w;
	}
	return 0;
}

static int set_options(int fd, const struct cd_tcp_conn *c, cd_err *err)
{
	struct tcp_repair_opt o[4];
	socklen_t n = 0;

	o[n++] = (struct tcp_repair_opt){TCPOPT_MAXSEG, c->mss};
	if (c->topts & TCPI_OPT_WSCALE)
		o[n++] = (struct tcp_repair_opt){TCPOPT_WINDOW, c->swscale | (c->rwscale << 16)};
	if (c->topts & TCPI_OPT_SACK)
		o[n++] = (struct tcp_repair_opt){TCPOPT_SACK_PERMITTED, 0};
	if (c->topts & TCPI_OPT_TIMESTAMPS)
		o[n++] = (struct tcp_repair_opt){TCPOPT_TIMESTAMP, 0};
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0])) < 0)
		return cd_err_sys(err, errno, "setsockopt(TCP_REPAIR_OPTIONS)");
	if ((c->topts & TCPI_OPT_TIMESTAMPS) &&
	    setsockopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &c->tsval, sizeof(c->tsval)) < 0)
		return cd_err_sys(err, errno, "setsockopt(TCP_TIMESTAMP)");
	return 0;
}

static int set_window(int fd, const struct cd_tcp_conn *c, cd_err *err)
{
	struct tcp_repair_window w = {.snd_wl1 = c->wl1,
	                              .snd_wnd = c->swnd,
	                              .max_window = c->maxwnd,
	                              .rcv_wnd = c->rwnd,
	                              .rcv_wup = c->rwup};

	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0)
		return cd_err_sys(err, errno, "setsockopt(TCP_REPAIR_WINDOW)");
	return 0;
}

/* Keepalive's timing and TCP_CORK, set only where they differ from a
 * fresh socket's (TCP_CORK pushes on clearing: set it last). */
static int set_sockopts(int fd, const struct cd_tcp_conn *c, cd_err *err)
{
	uint32_t v = 0;
	int r;

	if ((r = get_u32(fd, TCP_KEEPIDLE, "TCP_KEEPIDLE", &v, err)) < 0 ||
	    (v != c->kidle &&
	     (r = set_int(fd, TCP_KEEPIDLE, (int)c->kidle, "TCP_KEEPIDLE", err)) < 0))
		return r;
	if ((r = get_u32(fd, TCP_KEEPINTVL, "TCP_KEEPINTVL", &v, err)) < 0 ||
	    (v != c->kintvl &&
	     (r = set_int(fd, TCP_KEEPINTVL, (int)c->kintvl, "TCP_KEEPINTVL", err)) < 0))
		return r;
	if ((r = get_u32(fd, TCP_KEEPCNT, "TCP_KEEPCNT", &v, err)) < 0 ||
	    (v != c->kcnt && (r = set_int(fd, TCP_KEEPCNT, (int)c->kcnt, "TCP_KEEPCNT", err)) < 0))
		return r;
	if (c->cork && (r = set_int(fd, TCP_CORK, 1, "TCP_CORK", err)) < 0)
		return r;
	if (c->shut_rd && shutdown(fd, SHUT_RD) < 0)
		return cd_err_sys(err, errno, "shutdown(SHUT_RD)");
	return 0;
}

/* The queues' bytes from the image: exactly their lengths' sum. */
static int read_queues(int dirfd, const struct cd_fd *d, uint8_t **ret, cd_err *err)
{
	const struct cd_tcp_conn *c = d->sk_tcp;
	size_t len = (size_t)c->sndq + c->rcvq;
	char name[64];
	struct stat st;
	int r;

	queue_file(d->sk_ino, name, sizeof(name));
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "open %s", name);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != len)
		return cd_err_set(err, EINVAL, "%s: %lld bytes, the queues' lengths say %zu", name,
		                  (long long)st.st_size, len);
	_cleanup_free_ uint8_t *buf = malloc(len + 1);
	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((r = fd_pread_all(fd, buf, len, 0, err)) < 0)
		return cd_err_wrap(err, "%s", name);
	*ret = TAKE_PTR(buf);
	return 0;
}

static int repair_one(int fd, int dirfd, const struct cd_fd *d, cd_err *err)
{
	const struct cd_tcp_conn *c = d->sk_tcp;
	_cleanup_free_ uint8_t *q = NULL;
	int r;

	if ((r = read_queues(dirfd, d, &q, err)) < 0)
		return r;
	if (bind(fd, (const struct sockaddr *)d->sk_addr, (socklen_t)d->sk_addrlen) < 0)
		return cd_err_sys(err, errno, "bind");
	if ((r = set_seq(fd, TCP_RECV_QUEUE, c->rcv_seq, err)) < 0 ||
	    (r = set_seq(fd, TCP_SEND_QUEUE, c->snd_seq, err)) < 0)
		return r;
	if (connect(fd, (const struct sockaddr *)d->sk_paddr, (socklen_t)d->sk_paddrlen) < 0)
		return cd_err_sys(err, errno, "connect in repair mode");
	if ((r = set_options(fd, c, err)) < 0 ||
	    (r = fill_queue(fd, TCP_SEND_QUEUE, q, c->sndq, err)) < 0 ||
	    (r = fill_queue(fd, TCP_RECV_QUEUE, q + c->sndq, c->rcvq, err)) < 0 ||
	    (r = set_int(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE", err)) < 0 ||
	    (r = set_window(fd, c, err)) < 0)
		return r;
	return set_sockopts(fd, c, err);
}

static int leave_repair(int fd, const struct cd_fd *d, cd_err *err)
{
	int r = repair_off(fd, (d->sk_opts & CD_SKO_REUSEADDR) != 0);

	return r < 0 ? cd_err_sys(err, -r, "leave repair mode") : 0;
}

int cd_tcp_restore_all(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                       unsigned flags, cd_err *err)
{
	char l[64], p[64];
	int r;

	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < img->ntasks; i++)
			for (size_t j = 0; j < img->tasks[i].nfds; j++) {
				const struct cd_fd *d = &img->tasks[i].fds[j];
				int fd = cd_files_obj_fd(objs, d->obj);
				if (d->kind != CD_FD_INET || !d->sk_tcp || fd < 0)
					continue;
				bool outside = !peer_in_image(img, d);
				/* every connection is repaired before any one runs; the
				 * lock goes once all are (--tcp-close: the peer's next
				 * segment then finds no connection, and is reset) */
				if (pass == 2) {
					if (outside)
						cd_tcp_unlock(d->sk_addr, d->sk_addrlen,
						              d->sk_paddr, d->sk_paddrlen);
					continue;
				}
				if (pass == 0 && outside && (flags & CD_TCP_CLOSE))
					continue;
				r = pass ? leave_repair(fd, d, err) : repair_one(fd, dirfd, d, err);
				if (r < 0) {
					cd_tcp_show(d->sk_addr, d->sk_addrlen, l, sizeof(l));
					cd_tcp_show(d->sk_paddr, d->sk_paddrlen, p, sizeof(p));
					return cd_err_wrap(err,
					                   "pid %d: fd %d: TCP connection %s -> %s",
					                   img->tasks[i].pid, d->fd, l, p);
				}
			}
	return 0;
}
