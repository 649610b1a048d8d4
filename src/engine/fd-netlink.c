/* Netlink sockets (CD_FD_NETLINK) of any protocol (NETLINK_ROUTE, and those
 * libraries open behind a program's back: NETLINK_KOBJECT_UEVENT,
 * NETLINK_AUDIT, ...), unbound or bound with multicast groups, with nothing
 * queued. The restore makes the socket in the controller (the tasks inherit
 * it) and its task binds it with the same groups; the port id is the
 * kernel's choice again (most often the pid, as before, but not always).
 * Refused by name: a socket in a group above 32 (only bind's mask is
 * restored), a connected one, one with messages queued. */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#ifndef NETLINK_LIST_MEMBERSHIPS
#define NETLINK_LIST_MEMBERSHIPS 9
#endif

static bool netlink_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return cd_sk_family(x, d) == AF_NETLINK;
}

#define NL_FMT         "pid %d: fd %d (socket:[%lu], netlink protocol %d)"
#define NL_ARGS        x->t->pid, d->fd, (unsigned long)x->st->st_ino, d->sk_proto
#define NL_REFUSE(...) cd_err_set(err, EOPNOTSUPP, NL_FMT ": " __VA_ARGS__)

/* Groups beyond bind's 32-bit mask (NETLINK_ADD_MEMBERSHIP) refuse. */
static int check_groups(const struct cd_fd_dump *x, const struct cd_fd *d, int fd, cd_err *err)
{
	uint32_t g[64];
	socklen_t len = sizeof(g);

	memset(g, 0, sizeof(g));
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &len) < 0)
		return cd_err_sys(err, errno, NL_FMT ": NETLINK_LIST_MEMBERSHIPS", NL_ARGS);
	if (len > sizeof(g))
		return NL_REFUSE("in more than %zu multicast groups: not supported", NL_ARGS,
		                 8 * sizeof(g));
	for (size_t i = 1; i < len / sizeof(g[0]); i++)
		if (g[i])
			return NL_REFUSE("in a multicast group above 32: not supported", NL_ARGS);
	return 0;
}

/* SO_RCVBUF and SO_SNDBUF, recorded when they differ from a fresh socket's. */
static int dump_bufs(const struct cd_fd_dump *x, struct cd_fd *d, int fd, cd_err *err)
{
	_cleanup_close_ int fresh = socket(AF_NETLINK, d->sk_type | SOCK_CLOEXEC, d->sk_proto);
	int v[4];

	if (fresh < 0)
		return cd_err_sys(err, errno, "socket(AF_NETLINK, %d, %d)", d->sk_type,
		                  d->sk_proto);
	if (cd_sk_opt(fd, SOL_SOCKET, SO_RCVBUF, &v[0]) < 0 ||
	    cd_sk_opt(fresh, SOL_SOCKET, SO_RCVBUF, &v[1]) < 0 ||
	    cd_sk_opt(fd, SOL_SOCKET, SO_SNDBUF, &v[2]) < 0 ||
	    cd_sk_opt(fresh, SOL_SOCKET, SO_SNDBUF, &v[3]) < 0)
		return cd_err_sys(err, errno, NL_FMT ": buffer sizes", NL_ARGS);
	d->sk_rcvbuf = v[0] != v[1] ? (uint32_t)v[0] : 0;
	d->sk_sndbuf = v[2] != v[3] ? (uint32_t)v[2] : 0;
	if ((d->sk_rcvbuf && cd_sk_buf_fits(d->sk_rcvbuf, SO_RCVBUF, err) < 0) ||
	    (d->sk_sndbuf && cd_sk_buf_fits(d->sk_sndbuf, SO_SNDBUF, err) < 0))
		return cd_err_wrap(err, NL_FMT, NL_ARGS);
	return 0;
}

