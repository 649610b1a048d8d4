/* Unix sockets (CD_FD_UNIX) that are not connected: unbound, bound (to a
 * path or an abstract name) and listening ones, of any type. The dump reads
 * the kernel's view of the socket with sock_diag (state, peer, backlog,
 * what waits in its queues) and its options through a copy of the task's
 * fd (pidfd_getfd); what the restore could not bring back the same is
 * refused by name: a connected socket, connections waiting to be accepted,
 * unread data, a shut-down socket, a socket file that is gone.
 *
 * The restore makes the socket in the controller with its type, options and
 * status flags (the tasks inherit it); the task that holds its first fd in
 * the image binds and listens as itself, after its credentials, so that the
 * socket file is the task's to make (a stale socket file of the same path is
 * removed first, anything else there refuses) and the peer credentials a
 * client reads (SO_PEERCRED, taken at listen) are the task's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/sockdiag.h"
#include "shared/cleanup.h"

/* Our copy of the task's fd, or -errno. */
static int copy_fd(pid_t pid, int fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), copy, e;

	if (pidfd < 0)
		return -errno;
	copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	e = errno;
	close(pidfd);
	return copy < 0 ? -e : copy;
}

static int sockopt_int(int fd, int opt, int *ret)
{
	socklen_t len = sizeof(*ret);

	*ret = 0;
	return getsockopt(fd, SOL_SOCKET, opt, ret, &len) < 0 ? -errno : 0;
}

static bool unix_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	int domain = 0;

	if (!S_ISSOCK(x->st->st_mode))
		return false;
	_cleanup_close_ int fd = copy_fd(x->t->pid, d->fd);
	return fd >= 0 && sockopt_int(fd, SO_DOMAIN, &domain) == 0 && domain == AF_UNIX;
}

static const char *type_name(int type)
{
	switch (type) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_SEQPACKET:
		return "seqpacket";
	default:
		return "?";
	}
}

/* "@name" for an abstract name (NULs shown as '@', as ss does), the path
 * otherwise, "unbound" when none. */
static void name_show(const char *name, size_t len, char *buf, size_t size)
{
	size_t n = 0;

	if (!len) {
		snprintf(buf, size, "unbound");
		return;
	}
	for (size_t i = 0; i < len && n + 1 < size; i++) {
		char c = name[i];
		buf[n++] = c == 0 ? '@' : (c < 0x20 || c == 0x7f) ? '?' : c;
	}
	buf[n] = 0;
}

/* What a message of the dump names: the task, the fd, the socket. */
struct sk_desc {
	pid_t pid;
	int fd;
	unsigned long ino;
	const char *type;
	char name[2 * CD_UNIX_ADDR_MAX];
};

#define SK_FMT            "pid %d: fd %d (socket:[%lu], unix %s %s)"
#define SK_ARGS(s)        (s)->pid, (s)->fd, (s)->ino, (s)->type, (s)->name
#define SK_REFUSE(s, ...) cd_err_set(err, EOPNOTSUPP, SK_FMT ": " __VA_ARGS__)

/* The peer, as the message names it: its inode and its name. */
static void peer_show(uint32_t peer, char *buf, size_t size)
{
	struct cd_unix_diag pd;
	cd_err ignored;
	char name[2 * CD_UNIX_ADDR_MAX];

	if (cd_unix_diag(peer, &pd, &ignored) < 0) {
		snprintf(buf, size, "socket:[%u]", peer);
		return;
	}
	name_show(pd.name, pd.namelen, name, sizeof(name));
	snprintf(buf, size, "socket:[%u] (%s)", peer, name);
}

/* Refuses the states the restore does not make: only unconnected sockets
 * with nothing queued, listening ones with no connection waiting. */
static int check_state(const struct sk_desc *s, const struct cd_unix_diag *dg, cd_err *err)
{
	char peer[3 * CD_UNIX_ADDR_MAX];

	if (dg->state == TCP_LISTEN) {
		if (dg->rqueue || dg->nicons)
			return SK_REFUSE(
			    s,
			    "connections wait to be accepted (%u): a restore could not "
			    "bring their clients back; accept them first",
			    SK_ARGS(s), dg->rqueue > dg->nicons ? dg->rqueue : dg->nicons);
		return 0;
	}
	if (dg->peer) {
		peer_show(dg->peer, peer, sizeof(peer));
		return SK_REFUSE(s, "connected to %s: connected unix sockets are not supported",
		                 SK_ARGS(s), peer);
	}
	if (dg->state != TCP_CLOSE)
		return SK_REFUSE(s, "in the middle of connecting (state %u): not supported",
		                 SK_ARGS(s), dg->state);
	if (dg->rqueue)
		return SK_REFUSE(s,
		                 "%u bytes wait unread in its receive queue: unread data of an "
		                 "unconnected socket is not supported",
		                 SK_ARGS(s), dg->rqueue);
	if (dg->shutdown)
		return SK_REFUSE(s, "shut down (%u): not supported", SK_ARGS(s), dg->shutdown);
	return 0;
}

/* A name in the filesystem: the socket file there must still be this
 * socket's (a restore binds the path again); a relative name is resolved
 * against the task's working directory. Records its mode and owner. */
static int dump_path(const struct sk_desc *s, const struct cd_unix_diag *dg, struct cd_fd *d,
                     cd_err *err)
{
	char path[PATH_MAX + CD_UNIX_ADDR_MAX + 2];
	_cleanup_free_ char *cwd = NULL;
	struct stat st;
	int r;

	if (dg->name[0] == '/') {
		snprintf(path, sizeof(path), "%.*s", (int)dg->namelen, dg->name);
	} else {
		if ((r = cd_proc_readlink(s->pid, "cwd", &cwd, err)) < 0)
			return r;
		snprintf(path, sizeof(path), "%s/%.*s", strcmp(cwd, "/") ? cwd : "",
		         (int)dg->namelen, dg->name);
	}
	if (!dg->has_vfs || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_ino != dg->vfs_ino || major(st.st_dev) != (dg->vfs_dev >> 20) ||
	    minor(st.st_dev) != (dg->vfs_dev & 0xfffff))
		return SK_REFUSE(s,
		                 "its socket file %s is gone or is another file now: a restore "
		                 "could not bind the same name",
		                 SK_ARGS(s), path);
	if (strlen(path) >= CD_UNIX_ADDR_MAX)
		return SK_REFUSE(s, "the path %s is longer than a socket address holds", SK_ARGS(s),
		                 path);
	d->sk_addrlen = strlen(path);
	d->sk_mode = st.st_mode & 07777;
	d->sk_uid = st.st_uid;
	d->sk_gid = st.st_gid;
	if (!(d->sk_addr = malloc(d->sk_addrlen)))
		return cd_err_set(err, ENOMEM, "out of memory");
	memcpy(d->sk_addr, path, d->sk_addrlen);
	return 0;
}

static int dump_name(const struct sk_desc *s, const struct cd_unix_diag *dg, struct cd_fd *d,
                     cd_err *err)
{
	if (!dg->namelen)
		return 0;
	if (dg->name[0])
		return dump_path(s, dg, d, err);
	if (!(d->sk_addr = malloc(dg->namelen)))
		return cd_err_set(err, ENOMEM, "out of memory");
	memcpy(d->sk_addr, dg->name, dg->namelen);
	d->sk_addrlen = dg->namelen;
	return 0;
}

/* Options a restore does not set are refused when they differ from a fresh
 * socket's; the buffer sizes are recorded only when they do. */
static int dump_options(const struct sk_desc *s, int fd, struct cd_fd *d, cd_err *err)
{
	static const struct {
		int opt;
		const char *name;
	} unset[] = {
	    {SO_PASSSEC, "SO_PASSSEC"},
#ifdef SO_PASSPIDFD
	    {SO_PASSPIDFD, "SO_PASSPIDFD"},
#endif
	};
	int v, fresh_v, r;
	struct timeval tv[2];
	socklen_t tl = sizeof(tv[0]);
	_cleanup_close_ int fresh = socket(AF_UNIX, d->sk_type | SOCK_CLOEXEC, 0);

	if (fresh < 0)
		return cd_err_sys(err, errno, "socket(AF_UNIX)");
	for (size_t i = 0; i < ARRAY_SIZE(unset); i++)
		if (sockopt_int(fd, unset[i].opt, &v) == 0 && v)
			return SK_REFUSE(s, "%s is set: not supported", SK_ARGS(s), unset[i].name);
	if (sockopt_int(fd, SO_PEEK_OFF, &v) == 0 && v != -1)
		return SK_REFUSE(s, "SO_PEEK_OFF is set: not supported", SK_ARGS(s));
	if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv[0], &tl) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv[1], &tl) == 0 &&
	    (tv[0].tv_sec || tv[0].tv_usec || tv[1].tv_sec || tv[1].tv_usec))
		return SK_REFUSE(s, "SO_RCVTIMEO or SO_SNDTIMEO is set: not supported", SK_ARGS(s));
	if ((r = sockopt_int(fd, SO_PASSCRED, &v)) < 0)
		return cd_err_sys(err, -r, SK_FMT ": SO_PASSCRED", SK_ARGS(s));
	d->sk_passcred = v != 0;
	if ((r = sockopt_int(fd, SO_RCVBUF, &v)) < 0 ||
	    (r = sockopt_int(fresh, SO_RCVBUF, &fresh_v)) < 0)
		return cd_err_sys(err, -r, SK_FMT ": SO_RCVBUF", SK_ARGS(s));
	d->sk_rcvbuf = v != fresh_v ? (uint32_t)v : 0;
	if ((r = sockopt_int(fd, SO_SNDBUF, &v)) < 0 ||
	    (r = sockopt_int(fresh, SO_SNDBUF, &fresh_v)) < 0)
		return cd_err_sys(err, -r, SK_FMT ": SO_SNDBUF", SK_ARGS(s));
	d->sk_sndbuf = v != fresh_v ? (uint32_t)v : 0;
	return 0;
}