static int netlink_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	struct sockaddr_nl sa = {0}, peer = {0};
	socklen_t len = sizeof(sa), plen = sizeof(peer);
	int r;

	_cleanup_close_ int fd = cd_fd_copy_from(x->t->pid, d->fd);
	if (fd < 0)
		return cd_err_sys(err, -fd, "pid %d: fd %d (socket:[%lu]): pidfd_getfd", x->t->pid,
		                  d->fd, (unsigned long)x->st->st_ino);
	if ((r = cd_sk_opt(fd, SOL_SOCKET, SO_TYPE, &d->sk_type)) < 0 ||
	    (r = cd_sk_opt(fd, SOL_SOCKET, SO_PROTOCOL, &d->sk_proto)) < 0)
		return cd_err_sys(err, -r, "pid %d: fd %d: its type", x->t->pid, d->fd);
	d->sk_family = AF_NETLINK;
	if ((r = cd_sk_netns_ours(fd, err)) < 0)
		return cd_err_wrap(err, NL_FMT, NL_ARGS);
	d->sk_ino = (int64_t)x->st->st_ino;
	d->sk_iuid = x->st->st_uid;
	d->sk_igid = x->st->st_gid;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen) < 0)
		return cd_err_sys(err, errno, NL_FMT ": its address", NL_ARGS);
	if (peer.nl_pid || peer.nl_groups)
		return NL_REFUSE("connected to port %u, groups %#x: not supported", NL_ARGS,
		                 peer.nl_pid, peer.nl_groups);
	if ((r = check_groups(x, d, fd, err)) < 0)
		return r;
	/* poll sees the queue and a pending error (an overrun: ENOBUFS)
	 * without taking either */
	if ((r = cd_sk_events(fd, err)) < 0)
		return cd_err_wrap(err, NL_FMT, NL_ARGS);
	if (r & POLLIN)
		return NL_REFUSE("messages wait unread in its receive queue: a restore could not "
		                 "queue them again",
		                 NL_ARGS);
	if (r & POLLERR)
		return NL_REFUSE("an error waits to be read (SO_ERROR, ENOBUFS after an overrun): "
		                 "not supported",
		                 NL_ARGS);
	if (sa.nl_pid) { /* bound (or bound by its first send): bound again, port the kernel's */
		sa.nl_pid = 0;
		d->sk_addrlen = sizeof(sa);
		if (!(d->sk_addr = malloc(d->sk_addrlen)))
			return cd_err_set(err, ENOMEM, "out of memory");
		memcpy(d->sk_addr, &sa, sizeof(sa));
	}
	return dump_bufs(x, d, fd, err);
}

static int netlink_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int r;
	_cleanup_close_ int fd = socket(AF_NETLINK, d->sk_type | SOCK_CLOEXEC, d->sk_proto);

	(void)o;
	if (fd < 0)
		return cd_err_sys(err, errno, "socket(AF_NETLINK, %d, %d)", d->sk_type,
		                  d->sk_proto);
	if ((r = cd_sk_set_buf(fd, SO_RCVBUF, "SO_RCVBUF", d->sk_rcvbuf, err)) < 0 ||
	    (r = cd_sk_set_buf(fd, SO_SNDBUF, "SO_SNDBUF", d->sk_sndbuf, err)) < 0 ||
	    (r = cd_fd_set_flags(fd, d, err)) < 0)
		return r;
	if (fchown(fd, d->sk_iuid, d->sk_igid) < 0)
		return cd_err_sys(err, errno, "fchown socket to %u:%u", d->sk_iuid, d->sk_igid);
	return TAKE_FD(fd);
}

/* Bound by its task, as itself: a group the task may not join fails. */
static int netlink_restore(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	int r = 0;

	if (d->sk_addrlen && cd_sk_first_of_obj(ctx->img, d) &&
	    (r = cd_sk_addr_call(ctx, d, SYS_bind, "bind", d->sk_addr, d->sk_addrlen, err)) < 0)
		return cd_err_wrap(err, "netlink socket, protocol %d", d->sk_proto);
	if (d->flags & O_ASYNC)
		r = cd_fd_set_flags_in(ctx, d, err);
	return r;
}

static int netlink_check(const struct cd_fd_check *c, const struct cd_task *t,
                         const struct cd_fd *d, cd_err *err)
{
	struct sockaddr_nl sa;

	(void)c;
	if (d->sk_family != AF_NETLINK || (d->sk_type != SOCK_RAW && d->sk_type != SOCK_DGRAM) ||
	    d->sk_proto < 0 || d->sk_proto >= 32 || d->sk_listen || d->sk_paddrlen || d->sk_opts ||
	    d->sk_linger || d->sk_defer || d->sk_rcvtimeo || d->sk_sndtimeo)
		return cd_err_set(err, EINVAL, "pid %d: fd %d: not a netlink socket's fields",
		                  t->pid, d->fd);
	if (!d->sk_addrlen)
		return 0;
	if (d->sk_addrlen != sizeof(sa))
		return cd_err_set(err, EINVAL, "pid %d: fd %d: field \"sk_addr\": %zu bytes",
		                  t->pid, d->fd, d->sk_addrlen);
	memcpy(&sa, d->sk_addr, sizeof(sa));
	if (sa.nl_family != AF_NETLINK || sa.nl_pid)
		return cd_err_set(
		    err, EINVAL,
		    "pid %d: fd %d: field \"sk_addr\": not a netlink address of no port", t->pid,
		    d->fd);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_netlink = {.kind = CD_FD_NETLINK,
                                            .name = "netlink socket",
                                            .has_owner = true,
                                            .claims = netlink_claims,
                                            .dump = netlink_dump,
                                            .open = netlink_open,
                                            .restore = netlink_restore,
                                            .check = netlink_check};