static int unix_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	struct sk_desc s = {.pid = x->t->pid, .fd = d->fd, .ino = x->st->st_ino};
	struct cd_unix_diag dg;
	int r;

	_cleanup_close_ int fd = copy_fd(s.pid, d->fd);
	if (fd < 0)
		return cd_err_sys(err, -fd, "pid %d: fd %d (socket:[%lu]): pidfd_getfd", s.pid,
		                  d->fd, s.ino);
	r = cd_unix_diag((uint32_t)s.ino, &dg, err);
	if (r == -ENOENT)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (socket:[%lu], unix): sock_diag does not know "
		                  "it (a socket of another network namespace?): not supported",
		                  s.pid, d->fd, s.ino);
	if (r < 0)
		return cd_err_wrap(err, "pid %d: fd %d", s.pid, d->fd);
	s.type = type_name(dg.type);
	name_show(dg.name, dg.namelen, s.name, sizeof(s.name));
	if (dg.type != SOCK_STREAM && dg.type != SOCK_DGRAM && dg.type != SOCK_SEQPACKET)
		return SK_REFUSE(&s, "socket type %u is not supported", SK_ARGS(&s), dg.type);
	d->sk_type = dg.type;
	d->sk_listen = dg.state == TCP_LISTEN;
	d->sk_backlog = d->sk_listen ? dg.wqueue : 0;
	if ((r = check_state(&s, &dg, err)) < 0 || (r = dump_options(&s, fd, d, err)) < 0)
		return r;
	return dump_name(&s, &dg, d, err);
}

/* ---- restore ---- */

/* getsockopt reads back twice what setsockopt was given. */
static int set_buf(int fd, int opt, const char *name, uint32_t want, cd_err *err)
{
	int v = (int)(want / 2), got;

	if (!want)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)) < 0)
		return cd_err_sys(err, errno, "setsockopt(%s, %d)", name, v);
	if (sockopt_int(fd, opt, &got) < 0)
		return cd_err_sys(err, errno, "getsockopt(%s)", name);
	if ((uint32_t)got != want)
		return cd_err_set(err, EINVAL,
		                  "%s %u came back as %d (above net.core.rmem_max or wmem_max?)",
		                  name, want, got);
	return 0;
}

static int unix_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int one = 1, r;
	_cleanup_close_ int fd = socket(AF_UNIX, d->sk_type | SOCK_CLOEXEC, 0);

	(void)o;
	if (fd < 0)
		return cd_err_sys(err, errno, "socket(AF_UNIX, %s)", type_name(d->sk_type));
	if (d->sk_passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return cd_err_sys(err, errno, "setsockopt(SO_PASSCRED)");
	if ((r = set_buf(fd, SO_RCVBUF, "SO_RCVBUF", d->sk_rcvbuf, err)) < 0 ||
	    (r = set_buf(fd, SO_SNDBUF, "SO_SNDBUF", d->sk_sndbuf, err)) < 0 ||
	    (r = cd_fd_set_flags(fd, d, err)) < 0)
		return r;
	return TAKE_FD(fd);
}

/* Whether d is the first fd of its socket in the image: the one whose
 * task binds and listens. */
static bool first_of_obj(const struct cd_image *img, const struct cd_fd *d)
{
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++)
			if (img->tasks[i].fds[j].obj == d->obj)
				return &img->tasks[i].fds[j] == d;
	return false;
}

/* A stale socket file of the path (what a socket bound there before leaves
 * behind) is removed; anything else there is not ours to remove. */
static int clear_path(struct cd_restore_ctx *ctx, const char *path, uint64_t addr, cd_err *err)
{
	struct stat st;
	uint64_t sta = ctx->data + sizeof(struct sockaddr_un);
	long ret;
	int r;

	if ((r = cd_call(ctx->inj, SYS_newfstatat, (uint64_t)AT_FDCWD, addr, sta,
	                 AT_SYMLINK_NOFOLLOW, 0, 0, &ret, err)) < 0)
		return r;
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return cd_err_sys(err, (int)-ret, "stat %s", path);
	if ((r = cd_inject_read_mem(ctx->inj, sta, &st, sizeof(st), err)) < 0)
		return r;
	if (!S_ISSOCK(st.st_mode))
		return cd_err_set(err, EEXIST, "%s exists and is not a socket: not removed", path);
	return cd_call_ok(ctx->inj, path, SYS_unlinkat, (uint64_t)AT_FDCWD, addr, 0, 0, 0, 0, NULL,
	                  err);
}

/* The socket file made by bind gets the mode and owner it had. */
static int path_attrs(struct cd_restore_ctx *ctx, const struct cd_fd *d, uint64_t addr, cd_err *err)
{
	int r = cd_call_ok(ctx->inj, "chmod", SYS_fchmodat, (uint64_t)AT_FDCWD, addr, d->sk_mode, 0,
	                   0, 0, NULL, err);

	if (r == 0)
		r = cd_call_ok(ctx->inj, "chown", SYS_fchownat, (uint64_t)AT_FDCWD, addr, d->sk_uid,
		               d->sk_gid, AT_SYMLINK_NOFOLLOW, 0, NULL, err);
	return r;
}

static int bind_in_task(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t path = ctx->data + offsetof(struct sockaddr_un, sun_path);
	bool fs = d->sk_addr[0] != 0;
	/* a path's address ends with its NUL, an abstract name is its bytes */
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + d->sk_addrlen + fs);
	char shown[2 * CD_UNIX_ADDR_MAX];
	int r;

	if (sizeof(sa) + sizeof(struct stat) > ctx->data_len)
		return cd_err_set(err, E2BIG, "no room for a socket address");
	memcpy(sa.sun_path, d->sk_addr, d->sk_addrlen);
	name_show((const char *)d->sk_addr, d->sk_addrlen, shown, sizeof(shown));
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, &sa, sizeof(sa), err)) < 0 ||
	    (fs && (r = clear_path(ctx, shown, path, err)) < 0))
		return r;
	if ((r = cd_call_ok(ctx->inj, "bind", SYS_bind, (uint64_t)d->fd, ctx->data, len, 0, 0, 0,
	                    NULL, err)) < 0 ||
	    (fs && (r = path_attrs(ctx, d, path, err)) < 0))
		return cd_err_wrap(err, "unix socket %s", shown);
	return 0;
}

static int unix_restore(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	int r = 0;

	if (first_of_obj(ctx->img, d)) {
		if (d->sk_addrlen && (r = bind_in_task(ctx, d, err)) < 0)
			return r;
		if (d->sk_listen && (r = cd_call_ok(ctx->inj, "listen", SYS_listen, (uint64_t)d->fd,
		                                    d->sk_backlog, 0, 0, 0, 0, NULL, err)) < 0)
			return r;
	}
	/* O_ASYNC is set through the fd whose number SIGIO names */
	if (d->flags & O_ASYNC)
		r = cd_fd_set_flags_in(ctx, d, err);
	return r;
}

/* A name the restore can bind: an abstract one, or an absolute path of no
 * NUL byte that leaves room for its NUL; listening is for connection types. */
static int unix_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                      cd_err *err)
{
	(void)c;
	if (d->sk_type != SOCK_STREAM && d->sk_type != SOCK_DGRAM && d->sk_type != SOCK_SEQPACKET)
		return cd_err_set(err, EINVAL, "pid %d: fd %d: field \"sk_type\": %d", t->pid,
		                  d->fd, d->sk_type);
	if (d->sk_listen && d->sk_type == SOCK_DGRAM)
		return cd_err_set(err, EINVAL, "pid %d: fd %d: a listening datagram socket", t->pid,
		                  d->fd);
	if (d->sk_addrlen && d->sk_addr[0] &&
	    (d->sk_addr[0] != '/' || d->sk_addrlen >= CD_UNIX_ADDR_MAX ||
	     memchr(d->sk_addr, 0, d->sk_addrlen)))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"sk_addr\": not an absolute path that "
		                  "fits a socket address",
		                  t->pid, d->fd);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_unix = {.kind = CD_FD_UNIX,
                                         .name = "unix socket",
                                         .has_owner = true,
                                         .claims = unix_claims,
                                         .dump = unix_dump,
                                         .open = unix_open,
                                         .restore = unix_restore,
                                         .check = unix_check};
