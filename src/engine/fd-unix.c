/* Unix sockets (CD_FD_UNIX) of any type: unbound, bound (to a path or an
 * abstract name) and listening ones, a bound datagram socket's unread
 * datagrams from unbound senders, and unnamed connected pairs with the
 * messages queued in both directions, held by one task or by several. The
 * dump reads the kernel's view of the socket with sock_diag (state, peer,
 * backlog, what waits in its queues) and its options and queue through a
 * copy of the task's fd (pidfd_getfd); what the restore could not bring
 * back the same is refused by name: connections waiting to be accepted, a
 * connection through a named socket, a peer outside the tree, a pair whose
 * maker (SO_PEERCRED) is not the first task of the tree holding an end, fds
 * or credentials in flight, a datagram from a bound sender, a socket file
 * that is gone.
 *
 * The restore makes the socket in the controller with its type, options and
 * status flags (the tasks inherit it); the task that holds its first fd in
 * the image binds and listens as itself, after its credentials, so that the
 * socket file is the task's to make (a stale socket file of the same path is
 * removed first, anything else there refuses) and the peer credentials a
 * client reads (SO_PEERCRED, taken at listen) are the task's; then it sends
 * the unread datagrams to the name again. A connected pair is made by its
 * maker too (pair_restore), which leaves the ends other tasks hold with the
 * controller for them to receive (export_end, receive_end). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/sockdiag.h"
#include "shared/cleanup.h"

static bool unix_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	int domain = 0;

	if (!S_ISSOCK(x->st->st_mode))
		return false;
	_cleanup_close_ int fd = cd_fd_copy_from(x->t->pid, d->fd);
	return fd >= 0 && cd_sk_opt(fd, SOL_SOCKET, SO_DOMAIN, &domain) == 0 && domain == AF_UNIX;
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
		if (c == 0)
			c = '@';
		else if ((unsigned char)c < 0x20 || c == 0x7f)
			c = '?';
		buf[n++] = c;
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

/* Whether the socket of inode peer is connected to ino (a datagram socket
 * may connect to one that is not connected back); *named: whether it has
 * a name. */
static bool connected_back(uint32_t peer, unsigned long ino, bool *named)
{
	struct cd_unix_diag pd;
	cd_err ignored;

	*named = false;
	if (cd_unix_diag(peer, &pd, &ignored) < 0)
		return false;
	*named = pd.namelen > 0;
	return pd.peer == ino;
}

/* A connection made through a listener: its accepted end carries the
 * listener's name, its client end none (check_conn). An unnamed pair has
 * no name on either end. */
static int check_conn(const struct sk_desc *s, const struct cd_unix_diag *dg, bool peer_named,
                      const char *peer, cd_err *err)
{
	if (dg->type == SOCK_DGRAM)
		return SK_REFUSE(s,
		                 "a datagram socket connected to %s, a bound socket connected "
		                 "back to it: not supported",
		                 SK_ARGS(s), peer);
	if (dg->namelen && peer_named)
		return SK_REFUSE(s,
		                 "connected to %s, and both ends have a name (a client that "
		                 "bound a name before it connected): not supported",
		                 SK_ARGS(s), peer);
	if (dg->namelen && dg->name[0] && dg->name[0] != '/')
		return SK_REFUSE(s,
		                 "accepted by a listener of the relative path %s: not "
		                 "supported (a restore could not give it the same name)",
		                 SK_ARGS(s), s->name);
	return 0;
}

/* A datagram socket connected to a bound one, which is not connected back
 * (what connect to a server's name makes): the restore connects it again
 * to that name once it is bound (dgconn_restore); the datagrams it has not
 * read came from that peer, which could not send them again to it. */
static int check_dgconn(const struct sk_desc *s, const struct cd_unix_diag *dg, const char *peer,
                        cd_err *err)
{
	if (dg->rqueue)
		return SK_REFUSE(s,
		                 "connected to %s (a bound datagram socket), with datagrams "
		                 "unread in its receive queue: not supported",
		                 SK_ARGS(s), peer);
	if (dg->shutdown)
		return SK_REFUSE(s, "a shut-down datagram socket (%u): not supported", SK_ARGS(s),
		                 dg->shutdown);
	return 0;
}

/* Refuses the states the restore does not make. It makes unconnected
 * sockets with nothing queued, listening ones with no connection waiting,
 * and connected ones whose peer is in the image too (cd_unix_check_peers,
 * once every task is dumped): unnamed pairs (socketpair) and connections
 * made through a listener (check_conn). */
static int check_state(const struct sk_desc *s, const struct cd_unix_diag *dg, cd_err *err)
{
	char peer[3 * CD_UNIX_ADDR_MAX];
	bool peer_named;

	/* the clients of connections waiting to be accepted must be sockets
	 * of the tree (resolve_pending, once every task is dumped) */
	if (dg->state == TCP_LISTEN) {
		if (dg->nicons > CD_UNIX_ICONS_MAX || dg->rqueue > dg->nicons)
			return SK_REFUSE(s,
			                 "connections wait to be accepted (%u): more than %d are "
			                 "not supported; accept them first",
			                 SK_ARGS(s),
			                 dg->rqueue > dg->nicons ? dg->rqueue : dg->nicons,
			                 CD_UNIX_ICONS_MAX);
		return 0;
	}
	if (dg->peer) {
		peer_show(dg->peer, peer, sizeof(peer));
		if (dg->state != TCP_ESTABLISHED)
			return SK_REFUSE(
			    s, "in the middle of connecting to %s (state %u): not supported",
			    SK_ARGS(s), peer, dg->state);
		if (!connected_back(dg->peer, s->ino, &peer_named) && dg->type == SOCK_DGRAM &&
		    peer_named)
			return check_dgconn(s, dg, peer, err);
		if (!connected_back(dg->peer, s->ino, &peer_named))
			return SK_REFUSE(s,
			                 "connected to %s, which is not connected back to it: not "
			                 "supported",
			                 SK_ARGS(s), peer);
		if (dg->namelen || peer_named)
			return check_conn(s, dg, peer_named, peer, err);
		if (dg->shutdown && dg->type == SOCK_DGRAM)
			return SK_REFUSE(s, "a shut-down datagram socket (%u): not supported",
			                 SK_ARGS(s), dg->shutdown);
		return 0;
	}
	/* a client whose connection waits in a listener's accept queue: its
	 * peer, the socket accept will return, has no inode yet (0); which
	 * listener holds it, and whether it is one of the tree, is for
	 * resolve_pending */
	if (dg->type != SOCK_DGRAM && dg->state == TCP_ESTABLISHED && !dg->shutdown) {
		if (dg->wqueue || dg->rqueue)
			return SK_REFUSE(s,
			                 "connected to a listener that has not accepted it yet, "
			                 "with data it sent waiting in the connection (%u bytes of "
			                 "buffer): a restore could not read it before the accept "
			                 "(the socket accept returns has no fd yet to peek "
			                 "through); let the server accept it first",
			                 SK_ARGS(s), dg->wqueue ? dg->wqueue : dg->rqueue);
		return 0;
	}
	/* a datagram socket another one connected to is marked established
	 * too, with no peer of its own: it is still unconnected */
	if (dg->state != TCP_CLOSE && !(dg->type == SOCK_DGRAM && dg->state == TCP_ESTABLISHED))
		return SK_REFUSE(s,
		                 "its peer is gone or it is in the middle of connecting (state "
		                 "%u): not supported",
		                 SK_ARGS(s), dg->state);
	/* datagrams are sent again to its name (dump_queue: from unbound
	 * senders only) */
	if (dg->rqueue && (dg->type != SOCK_DGRAM || !dg->namelen))
		return SK_REFUSE(s,
		                 "%u bytes wait unread in its receive queue: unread data of an "
		                 "unconnected socket is supported only for a bound datagram "
		                 "socket (a restore sends it again to its name)",
		                 SK_ARGS(s), dg->rqueue);
	if (dg->shutdown)
		return SK_REFUSE(s, "shut down (%u): not supported", SK_ARGS(s), dg->shutdown);
	return 0;
}

/* A control buffer a peek's fds in flight (SCM_MAX_FD of them) and
 * credentials fit in. */
union peek_ctl {
	char b[CMSG_SPACE(CD_SK_FDS_MAX * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	struct cmsghdr align;
};

/* The fds a peek brought along (our copies) into fds (NULL: closed), their
 * number, and its credentials into *cred (cred->pid 0: none); -1 when the
 * control data was cut. */
static int take_rights(struct msghdr *mh, int *fds, struct ucred *cred)
{
	int n = 0;
	bool bad = mh->msg_flags & MSG_CTRUNC;

	*cred = (struct ucred){0};

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			const int *got = (const int *)CMSG_DATA(c);
			for (size_t i = 0; i < k; i++) {
				if (fds && n < (int)CD_SK_FDS_MAX)
					fds[n] = got[i];
				else
					close(got[i]);
				n++;
			}
		} else if (c->cmsg_type == SCM_CREDENTIALS &&
		           c->cmsg_len >= CMSG_LEN(sizeof(*cred))) {
			memcpy(cred, CMSG_DATA(c), sizeof(*cred));
		}
	}
	return bad ? -1 : n;
}

/* What a peek brought along: fds in flight are counted (and closed: our
 * copies; cd_unix_resolve_rights names their files once the whole tree is
 * dumped), credentials (the receiver has SO_PASSCRED) kept in *cred; their
 * pid must be a task of the tree (check_creds, once every task is dumped). */
static int check_cmsgs(const struct sk_desc *s, struct msghdr *mh, size_t *nfds, struct ucred *cred,
                       cd_err *err)
{
	int n = take_rights(mh, NULL, cred);

	if (n < 0)
		return SK_REFUSE(s,
		                 "more control data on a message in its receive queue than a "
		                 "peek takes: not supported",
		                 SK_ARGS(s));
	*nfds = (size_t)n;
	return 0;
}

/* One peek of up to len bytes at the socket's peek offset: its length, the
 * fds it brought (take_rights), the sender's name; -errno. */
static ssize_t peek_at(int fd, void *buf, size_t len, struct msghdr *mh, struct sockaddr_un *from,
                       union peek_ctl *ctl, struct iovec *iov)
{
	*iov = (struct iovec){.iov_base = buf, .iov_len = len};
	*mh = (struct msghdr){.msg_name = from,
	                      .msg_namelen = sizeof(*from),
	                      .msg_iov = iov,
	                      .msg_iovlen = 1,
	                      .msg_control = ctl->b,
	                      .msg_controllen = sizeof(ctl->b)};
	ssize_t n = recvmsg(fd, mh, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 ? -errno : n;
}

/* A datagram of an unconnected socket is sent again from an unbound
 * socket: one from a named sender would lose its sender's name. */
static int check_sender(const struct sk_desc *s, const struct sockaddr_un *from, socklen_t len,
                        cd_err *err)
{
	size_t namelen = len > offsetof(struct sockaddr_un, sun_path)
	                     ? len - offsetof(struct sockaddr_un, sun_path)
	                     : 0;
	char name[2 * CD_UNIX_ADDR_MAX];

	if (!namelen)
		return 0;
	if (namelen > sizeof(from->sun_path))
		namelen = sizeof(from->sun_path);
	name_show(from->sun_path, from->sun_path[0] ? strnlen(from->sun_path, namelen) : namelen,
	          name, sizeof(name));
	return SK_REFUSE(s,
	                 "a datagram from %s (a bound socket) waits unread in its receive "
	                 "queue: a restore sends datagrams again from an unbound socket, and "
	                 "the sender's name would be lost",
	                 SK_ARGS(s), name);
}

/* A message of the queue; the objects of its nfds fds are found later
 * (cd_unix_resolve_rights: -1 until then). */
static int queue_add(struct cd_fd *d, const void *buf, size_t len, size_t nfds, cd_err *err)
{
	struct cd_sk_msg *q = realloc(d->sk_queue, (d->sk_nqueue + 1) * sizeof(*q));

	if (!q)
		return cd_err_set(err, ENOMEM, "out of memory");
	d->sk_queue = q;
	q += d->sk_nqueue;
	*q = (struct cd_sk_msg){.data = malloc(len + 1), .len = len};
	if (!q->data || (nfds && !(q->fds = malloc(nfds * sizeof(int))))) {
		free(q->data);
		return cd_err_set(err, ENOMEM, "out of memory");
	}
	memcpy(q->data, buf, len);
	for (q->nfds = 0; q->nfds < nfds; q->nfds++)
		q->fds[q->nfds] = -1;
	d->sk_nqueue++;
	return 0;
}

/* Peeks every message of the queue through our copy of the fd, moving on
 * with SO_PEEK_OFF (one message per peek for dgram and seqpacket, some of
 * the bytes for a stream); the caller puts SO_PEEK_OFF back. */
static int peek_queue(const struct sk_desc *s, int fd, struct cd_fd *d, uint8_t *buf, size_t *total,
                      cd_err *err)
{
	union peek_ctl ctl;
	int r;

	for (;;) {
		struct iovec iov;
		struct sockaddr_un from;
		struct msghdr mh;
		size_t nfds = 0;
		struct ucred cred;
		ssize_t n = peek_at(fd, buf, CD_PIPE_DATA_MAX + 1 - *total, &mh, &from, &ctl, &iov);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return 0;
		if (n < 0)
			return cd_err_sys(err, (int)-n, SK_FMT ": peek its queue", SK_ARGS(s));
		if ((r = check_cmsgs(s, &mh, &nfds, &cred, err)) < 0 ||
		    (!d->sk_peer && (r = check_sender(s, &from, mh.msg_namelen, err)) < 0))
			return r;
		if (nfds && !d->sk_peer)
			return SK_REFUSE(s,
			                 "file descriptors in flight (SCM_RIGHTS) in the queue of "
			                 "an unconnected datagram socket: not supported",
			                 SK_ARGS(s));
		if (cred.pid && !d->sk_peer)
			return SK_REFUSE(s,
			                 "credentials (SCM_CREDENTIALS, SO_PASSCRED) on the "
			                 "datagrams in the queue of an unconnected socket: not "
			                 "supported (a restore sends them again from the task)",
			                 SK_ARGS(s));
		if (nfds > CD_SK_FDS_MAX)
			return SK_REFUSE(s, "a message with %zu fds in flight", SK_ARGS(s), nfds);
		/* the end of a stream, or of a seqpacket socket shut down for
		 * reading (the length check after tells an empty message) */
		if (n == 0 && (d->sk_type == SOCK_STREAM || (d->sk_shutdown & 1)))
			return 0;
		if (n == 0)
			return SK_REFUSE(s, "an empty message in its receive queue: not supported",
			                 SK_ARGS(s));
		if ((mh.msg_flags & MSG_TRUNC) || *total + (size_t)n > CD_PIPE_DATA_MAX)
			return SK_REFUSE(s,
			                 "more than %u bytes in its receive queue: not supported",
			                 SK_ARGS(s), CD_PIPE_DATA_MAX);
		/* a stream's peek goes on past the bytes asked for to the next
		 * write that carried fds, and takes all of it: the bytes of the
		 * writes before it come glued to it, where a read stops before
		 * it. One byte is one write; more could be several. */
		if (nfds && d->sk_type == SOCK_STREAM && n > 1)
			return SK_REFUSE(
			    s,
			    "fds in flight (SCM_RIGHTS) come with %zd bytes in its stream "
			    "queue: a peek cannot tell where the write that carried them "
			    "began (a reader of the bytes before it gets no fds), only a "
			    "write of one byte is restored",
			    SK_ARGS(s), n);
		if (d->sk_nqueue == CD_SK_QUEUE_MAX)
			return SK_REFUSE(s, "more than %u messages in its receive queue",
			                 SK_ARGS(s), CD_SK_QUEUE_MAX);
		if ((r = queue_add(d, buf, (size_t)n, nfds, err)) < 0)
			return r;
		if (cred.pid) {
			struct cd_sk_msg *m = &d->sk_queue[d->sk_nqueue - 1];
			m->creds = true;
			m->cred_pid = cred.pid;
			m->cred_uid = cred.uid;
			m->cred_gid = cred.gid;
		}
		*total += (size_t)n;
	}
}

/* The receive queue of a connected socket, or of an unconnected datagram
 * socket, left as it was. */
static int dump_queue(const struct sk_desc *s, int fd, const struct cd_unix_diag *dg,
                      struct cd_fd *d, cd_err *err)
{
	int zero = 0, off = -1, r;
	size_t total = 0;

	if (!dg->rqueue)
		return 0;
	_cleanup_free_ uint8_t *buf = malloc(CD_PIPE_DATA_MAX + 1);
	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return cd_err_sys(err, errno, SK_FMT ": SO_PEEK_OFF", SK_ARGS(s));
	r = peek_queue(s, fd, d, buf, &total, err);
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0 && r == 0)
		r = cd_err_sys(err, errno, SK_FMT ": SO_PEEK_OFF", SK_ARGS(s));
	/* a stream's or seqpacket's queue length is all its bytes: anything
	 * the peeks did not see (out-of-band data) refuses */
	if (r == 0 && d->sk_type != SOCK_DGRAM && total != dg->rqueue)
		r = SK_REFUSE(s, "read %zu of the %u bytes in its receive queue (MSG_OOB data?)",
		              SK_ARGS(s), total, dg->rqueue);
	return r;
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
	/* an accepted end has the listener's name, kept as bound (an absolute
	 * path: check_conn), whatever the socket file has become since */
	if (dg->name[0] && !dg->peer)
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
		if (cd_sk_opt(fd, SOL_SOCKET, unset[i].opt, &v) == 0 && v)
			return SK_REFUSE(s, "%s is set: not supported", SK_ARGS(s), unset[i].name);
	if (cd_sk_opt(fd, SOL_SOCKET, SO_PEEK_OFF, &v) == 0 && v != -1)
		return SK_REFUSE(s, "SO_PEEK_OFF is set: not supported", SK_ARGS(s));
	if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv[0], &tl) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv[1], &tl) == 0 &&
	    (tv[0].tv_sec || tv[0].tv_usec || tv[1].tv_sec || tv[1].tv_usec))
		return SK_REFUSE(s, "SO_RCVTIMEO or SO_SNDTIMEO is set: not supported", SK_ARGS(s));
	if ((r = cd_sk_opt(fd, SOL_SOCKET, SO_PASSCRED, &v)) < 0)
		return cd_err_sys(err, -r, SK_FMT ": SO_PASSCRED", SK_ARGS(s));
	d->sk_passcred = v != 0;
	if ((r = cd_sk_opt(fd, SOL_SOCKET, SO_RCVBUF, &v)) < 0 ||
	    (r = cd_sk_opt(fresh, SOL_SOCKET, SO_RCVBUF, &fresh_v)) < 0)
		return cd_err_sys(err, -r, SK_FMT ": SO_RCVBUF", SK_ARGS(s));
	d->sk_rcvbuf = v != fresh_v ? (uint32_t)v : 0;
	if ((r = cd_sk_opt(fd, SOL_SOCKET, SO_SNDBUF, &v)) < 0 ||
	    (r = cd_sk_opt(fresh, SOL_SOCKET, SO_SNDBUF, &fresh_v)) < 0)
		return cd_err_sys(err, -r, SK_FMT ": SO_SNDBUF", SK_ARGS(s));
	d->sk_sndbuf = v != fresh_v ? (uint32_t)v : 0;
	return 0;
}

/* A pair's SO_PEERCRED names the process that made it (or, for a
 * connection, the listener), with its ids then: the restore makes the pair
 * in that task, as it is now, so those must be its ids still (which task it
 * is, once every task is dumped: check_maker). */
static int check_creator(const struct sk_desc *s, int fd, uint32_t peer_ino, cd_err *err)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	char path[32], peer[3 * CD_UNIX_ADDR_MAX];
	struct stat st;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return cd_err_sys(err, errno, SK_FMT ": SO_PEERCRED", SK_ARGS(s));
	snprintf(path, sizeof(path), "/proc/%d", cr.pid);
	if (cr.pid > 0 && stat(path, &st) == 0 && cr.uid == st.st_uid && cr.gid == st.st_gid)
		return 0;
	peer_show(peer_ino, peer, sizeof(peer));
	return SK_REFUSE(s,
	                 "connected to %s, made by pid %d (uid %u, gid %u; SO_PEERCRED), which "
	                 "is gone or has other ids now: a restore makes a pair in the task "
	                 "that made it, as it is then",
	                 SK_ARGS(s), peer, cr.pid, cr.uid, cr.gid);
}

/* Whether a connected socket is an end of a connection made through a
 * listener (its SO_PEERCRED names the other side, not a pair's maker). */
static bool conn_end(const struct cd_unix_diag *dg)
{
	bool peer_named = false;

	if (dg->namelen)
		return true;
	connected_back(dg->peer, 0, &peer_named);
	return peer_named;
}

static int unix_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	struct sk_desc s = {.pid = x->t->pid, .fd = d->fd, .ino = x->st->st_ino};
	struct cd_unix_diag dg;
	int r;

	_cleanup_close_ int fd = cd_fd_copy_from(s.pid, d->fd);
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
	d->sk_ino = (int64_t)s.ino;
	d->sk_iuid = x->st->st_uid;
	d->sk_igid = x->st->st_gid;
	d->sk_peer = dg.peer;
	d->sk_shutdown = dg.peer ? dg.shutdown : 0;
	if ((r = check_state(&s, &dg, err)) < 0 || (r = dump_options(&s, fd, d, err)) < 0 ||
	    (dg.peer && !conn_end(&dg) && (r = check_creator(&s, fd, dg.peer, err)) < 0) ||
	    (!d->sk_listen && x->new_obj && (r = dump_queue(&s, fd, &dg, d, err)) < 0))
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
	if (cd_sk_opt(fd, SOL_SOCKET, opt, &got) < 0)
		return cd_err_sys(err, errno, "getsockopt(%s)", name);
	if ((uint32_t)got != want)
		return cd_err_set(err, EINVAL,
		                  "%s %u came back as %d (above net.core.rmem_max or wmem_max?)",
		                  name, want, got);
	return 0;
}

/* A socket of d's type with d's options, in the controller. */
static int set_up(int fd, const struct cd_fd *d, cd_err *err)
{
	int one = 1, r;

	if (d->sk_passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return cd_err_sys(err, errno, "setsockopt(SO_PASSCRED)");
	if ((r = set_buf(fd, SO_RCVBUF, "SO_RCVBUF", d->sk_rcvbuf, err)) < 0 ||
	    (r = set_buf(fd, SO_SNDBUF, "SO_SNDBUF", d->sk_sndbuf, err)) < 0)
		return r;
	return 0;
}

static bool is_conn(const struct cd_image *img, const struct cd_fd *d);
static bool is_dgconn(const struct cd_image *img, const struct cd_fd *d);
static bool is_pending(const struct cd_image *img, const struct cd_fd *d);
static int conn_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err);

/* An end of a pair gets a placeholder here, replaced by its task (which
 * makes the pair: pair_restore); an end of a connection is made with its
 * peer (conn_open); any other is made whole. */
static int unix_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int r;

	if (is_conn(o->img, d))
		return conn_open(o, d, err);
	_cleanup_close_ int fd = socket(AF_UNIX, d->sk_type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return cd_err_sys(err, errno, "socket(AF_UNIX, %s)", type_name(d->sk_type));
	bool pair = d->sk_peer && !is_dgconn(o->img, d) && !is_pending(o->img, d);
	if (!pair && ((r = set_up(fd, d, err)) < 0 || (r = cd_fd_set_flags(fd, d, err)) < 0))
		return r;
	/* the socket is the task's, as fstat shows it, not root's */
	if (!pair && fchown(fd, d->sk_iuid, d->sk_igid) < 0)
		return cd_err_sys(err, errno, "fchown socket to %u:%u", d->sk_iuid, d->sk_igid);
	return TAKE_FD(fd);
}

/* ---- restore of a connected pair, in the task that holds both ends ---- */

/* setsockopt in the task, an int value, read back (buffers: doubled). */
static int set_in(struct cd_restore_ctx *ctx, int fd, int opt, const char *name, int v, int want,
                  cd_err *err)
{
	int got;
	socklen_t len = sizeof(got);
	int r;

	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, &v, sizeof(v), err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, name, SYS_setsockopt, (uint64_t)fd, SOL_SOCKET, (uint64_t)opt,
	                    ctx->data, sizeof(v), 0, NULL, err)) < 0 ||
	    (r = cd_inject_write_mem(ctx->inj, ctx->data + 8, &len, sizeof(len), err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, name, SYS_getsockopt, (uint64_t)fd, SOL_SOCKET, (uint64_t)opt,
	                    ctx->data, ctx->data + 8, 0, NULL, err)) < 0 ||
	    (r = cd_inject_read_mem(ctx->inj, ctx->data, &got, sizeof(got), err)) < 0)
		return r;
	if (got != want)
		return cd_err_set(err, EINVAL, "%s %d came back as %d", name, want, got);
	return 0;
}

static int set_up_in(struct cd_restore_ctx *ctx, int fd, const struct cd_fd *d, cd_err *err)
{
	int r = 0;

	if (d->sk_passcred)
		r = set_in(ctx, fd, SO_PASSCRED, "SO_PASSCRED", 1, 1, err);
	if (r == 0 && d->sk_rcvbuf)
		r = set_in(ctx, fd, SO_RCVBUF, "SO_RCVBUF", (int)(d->sk_rcvbuf / 2),
		           (int)d->sk_rcvbuf, err);
	if (r == 0 && d->sk_sndbuf)
		r = set_in(ctx, fd, SO_SNDBUF, "SO_SNDBUF", (int)(d->sk_sndbuf / 2),
		           (int)d->sk_sndbuf, err);
	return r;
}

/* The control data of message m: the open files it carried (the
 * controller's fds of those objects, the very files the tasks hold:
 * travels) and its credentials (a task of the tree, which exists by now:
 * the kernel takes another pid or ids only from a sender with
 * CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, which the controller has). */
static int ctl_cmsgs(const struct cd_file_objs *objs, const struct cd_sk_msg *m, struct msghdr *mh,
                     size_t i, cd_err *err)
{
	struct cmsghdr *c;

	mh->msg_controllen = (m->nfds ? CMSG_SPACE(m->nfds * sizeof(int)) : 0) +
	                     (m->creds ? CMSG_SPACE(sizeof(struct ucred)) : 0);
	if (!mh->msg_controllen) {
		mh->msg_control = NULL;
		return 0;
	}
	c = CMSG_FIRSTHDR(mh);
	if (m->nfds) {
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(m->nfds * sizeof(int));
		for (size_t k = 0; k < m->nfds; k++) {
			int fd = cd_files_obj_fd(objs, m->fds[k]);
			if (fd < 0)
				return cd_err_set(err, EINVAL,
				                  "message %zu: open file %d in flight: the "
				                  "controller has no fd of it",
				                  i, m->fds[k]);
			memcpy(CMSG_DATA(c) + k * sizeof(int), &fd, sizeof(int));
		}
		c = CMSG_NXTHDR(mh, c);
	}
	if (m->creds) {
		struct ucred cr = {.pid = m->cred_pid, .uid = m->cred_uid, .gid = m->cred_gid};
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(cr));
		memcpy(CMSG_DATA(c), &cr, sizeof(cr));
	}
	return 0;
}

/* Sends q's messages through the controller's fd `from` (q's peer), in
 * order, never blocking, each with the open files and the credentials it
 * carried (ctl_cmsgs). */
static int ctl_fill(const struct cd_file_objs *objs, int from, const struct cd_fd *q, cd_err *err)
{
	int r;

	for (size_t i = 0; i < q->sk_nqueue; i++) {
		const struct cd_sk_msg *m = &q->sk_queue[i];
		union {
			char b[CMSG_SPACE(CD_SK_FDS_MAX * sizeof(int)) +
			       CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} ctl = {0};
		struct iovec iov = {.iov_base = m->data, .iov_len = m->len};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = ctl.b,
		                    .msg_controllen = sizeof(ctl.b)};
		if ((r = ctl_cmsgs(objs, m, &mh, i, err)) < 0)
			return r;
		ssize_t n = sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n != (ssize_t)m->len)
			return n < 0 ? cd_err_sys(err, errno, "message %zu of %zu bytes", i, m->len)
			             : cd_err_set(err, EIO, "message %zu: %zd of %zu bytes", i, n,
			                          m->len);
	}
	return 0;
}

static bool has_rights(const struct cd_fd *d);
static bool has_creds(const struct cd_fd *d);

/* Writes the messages of q's queue into it through its peer's fd from,
 * each one message, in order, never blocking; buf is a mapping of the task
 * large enough for the largest. A queue with fds in flight or credentials
 * is written by the controller, through its copy of from (ctl_fill). */
static int fill_in(struct cd_restore_ctx *ctx, int from, const struct cd_fd *q, uint64_t buf,
                   cd_err *err)
{
	int r;

	if (has_rights(q) || has_creds(q)) {
		_cleanup_close_ int copy = cd_fd_copy_from(cd_inject_pid(ctx->inj), from);
		if (copy < 0)
			return cd_err_sys(err, -copy, "pidfd_getfd of the pair's end");
		return ctl_fill(ctx->objs, copy, q, err);
	}

	for (size_t i = 0; i < q->sk_nqueue; i++) {
		const struct cd_sk_msg *m = &q->sk_queue[i];
		size_t off = 0;
		long n;
		if ((r = cd_inject_write_mem(ctx->inj, buf, m->data, m->len, err)) < 0)
			return r;
		do {
			if ((r = cd_call_ok(ctx->inj, "send", SYS_sendto, (uint64_t)from, buf + off,
			                    m->len - off, MSG_DONTWAIT | MSG_NOSIGNAL, 0, 0, &n,
			                    err)) < 0)
				return cd_err_wrap(err, "message %zu of %zu bytes", i, m->len);
			off += (size_t)n;
			/* a message goes whole or not at all: a stream may take part */
		} while (off < m->len && q->sk_type == SOCK_STREAM && n > 0);
		if (off < m->len)
			return cd_err_set(err, EIO, "message %zu: %zu of %zu bytes", i, off,
			                  m->len);
	}
	return 0;
}

static size_t largest(const struct cd_fd *q)
{
	size_t max = 1;

	for (size_t i = 0; i < q->sk_nqueue; i++)
		if (q->sk_queue[i].len > max)
			max = q->sk_queue[i].len;
	return max;
}

/* Both queues, through a mapping made for them and removed after. */
static int fill_both(struct cd_restore_ctx *ctx, const int sv[2], const struct cd_fd *a,
                     const struct cd_fd *b, cd_err *err)
{
	size_t len = largest(a) > largest(b) ? largest(a) : largest(b);
	long buf, ignored;
	int r;

	if (!a->sk_nqueue && !b->sk_nqueue)
		return 0;
	len = (len + CD_PAGE_SIZE - 1) & ~(CD_PAGE_SIZE - 1);
	if ((r = cd_call_ok(ctx->inj, "mmap", SYS_mmap, 0, len, PROT_READ | PROT_WRITE,
	                    MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &buf, err)) < 0)
		return r;
	r = fill_in(ctx, sv[1], a, (uint64_t)buf, err);
	if (r == 0)
		r = fill_in(ctx, sv[0], b, (uint64_t)buf, err);
	cd_call(ctx->inj, SYS_munmap, (uint64_t)buf, len, 0, 0, 0, 0, &ignored, err);
	return r;
}

static int shut_in(struct cd_restore_ctx *ctx, int fd, const struct cd_fd *d, cd_err *err)
{
	int r = 0;

	if (d->sk_shutdown & 1)
		r = cd_call_ok(ctx->inj, "shutdown(SHUT_RD)", SYS_shutdown, (uint64_t)fd, SHUT_RD,
		               0, 0, 0, 0, NULL, err);
	if (r == 0 && (d->sk_shutdown & 2))
		r = cd_call_ok(ctx->inj, "shutdown(SHUT_WR)", SYS_shutdown, (uint64_t)fd, SHUT_WR,
		               0, 0, 0, 0, NULL, err);
	return r;
}

/* The task of fd d (an element of its fds). */
static const struct cd_task *task_of(const struct cd_image *img, const struct cd_fd *d)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		if (t->nfds && d >= t->fds && d < t->fds + t->nfds)
			return t;
	}
	return NULL;
}

/* t's first fd of the socket of inode ino, NULL when none. */
static const struct cd_fd *task_fd_of(const struct cd_task *t, int64_t ino)
{
	for (size_t j = 0; j < t->nfds; j++)
		if (t->fds[j].kind == CD_FD_UNIX && t->fds[j].sk_ino == ino)
			return &t->fds[j];
	return NULL;
}

/* The fd of the image that holds the socket of inode ino's queue and
 * options: the first one the dump met (its queue is on it). */
static const struct cd_fd *end_of(const struct cd_image *img, int64_t ino)
{
	const struct cd_fd *first = NULL;

	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_fd *d = task_fd_of(&img->tasks[i], ino);
		if (d && d->sk_nqueue)
			return d;
		if (d && !first)
			first = d;
	}
	return first;
}

/* Whether d is a client whose connection waited in the accept queue of a
 * listener of the image (its sk_peer, resolve_pending): made unconnected,
 * then connected to the listener's name by its first holder once the
 * listener listens (unix_restore_late), so the server's accept gets it. */
static bool is_pending(const struct cd_image *img, const struct cd_fd *d)
{
	const struct cd_fd *p;

	if (!d->sk_peer || d->sk_type == SOCK_DGRAM)
		return false;
	p = end_of(img, d->sk_peer);
	return p && p->sk_listen;
}

/* The task that makes the pair of d again: the first of the image holding
 * either end, which the dump made sure is the one that made it
 * (check_maker: SO_PEERCRED). */
static const struct cd_task *maker_of(const struct cd_image *img, const struct cd_fd *d)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (task_fd_of(&img->tasks[i], d->sk_ino) || task_fd_of(&img->tasks[i], d->sk_peer))
			return &img->tasks[i];
	return NULL;
}

/* Whether a task of the image other than t holds the socket of inode ino. */
static bool held_by_other(const struct cd_image *img, const struct cd_task *t, int64_t ino)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (&img->tasks[i] != t && task_fd_of(&img->tasks[i], ino))
			return true;
	return false;
}

/* Every fd of t of the socket of inode ino becomes fd, with its flags. */
static int place(struct cd_restore_ctx *ctx, const struct cd_task *t, int64_t ino, int fd,
                 cd_err *err)
{
	int r;

	for (size_t j = 0; j < t->nfds; j++) {
		const struct cd_fd *f = &t->fds[j];
		if (f->kind != CD_FD_UNIX || f->sk_ino != ino || cd_files_replaced(ctx->objs, f))
			continue;
		if ((r = cd_call_ok(ctx->inj, "dup3", SYS_dup3, (uint64_t)fd, (uint64_t)f->fd,
		                    (uint64_t)(f->flags & O_CLOEXEC), 0, 0, 0, NULL, err)) < 0 ||
		    (r = cd_fd_set_flags_in(ctx, f, err)) < 0)
			return cd_err_wrap(err, "fd %d", f->fd);
	}
	return 0;
}

/* The end the task made at its fd `fd`, for the tasks after it that hold
 * it too: a copy (the same open file) put in place of the controller's
 * placeholder of the object, which they receive (receive_end). */
static int export_end(struct cd_restore_ctx *ctx, int fd, const struct cd_fd *e, cd_err *err)
{
	int slot = cd_files_obj_fd(ctx->objs, e->obj);
	_cleanup_close_ int copy = cd_fd_copy_from(cd_inject_pid(ctx->inj), fd);

	if (slot < 0)
		return cd_err_set(err, EINVAL, "socket:[%" PRId64 "]: no placeholder", e->sk_ino);
	if (copy < 0)
		return cd_err_sys(err, -copy, "socket:[%" PRId64 "]: pidfd_getfd", e->sk_ino);
	if (dup3(copy, slot, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "socket:[%" PRId64 "]: dup3", e->sk_ino);
	return 0;
}

/* Made by the task that made it at first (the first of the image that holds
 * an end), as itself: its SO_PEERCRED (the maker's) and the credentials the
 * queued messages carry are the maker's, as they were. Ends other tasks
 * hold go to them through the controller (export_end). */
static int pair_make(struct cd_restore_ctx *ctx, const struct cd_task *t, const struct cd_fd *a,
                     const struct cd_fd *b, cd_err *err)
{
	int sv[2], r;
	long ignored;

	if ((r = cd_call_ok(ctx->inj, "socketpair", SYS_socketpair, AF_UNIX,
	                    (uint64_t)(a->sk_type | SOCK_CLOEXEC), 0, ctx->data + 64, 0, 0, NULL,
	                    err)) < 0 ||
	    (r = cd_inject_read_mem(ctx->inj, ctx->data + 64, sv, sizeof(sv), err)) < 0)
		return r;
	r = set_up_in(ctx, sv[0], a, err);
	if (r == 0)
		r = set_up_in(ctx, sv[1], b, err);
	/* its owner, as fstat shows it: the task's own ids unless it changed
	 * them since (a chown the task may not make fails the restore) */
	if (r == 0)
		r = cd_call_ok(ctx->inj, "fchown", SYS_fchown, (uint64_t)sv[0], a->sk_iuid,
		               a->sk_igid, 0, 0, 0, NULL, err);
	if (r == 0)
		r = cd_call_ok(ctx->inj, "fchown", SYS_fchown, (uint64_t)sv[1], b->sk_iuid,
		               b->sk_igid, 0, 0, 0, NULL, err);
	if (r == 0)
		r = fill_both(ctx, sv, a, b, err);
	if (r == 0)
		r = shut_in(ctx, sv[0], a, err);
	if (r == 0)
		r = shut_in(ctx, sv[1], b, err);
	if (r == 0)
		r = place(ctx, t, a->sk_ino, sv[0], err);
	if (r == 0)
		r = place(ctx, t, b->sk_ino, sv[1], err);
	if (r == 0 && held_by_other(ctx->img, t, a->sk_ino))
		r = export_end(ctx, sv[0], a, err);
	if (r == 0 && held_by_other(ctx->img, t, b->sk_ino))
		r = export_end(ctx, sv[1], b, err);
	cd_call(ctx->inj, SYS_close, (uint64_t)sv[0], 0, 0, 0, 0, 0, &ignored, err);
	cd_call(ctx->inj, SYS_close, (uint64_t)sv[1], 0, 0, 0, 0, 0, &ignored, err);
	return r;
}

/* An end of a pair another task made: received from the controller,
 * where that task left it (export_end), once, at t's first fd of it. */
static int receive_end(struct cd_restore_ctx *ctx, const struct cd_task *t, const struct cd_fd *d,
                       cd_err *err)
{
	int slot = cd_files_obj_fd(ctx->objs, d->obj), fd = -1, r;
	long ignored;

	if (task_fd_of(t, d->sk_ino) != d)
		return 0;
	if (slot < 0)
		return cd_err_set(err, EINVAL, "socket:[%" PRId64 "]: no socket to receive",
		                  d->sk_ino);
	if ((r = cd_fd_send_to_task(ctx, slot, &fd, err)) < 0)
		return cd_err_wrap(err, "socket:[%" PRId64 "]", d->sk_ino);
	r = place(ctx, t, d->sk_ino, fd, err);
	cd_call(ctx->inj, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &ignored, err);
	return r;
}

static int pair_restore(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	const struct cd_task *t = task_of(ctx->img, d);
	const struct cd_task *m = maker_of(ctx->img, d);
	const struct cd_fd *a = end_of(ctx->img, d->sk_ino);
	const struct cd_fd *b = end_of(ctx->img, d->sk_peer);
	const struct cd_fd *mine_a, *mine_b;

	if (!t || !m || !a || !b)
		return cd_err_set(err, EINVAL, "socket:[%" PRId64 "]: its pair is not in the image",
		                  d->sk_ino);
	if (t != m)
		return receive_end(ctx, t, d, err);
	/* made once, at the maker's first fd of either end */
	mine_a = task_fd_of(t, d->sk_ino);
	mine_b = task_fd_of(t, d->sk_peer);
	if (mine_a != d || (mine_b && mine_b < mine_a))
		return 0;
	return pair_make(ctx, t, a, b, err);
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

/* The address of d's name at ctx->data; its length. */
static socklen_t addr_in_task(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	bool fs = d->sk_addr[0] != 0;

	memcpy(sa.sun_path, d->sk_addr, d->sk_addrlen);
	if (cd_inject_write_mem(ctx->inj, ctx->data, &sa, sizeof(sa), err) < 0)
		return 0;
	/* a path's address ends with its NUL, an abstract name is its bytes */
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + d->sk_addrlen + fs);
}

/* A new unbound datagram socket of the task, at *ret. */
static int sender_in_task(struct cd_restore_ctx *ctx, long *ret, cd_err *err)
{
	return cd_call_ok(ctx->inj, "socket(AF_UNIX, SOCK_DGRAM)", SYS_socket, AF_UNIX,
	                  SOCK_DGRAM | SOCK_CLOEXEC, 0, 0, 0, 0, ret, err);
}

/* Sends the message in buf to d's name from *from; a sender whose send
 * buffer is full (what it sent waits, charged to it, in d's queue) is
 * closed and a new one takes over. */
static int send_one(struct cd_restore_ctx *ctx, long *from, uint64_t buf, size_t len,
                    socklen_t alen, cd_err *err)
{
	long n, ignored;
	int r;

	for (int fresh = 0; fresh < 2; fresh++) {
		if ((r = cd_call(ctx->inj, SYS_sendto, (uint64_t)*from, buf, len,
		                 MSG_DONTWAIT | MSG_NOSIGNAL, ctx->data, alen, &n, err)) < 0)
			return r;
		if (n == (long)len)
			return 0;
		if (n != -EAGAIN || fresh)
			break;
		cd_call(ctx->inj, SYS_close, (uint64_t)*from, 0, 0, 0, 0, 0, &ignored, err);
		*from = -1;
		if ((r = sender_in_task(ctx, from, err)) < 0)
			return r;
	}
	return n < 0 ? cd_err_sys(err, (int)-n, "sendto") : cd_err_set(err, EIO, "sendto: short");
}

/* The datagrams an unconnected socket had not read, sent again to its name
 * (bound by now) from unbound sockets of the task, in order, as they came:
 * the receiver reads no sender's name, as before. */
static int fill_unconnected(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	size_t len = (largest(d) + CD_PAGE_SIZE - 1) & ~(CD_PAGE_SIZE - 1);
	socklen_t alen;
	long buf, from = -1, ignored;
	int r;

	if (sizeof(struct sockaddr_un) > ctx->data_len)
		return cd_err_set(err, E2BIG, "no room for a socket address");
	if (!(alen = addr_in_task(ctx, d, err)))
		return -EIO;
	if ((r = cd_call_ok(ctx->inj, "mmap", SYS_mmap, 0, len, PROT_READ | PROT_WRITE,
	                    MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &buf, err)) < 0)
		return r;
	r = sender_in_task(ctx, &from, err);
	for (size_t i = 0; r == 0 && i < d->sk_nqueue; i++) {
		const struct cd_sk_msg *m = &d->sk_queue[i];
		r = cd_inject_write_mem(ctx->inj, (uint64_t)buf, m->data, m->len, err);
		if (r == 0 && (r = send_one(ctx, &from, (uint64_t)buf, m->len, alen, err)) < 0)
			r = cd_err_wrap(err, "datagram %zu of %zu bytes", i, m->len);
	}
	if (from >= 0)
		cd_call(ctx->inj, SYS_close, (uint64_t)from, 0, 0, 0, 0, 0, &ignored, err);
	cd_call(ctx->inj, SYS_munmap, (uint64_t)buf, len, 0, 0, 0, 0, &ignored, err);
	return r;
}

/* ---- restore of a connection made through a listener, in the controller ---- */

/* Whether d is an end of a connection made through a listener: it or its
 * peer has a name (the accepted end has the listener's; the image checks
 * that one end at most has one: check_peer). */
static bool is_conn(const struct cd_image *img, const struct cd_fd *d)
{
	const struct cd_fd *p;

	if (!d->sk_peer || d->sk_type == SOCK_DGRAM || is_pending(img, d))
		return false;
	if (d->sk_addrlen)
		return true;
	p = end_of(img, d->sk_peer);
	return p && p->sk_addrlen;
}

/* Whether d is a datagram socket connected to a bound one that is not
 * connected back (check_peer). */
static bool is_dgconn(const struct cd_image *img, const struct cd_fd *d)
{
	const struct cd_fd *p;

	if (!d->sk_peer || d->sk_type != SOCK_DGRAM)
		return false;
	p = end_of(img, d->sk_peer);
	return p && p->sk_addrlen && p->sk_peer != d->sk_ino;
}

/* Connects it again to its peer's name, bound by now (check_dgconn_order),
 * as its first holder, once its own fds are there; a client waiting to be
 * accepted likewise connects to its listener, listening by now
 * (resolve_pending), into its accept queue. */
static int unix_restore_late(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	const struct cd_fd *p;
	socklen_t alen;
	char shown[2 * CD_UNIX_ADDR_MAX];
	bool pending = is_pending(ctx->img, d);

	if ((!pending && !is_dgconn(ctx->img, d)) || !first_of_obj(ctx->img, d))
		return 0;
	p = end_of(ctx->img, d->sk_peer);
	if (sizeof(struct sockaddr_un) > ctx->data_len)
		return cd_err_set(err, E2BIG, "no room for a socket address");
	if (!(alen = addr_in_task(ctx, p, err)))
		return -EIO;
	name_show((const char *)p->sk_addr, p->sk_addrlen, shown, sizeof(shown));
	if (cd_call_ok(ctx->inj, "connect", SYS_connect, (uint64_t)d->fd, ctx->data, alen, 0, 0, 0,
	               NULL, err) < 0)
		return cd_err_wrap(err, "unix %s socket connected to %s", type_name(d->sk_type),
		                   shown);
	return 0;
}

/* The ends conn_open made and has not handed out yet, by object. */
struct conn_state {
	struct {
		int obj, fd;
	} * v;
	size_t n;
};

static int conn_stash(struct cd_fd_open *o, int obj, int fd, cd_err *err)
{
	struct conn_state *cs = o->state[CD_FD_UNIX];

	if (!cs && !(cs = o->state[CD_FD_UNIX] = calloc(1, sizeof(*cs))))
		return cd_err_set(err, ENOMEM, "out of memory");
	__typeof__(cs->v) v = realloc(cs->v, (cs->n + 1) * sizeof(*v));
	if (!v)
		return cd_err_set(err, ENOMEM, "out of memory");
	cs->v = v;
	cs->v[cs->n].obj = obj;
	cs->v[cs->n++].fd = fd;
	return 0;
}

/* The stashed end of object obj, taken out; -1 when none. */
static int conn_take(struct cd_fd_open *o, int obj)
{
	struct conn_state *cs = o->state[CD_FD_UNIX];

	for (size_t i = 0; cs && i < cs->n; i++)
		if (cs->v[i].obj == obj && cs->v[i].fd >= 0)
			return TAKE_FD(cs->v[i].fd);
	return -1;
}

static void conn_open_done(struct cd_fd_open *o)
{
	struct conn_state *cs = o->state[CD_FD_UNIX];

	for (size_t i = 0; cs && i < cs->n; i++)
		if (cs->v[i].fd >= 0)
			close(cs->v[i].fd);
	if (cs)
		free(cs->v);
	free(cs);
	o->state[CD_FD_UNIX] = NULL;
}

/* The helper's identity: the ids an end's socket has (its owner, the ids
 * of the task that made it), no supplementary groups. Raw calls: the
 * helper is a fork of a process that may have threads, and glibc's would
 * signal them. Its saved uid stays 0, to switch again. */
static int become(uid_t uid, gid_t gid)
{
	if (syscall(SYS_setresuid, -1, 0, -1) < 0 || syscall(SYS_setgroups, 0, NULL) < 0 ||
	    syscall(SYS_setresgid, -1, gid, -1) < 0 || syscall(SYS_setresuid, -1, uid, -1) < 0)
		return -errno;
	return 0;
}

/* The address of an end's name (sun_path as bound: a path with its NUL),
 * its length. */
static socklen_t conn_addr(const struct cd_fd *d, struct sockaddr_un *sa)
{
	bool fs = d->sk_addr[0] != 0;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, d->sk_addr, d->sk_addrlen);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + d->sk_addrlen + fs);
}

/* Whether a socket listens at sa still (a server outside the tree, or the
 * original tree run on): its file is not stale, and not ours to remove. */
static bool listening(const struct sockaddr_un *sa, socklen_t len)
{
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	bool live;

	if (probe < 0)
		return true;
	live = connect(probe, (const struct sockaddr *)sa, len) == 0 || errno == EAGAIN ||
	       errno == EPROTOTYPE;
	close(probe);
	return live;
}

/* In a child of the controller: listens on lfd at the accepted end's name
 * as its owner (a stale socket file there is removed first, as the
 * listener's own restore does; ours is removed after), then connects cfd
 * to it as the client end's owner; both ends' SO_PEERCRED read those ids.
 * Returns 0 or an errno, and the step that failed. */
static int conn_helper(int lfd, int cfd, const struct cd_fd *acc, const struct cd_fd *cli,
                       const char **step)
{
	struct sockaddr_un sa;
	socklen_t len = conn_addr(acc, &sa);
	bool fs = sa.sun_path[0] != 0;
	struct stat st, mine = {0};

	umask(0); /* the client may be another user: it connects through the file */
	*step = "become the accepted end's owner";
	if (become(acc->sk_iuid, acc->sk_igid) < 0)
		return errno;
	*step = "remove a stale socket file (a file other than a socket is there, or a socket "
	        "that still listens)";
	if (fs && lstat(sa.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return EEXIST;
		if (listening(&sa, len))
			return EADDRINUSE;
		if (unlink(sa.sun_path) < 0)
			return errno;
	}
	*step = "bind and listen";
	if (bind(lfd, (struct sockaddr *)&sa, len) < 0 || listen(lfd, 1) < 0 ||
	    (fs && lstat(sa.sun_path, &mine) < 0))
		return errno;
	*step = "connect as the client end's owner";
	if (become(cli->sk_iuid, cli->sk_igid) < 0 || connect(cfd, (struct sockaddr *)&sa, len) < 0)
		return errno;
	*step = "remove the socket file";
	if (fs && become(acc->sk_iuid, acc->sk_igid) == 0 && lstat(sa.sun_path, &st) == 0 &&
	    st.st_ino == mine.st_ino && st.st_dev == mine.st_dev && unlink(sa.sun_path) < 0)
		return errno;
	return 0;
}

/* The connection, made by a helper child (conn_helper), accepted here:
 * ret[0] the accepted end, ret[1] the client end. */
static int conn_connect(const struct cd_fd *acc, const struct cd_fd *cli, int ret[2], cd_err *err)
{
	_cleanup_close_ int lfd = socket(AF_UNIX, acc->sk_type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	_cleanup_close_ int cfd = socket(AF_UNIX, cli->sk_type | SOCK_CLOEXEC, 0);
	char shown[2 * CD_UNIX_ADDR_MAX];
	int pipefd[2], status, code = 0;
	const char *step = "?";
	pid_t kid;

	name_show((const char *)acc->sk_addr, acc->sk_addrlen, shown, sizeof(shown));
	if (lfd < 0 || cfd < 0)
		return cd_err_sys(err, errno, "socket(AF_UNIX, %s)", type_name(acc->sk_type));
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "pipe");
	if ((kid = fork()) < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return cd_err_sys(err, errno, "fork");
	}
	if (kid == 0) {
		size_t at;
		code = conn_helper(lfd, cfd, acc, cli, &step);
		at = code ? strlen(step) : 0;
		if (write(pipefd[1], step, at) < 0)
			_exit(255);
		_exit(code & 0xff);
	}
	close(pipefd[1]);
	char msg[160] = {0};
	ssize_t n = read(pipefd[0], msg, sizeof(msg) - 1);
	close(pipefd[0]);
	while (waitpid(kid, &status, 0) < 0 && errno == EINTR)
		;
	code = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
	if (code)
		return cd_err_sys(err, code, "unix %s connection to %s: %s",
		                  type_name(acc->sk_type), shown, n > 0 ? msg : "the helper died");
	ret[0] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (ret[0] < 0)
		return cd_err_sys(err, errno, "unix connection to %s: accept", shown);
	ret[1] = TAKE_FD(cfd);
	return 0;
}

static int conn_shut(int fd, const struct cd_fd *d, cd_err *err)
{
	if ((d->sk_shutdown & 1) && shutdown(fd, SHUT_RD) < 0)
		return cd_err_sys(err, errno, "shutdown(SHUT_RD)");
	if ((d->sk_shutdown & 2) && shutdown(fd, SHUT_WR) < 0)
		return cd_err_sys(err, errno, "shutdown(SHUT_WR)");
	return 0;
}

/* An end's options before anything is queued (the buffer sizes bound what
 * may be), its flags and owner after. */
static int conn_finish(int fd, const struct cd_fd *d, cd_err *err)
{
	int r = cd_fd_set_flags(fd, d, err);

	if (r == 0 && fchown(fd, d->sk_iuid, d->sk_igid) < 0)
		r = cd_err_sys(err, errno, "fchown socket to %u:%u", d->sk_iuid, d->sk_igid);
	return r;
}

/* The queues (with the open files they carry: every object of the image
 * is open by now) and the shutdowns of d's connection, by the controller
 * through its fds of both ends, at the first fd of the accepted end. */
static int conn_fill_late(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	const struct cd_fd *acc = end_of(ctx->img, d->sk_ino), *cli = end_of(ctx->img, d->sk_peer);
	int a = cd_files_obj_fd(ctx->objs, d->obj),
	    c = cli ? cd_files_obj_fd(ctx->objs, cli->obj) : -1;
	int r;

	if (!acc || a < 0 || c < 0)
		return cd_err_set(err, EINVAL, "socket:[%" PRId64 "]: no connection to fill",
		                  d->sk_ino);
	if ((r = ctl_fill(ctx->objs, c, acc, err)) < 0 ||
	    (r = ctl_fill(ctx->objs, a, cli, err)) < 0 || (r = conn_shut(a, acc, err)) < 0 ||
	    (r = conn_shut(c, cli, err)) < 0)
		return cd_err_wrap(err, "unix connection socket:[%" PRId64 "]", d->sk_ino);
	return 0;
}

/* Both ends of d's connection, made at the first of them the controller
 * opens; the other waits in the state for its own open. Their queues and
 * shutdowns come later (conn_fill_late). */
static int conn_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	const struct cd_fd *me = end_of(o->img, d->sk_ino), *peer = end_of(o->img, d->sk_peer);
	const struct cd_fd *acc, *cli;
	int fd = conn_take(o, d->obj), sv[2] = {-1, -1}, r;

	if (fd >= 0)
		return fd;
	if (!me || !peer)
		return cd_err_set(err, EINVAL, "socket:[%" PRId64 "]: its peer is not in the image",
		                  d->sk_ino);
	acc = me->sk_addrlen ? me : peer;
	cli = me->sk_addrlen ? peer : me;
	if ((r = conn_connect(acc, cli, sv, err)) < 0)
		return r;
	_cleanup_close_ int a = sv[0];
	_cleanup_close_ int c = sv[1];
	if ((r = set_up(a, acc, err)) < 0 || (r = set_up(c, cli, err)) < 0 ||
	    (r = conn_finish(a, acc, err)) < 0 || (r = conn_finish(c, cli, err)) < 0)
		return cd_err_wrap(err, "unix connection socket:[%" PRId64 "]", acc->sk_ino);
	if (me == acc) {
		if ((r = conn_stash(o, cli->obj, c, err)) < 0)
			return r;
		c = -1;
		return TAKE_FD(a);
	}
	if ((r = conn_stash(o, acc->obj, a, err)) < 0)
		return r;
	a = -1;
	return TAKE_FD(c);
}

static int unix_restore(struct cd_restore_ctx *ctx, const struct cd_fd *d, cd_err *err)
{
	int r = 0;

	/* connected late (unix_restore_late) */
	bool dgconn = is_dgconn(ctx->img, d) || is_pending(ctx->img, d);

	if (d->sk_peer && !dgconn && !is_conn(ctx->img, d))
		return pair_restore(ctx, d, err);
	if (is_conn(ctx->img, d) && d->sk_addrlen && first_of_obj(ctx->img, d) &&
	    (r = conn_fill_late(ctx, d, err)) < 0)
		return r;
	/* a connection's ends are whole already (conn_open); a datagram socket
	 * connected to a bound one is connected later (unix_restore_late) */
	if ((!d->sk_peer || dgconn) && first_of_obj(ctx->img, d)) {
		if (d->sk_addrlen && (r = bind_in_task(ctx, d, err)) < 0)
			return r;
		if (d->sk_listen && (r = cd_call_ok(ctx->inj, "listen", SYS_listen, (uint64_t)d->fd,
		                                    d->sk_backlog, 0, 0, 0, 0, NULL, err)) < 0)
			return r;
	}
	/* the queue is on the first fd the dump met, the one bound above */
	if (!d->sk_peer && d->sk_nqueue && d->sk_addrlen && (r = fill_unconnected(ctx, d, err)) < 0)
		return cd_err_wrap(err, "fd %d: its unread datagrams", d->fd);
	/* O_ASYNC is set through the fd whose number SIGIO names */
	if (d->flags & O_ASYNC)
		r = cd_fd_set_flags_in(ctx, d, err);
	return r;
}

static int by_ino(const void *a, const void *b)
{
	const struct cd_unix_ref *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

int cd_unix_refs(const struct cd_image *img, struct cd_unix_ref **ret, size_t *ret_n, cd_err *err)
{
	size_t n = 0, k = 0;

	*ret = NULL;
	*ret_n = 0;
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++)
			n += img->tasks[i].fds[j].kind == CD_FD_UNIX;
	if (!n)
		return 0;
	struct cd_unix_ref *v = calloc(n, sizeof(*v));
	if (!v)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *d = &img->tasks[i].fds[j];
			if (d->kind == CD_FD_UNIX)
				v[k++] = (struct cd_unix_ref){.ino = d->sk_ino,
				                              .peer = d->sk_peer,
				                              .obj = d->obj,
				                              .type = d->sk_type,
				                              .pid = img->tasks[i].pid,
				                              .named = d->sk_addrlen > 0,
				                              .listen = d->sk_listen};
		}
	qsort(v, n, sizeof(*v), by_ino);
	*ret = v;
	*ret_n = n;
	return 0;
}

static const struct cd_unix_ref *ref_of(const struct cd_fd_check *c, int64_t ino)
{
	struct cd_unix_ref key = {.ino = ino};

	return c->nunix ? bsearch(&key, c->unix_refs, c->nunix, sizeof(key), by_ino) : NULL;
}

/* One socket, one open file: every fd of an inode has one obj, every fd of
 * an obj one inode (the restore makes one socket per obj). */
static int check_identity(const struct cd_fd_check *c, const struct cd_task *t,
                          const struct cd_fd *d, cd_err *err)
{
	const struct cd_unix_ref *r = ref_of(c, d->sk_ino);
	size_t i;

	if (!r) /* d itself is among them */
		return cd_err_set(err, EINVAL, "pid %d: fd %d: not among the sockets", t->pid,
		                  d->fd);
	i = (size_t)(r - c->unix_refs);
	while (i > 0 && c->unix_refs[i - 1].ino == d->sk_ino)
		i--;
	for (; i < c->nunix && c->unix_refs[i].ino == d->sk_ino; i++)
		if (c->unix_refs[i].obj != d->obj)
			return cd_err_set(err, EINVAL,
			                  "pid %d: fd %d: field \"sk_ino\": %" PRId64
			                  " is another open file's too",
			                  t->pid, d->fd, d->sk_ino);
	return 0;
}

/* A peer is a socket of the image, of the same type, unnamed, connected
 * back; only a connected socket has a shutdown, and a queue is a connected
 * socket's or a bound datagram socket's. */
static int check_peer(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                      cd_err *err)
{
	const struct cd_unix_ref *p;

	if (!d->sk_peer) {
		if (d->sk_shutdown ||
		    (d->sk_nqueue && (d->sk_type != SOCK_DGRAM || !d->sk_addrlen || d->sk_listen)))
			return cd_err_set(err, EINVAL,
			                  "pid %d: fd %d: a shutdown of a socket that is not "
			                  "connected, or a queue of one that is not a bound "
			                  "datagram socket",
			                  t->pid, d->fd);
		return 0;
	}
	p = ref_of(c, d->sk_peer);
	/* a datagram socket connected to a bound one not connected back: with
	 * nothing queued (dgconn_restore connects it, no more) */
	if (p && d->sk_type == SOCK_DGRAM && p->type == SOCK_DGRAM && p->named &&
	    p->peer != d->sk_ino) {
		if (d->sk_nqueue || d->sk_shutdown || d->sk_listen || d->sk_peer == d->sk_ino)
			return cd_err_set(err, EINVAL,
			                  "pid %d: fd %d: a datagram socket connected to a bound "
			                  "one with a queue or a shutdown",
			                  t->pid, d->fd);
		return 0;
	}
	/* a client waiting in a listener's accept queue: of its type, a
	 * connection type, nothing queued (check_state) */
	if (p && p->listen) {
		if (d->sk_type == SOCK_DGRAM || p->type != d->sk_type || d->sk_listen ||
		    d->sk_nqueue || d->sk_shutdown)
			return cd_err_set(
			    err, EINVAL,
			    "pid %d: fd %d: field \"sk_peer\": a client of the listener "
			    "%" PRId64 " that is not of its type, or with a queue or a "
			    "shutdown",
			    t->pid, d->fd, d->sk_peer);
		return 0;
	}
	/* a pair has no name, a connection a name on its accepted end only */
	if (!p || p->peer != d->sk_ino || p->type != d->sk_type || (p->named && d->sk_addrlen) ||
	    ((p->named || d->sk_addrlen) && d->sk_type == SOCK_DGRAM) || d->sk_listen ||
	    d->sk_peer == d->sk_ino || (d->sk_shutdown && d->sk_type == SOCK_DGRAM))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"sk_peer\": %" PRId64
		                  " is not a socket of the image of its type connected back to "
		                  "it, with a name on one end at most (a connection's accepted "
		                  "end)",
		                  t->pid, d->fd, d->sk_peer);
	return 0;
}

static int check_rights(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                        cd_err *err);

/* A name the restore can bind: an abstract one, or an absolute path of no
 * NUL byte that leaves room for its NUL; listening is for connection types. */
static int unix_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                      cd_err *err)
{
	int r;

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
	if ((r = check_identity(c, t, d, err)) < 0 || (r = check_rights(c, t, d, err)) < 0)
		return r;
	return check_peer(c, t, d, err);
}

static bool in_image(const struct cd_image *img, pid_t pid)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].pid == pid)
			return true;
	return false;
}

/* The pair's maker (SO_PEERCRED, read again through a copy of the fd: the
 * tree is still there) must be the first task of the image that holds an
 * end: the restore makes the pair there and hands the other tasks their
 * ends. */
static int check_maker(const struct cd_image *img, pid_t pid, const struct cd_fd *d,
                       const char *peer, cd_err *err)
{
	const struct cd_task *m = maker_of(img, d);
	struct ucred cr;
	socklen_t len = sizeof(cr);
	_cleanup_close_ int fd = cd_fd_copy_from(pid, d->fd);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return cd_err_sys(err, fd < 0 ? -fd : errno, "pid %d: fd %d: SO_PEERCRED", pid,
		                  d->fd);
	if (m && cr.pid == m->pid)
		return 0;
	return cd_err_set(
	    err, EOPNOTSUPP,
	    "pid %d: fd %d (socket:[%" PRId64 "], unix %s unbound): connected to %s, "
	    "made by pid %d (SO_PEERCRED), which %s: a restore makes a pair in the first task of "
	    "the tree that holds an end (pid %d), and it would name that one",
	    pid, d->fd, d->sk_ino, type_name(d->sk_type), peer, cr.pid,
	    !in_image(img, cr.pid) ? "is outside the checkpoint"
	                           : "is not the first task of the tree that holds an end",
	    m ? m->pid : 0);
}

/* The index in the image of the first task holding the socket of inode
 * ino (the one that binds it), ntasks when none. */
static size_t first_holder(const struct cd_image *img, int64_t ino)
{
	size_t i;

	for (i = 0; i < img->ntasks && !task_fd_of(&img->tasks[i], ino); i++)
		;
	return i;
}

/* A datagram socket connected to a bound one is connected again by its
 * first holder, after its own fds (dgconn_restore): the peer must be bound
 * by then, by that task or one before it (the restore goes in image
 * order, parents first). */
static int check_dgconn_order(const struct cd_image *img, pid_t pid, const struct cd_fd *d,
                              const char *name, const char *peer, cd_err *err)
{
	size_t mine = first_holder(img, d->sk_ino), its = first_holder(img, d->sk_peer);

	if (its <= mine)
		return 0;
	return cd_err_set(err, EOPNOTSUPP,
	                  "pid %d: fd %d (socket:[%" PRId64 "], unix dgram %s): connected to %s, "
	                  "which pid %d binds at a restore, after pid %d connects this one: "
	                  "not supported (a bound socket connected to from a parent)",
	                  pid, d->fd, d->sk_ino, name, peer, img->tasks[its].pid,
	                  img->tasks[mine].pid);
}

/* ", held by pid P (COMM)": the lowest pid holding the socket of inode
 * ino (a scan of /proc, made only for this refusal); empty when none (a
 * socket in flight, or held by no process we can see). */
static void holder_show(int64_t ino, char *buf, size_t size)
{
	char want[48], path[300], link[64], comm[32] = "?";
	_cleanup_closedir_ DIR *proc = opendir("/proc");
	pid_t found = 0;
	struct dirent *e;

	buf[0] = 0;
	snprintf(want, sizeof(want), "socket:[%" PRId64 "]", ino);
	while (proc && (e = readdir(proc))) {
		pid_t p = (pid_t)atoi(e->d_name);
		if (p <= 0 || (found && p > found))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", p);
		_cleanup_closedir_ DIR *fds = opendir(path);
		struct dirent *f;
		while (fds && (f = readdir(fds))) {
			snprintf(path, sizeof(path), "/proc/%d/fd/%s", p, f->d_name);
			ssize_t n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = 0;
			if (!strcmp(link, want)) {
				found = p;
				break;
			}
		}
	}
	if (!found)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", found);
	FILE *fp = fopen(path, "re");
	if (fp && fgets(comm, sizeof(comm), fp))
		comm[strcspn(comm, "\n")] = 0;
	if (fp)
		fclose(fp);
	snprintf(buf, size, ", held by pid %d (%s),", found, comm);
}

/* Dump: a connected socket whose peer no fd of the image holds would come
 * back connected to nothing; a pair is made again by its maker. */
static int check_pair(const struct cd_image *img, const struct cd_fd_check *c, pid_t pid,
                      const struct cd_fd *d, cd_err *err)
{
	char peer[3 * CD_UNIX_ADDR_MAX], name[2 * CD_UNIX_ADDR_MAX];

	char holder[64];

	peer_show((uint32_t)d->sk_peer, peer, sizeof(peer));
	name_show((const char *)d->sk_addr, d->sk_addrlen, name, sizeof(name));
	if (!ref_of(c, d->sk_peer)) {
		holder_show(d->sk_peer, holder, sizeof(holder));
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (socket:[%" PRId64 "], unix %s %s): its peer "
		                  "%s%s is outside the checkpoint: a restored socket could "
		                  "not be connected to it. Dump the tree that holds both ends",
		                  pid, d->fd, d->sk_ino, type_name(d->sk_type), name, peer, holder);
	}
	if (ref_of(c, d->sk_peer)->listen) /* resolve_pending checked it */
		return 0;
	if (d->sk_type == SOCK_DGRAM && ref_of(c, d->sk_peer)->named)
		return check_dgconn_order(img, pid, d, name, peer, err);
	/* a connection is made again by the controller (conn_open) */
	if (d->sk_addrlen || ref_of(c, d->sk_peer)->named)
		return 0;
	return check_maker(img, pid, d, peer, err);
}

/* Dump: the credentials a message carries are sent again by the
 * controller with their pid, which must then exist: a task of the tree. */
static int check_creds(const struct cd_image *img, pid_t pid, const struct cd_fd *d, cd_err *err)
{
	char name[2 * CD_UNIX_ADDR_MAX], holder[64] = "";

	for (size_t k = 0; k < d->sk_nqueue; k++) {
		const struct cd_sk_msg *m = &d->sk_queue[k];
		if (!m->creds || in_image(img, m->cred_pid))
			continue;
		name_show((const char *)d->sk_addr, d->sk_addrlen, name, sizeof(name));
		_cleanup_free_ char *comm = NULL;
		size_t len;
		if (cd_proc_read_file(m->cred_pid, "comm", &comm, &len, &(cd_err){0}) == 0 && len)
			snprintf(holder, sizeof(holder), " (%.*s)",
			         (int)(comm[len - 1] == '\n' ? len - 1 : len), comm);
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (socket:[%" PRId64 "], unix %s %s): message %zu "
		                  "in its queue carries the credentials (SCM_CREDENTIALS) of pid "
		                  "%d%s, which is not in the checkpoint: a restore could send it "
		                  "again only with the pid of a task of the tree",
		                  pid, d->fd, d->sk_ino, type_name(d->sk_type), name, k,
		                  m->cred_pid, holder);
	}
	return 0;
}

int cd_unix_check_peers(const struct cd_image *img, cd_err *err)
{
	_cleanup_free_ struct cd_unix_ref *refs = NULL;
	struct cd_fd_check c = {.img = img};
	int r;

	if ((r = cd_unix_refs(img, &refs, &c.nunix, err)) < 0)
		return r;
	c.unix_refs = refs;
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *d = &img->tasks[i].fds[j];
			if (d->kind == CD_FD_UNIX && d->sk_peer &&
			    (r = check_pair(img, &c, img->tasks[i].pid, d, err)) < 0)
				return r;
			if (d->kind == CD_FD_UNIX &&
			    (r = check_creds(img, img->tasks[i].pid, d, err)) < 0)
				return r;
		}
	return 0;
}

/* ---- fds in flight (SCM_RIGHTS), once every task is dumped ---- */

/* The first fd of the image of open file obj, NULL when none. */
static const struct cd_fd *obj_fd(const struct cd_image *img, int obj)
{
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++)
			if (img->tasks[i].fds[j].obj == obj)
				return &img->tasks[i].fds[j];
	return NULL;
}

/* Whether the open file of f may travel in a queue at a restore: the
 * controller sends its own fd of it (ctl_fill), which must be the very
 * file the tasks hold: one the controller opens whole, not one a task
 * opens for itself, the caller's stdio, or a pair's placeholder. */
static bool travels(const struct cd_image *img, const struct cd_fd *f)
{
	const struct cd_fd_ops *ops = cd_fd_ops_of(f->kind);

	if (!ops || !ops->open || ops->by_task || ops->external || f->obj < 3)
		return false;
	return f->kind != CD_FD_UNIX || !f->sk_peer || is_conn(img, f) || is_dgconn(img, f) ||
	       is_pending(img, f);
}

/* The object of the image that is our copy `mine` of an fd in flight:
 * the open file a task of the tree holds too (kcmp). */
static int resolve_one(const struct cd_image *img, const struct sk_desc *s, int mine, int *ret,
                       cd_err *err)
{
	char link[PATH_MAX] = "?", path[64];
	ssize_t n;
	bool same;
	int r;

	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *f = &img->tasks[i].fds[j];
			if ((r = cd_fd_same_file(getpid(), mine, img->tasks[i].pid, f->fd, &same,
			                         err)) < 0)
				return r;
			if (!same)
				continue;
			if (!travels(img, f))
				return SK_REFUSE(s,
				                 "an fd in flight (SCM_RIGHTS) in its queue is pid "
				                 "%d's fd %d (%s), which a restore could not send "
				                 "again: not supported",
				                 SK_ARGS(s), img->tasks[i].pid, f->fd,
				                 cd_fd_ops_of(f->kind) ? cd_fd_ops_of(f->kind)->name
				                                       : "?");
			*ret = f->obj;
			return 0;
		}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mine);
	if ((n = readlink(path, link, sizeof(link) - 1)) > 0)
		link[n] = 0;
	return SK_REFUSE(s,
	                 "an fd in flight (SCM_RIGHTS) in its queue, %s, is held by no task of "
	                 "the tree: not supported (a restore sends again only files the tree "
	                 "holds)",
	                 SK_ARGS(s), link);
}

/* Peeks message m again (its length: a stream's pieces end where the dump
 * cut them) and finds the objects of the fds it carries. */
static int resolve_msg(const struct cd_image *img, const struct sk_desc *s, int fd,
                       const struct cd_fd *d, struct cd_sk_msg *m, uint8_t *buf, cd_err *err)
{
	int fds[CD_SK_FDS_MAX], n, r = 0;
	union peek_ctl ctl;
	struct sockaddr_un from;
	struct msghdr mh;
	struct iovec iov;
	ssize_t got = peek_at(fd, buf, d->sk_type == SOCK_STREAM ? m->len : CD_PIPE_DATA_MAX, &mh,
	                      &from, &ctl, &iov);

	if (got < 0)
		return cd_err_sys(err, (int)-got, SK_FMT ": peek its queue", SK_ARGS(s));
	struct ucred cred;
	n = take_rights(&mh, fds, &cred);
	if ((size_t)got != m->len || n != (int)m->nfds)
		r = cd_err_set(err, EIO, SK_FMT ": its queue changed while the tree was stopped",
		               SK_ARGS(s));
	for (int k = 0; k < n && k < (int)CD_SK_FDS_MAX; k++) {
		if (r == 0)
			r = resolve_one(img, s, fds[k], &m->fds[k], err);
		close(fds[k]);
	}
	return r;
}

static int resolve_queue(const struct cd_image *img, const struct cd_task *t, struct cd_fd *d,
                         cd_err *err)
{
	struct sk_desc s = {.pid = t->pid,
	                    .fd = d->fd,
	                    .ino = (unsigned long)d->sk_ino,
	                    .type = type_name(d->sk_type)};
	int r = 0;

	name_show((const char *)d->sk_addr, d->sk_addrlen, s.name, sizeof(s.name));
	_cleanup_close_ int fd = cd_fd_copy_from(t->pid, d->fd);
	_cleanup_free_ uint8_t *buf = malloc(CD_PIPE_DATA_MAX);
	if (fd < 0)
		return cd_err_sys(err, -fd, SK_FMT ": pidfd_getfd", SK_ARGS(&s));
	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	int zero = 0, off = -1;
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return cd_err_sys(err, errno, SK_FMT ": SO_PEEK_OFF", SK_ARGS(&s));
	for (size_t k = 0; r == 0 && k < d->sk_nqueue; k++)
		r = resolve_msg(img, &s, fd, d, &d->sk_queue[k], buf, err);
	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)) < 0 && r == 0)
		r = cd_err_sys(err, errno, SK_FMT ": SO_PEEK_OFF", SK_ARGS(&s));
	return r;
}

static bool has_rights(const struct cd_fd *d)
{
	for (size_t k = 0; k < d->sk_nqueue; k++)
		if (d->sk_queue[k].nfds)
			return true;
	return false;
}

static bool has_creds(const struct cd_fd *d)
{
	for (size_t k = 0; k < d->sk_nqueue; k++)
		if (d->sk_queue[k].creds)
			return true;
	return false;
}

/* ---- connections waiting to be accepted, once every task is dumped ---- */

/* Where the restore connects the client of inode ino: the index of its
 * first holder in the image and of that fd in it (unix_restore_late goes
 * task by task in image order, fd by fd); false when no task holds it. */
static bool client_at(const struct cd_image *img, int64_t ino, size_t *ti, size_t *fj)
{
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++)
			if (img->tasks[i].fds[j].kind == CD_FD_UNIX &&
			    img->tasks[i].fds[j].sk_ino == ino) {
				*ti = i;
				*fj = j;
				return true;
			}
	return false;
}

#define L_FMT  "pid %d: fd %d (socket:[%" PRId64 "], unix %s %s)"
#define L_ARGS pid, l->fd, l->sk_ino, type_name(l->sk_type), name

/* The connections waiting in listener l's accept queue (sock_diag, in the
 * order accept takes them, each by its client): each client must be a
 * socket of the tree whose first holder comes at a restore with or after
 * the listener's (which binds and listens it first), the clients in the
 * order the restore connects them; each client's sk_peer becomes l. */
static int resolve_listener(struct cd_image *img, pid_t pid, const struct cd_fd *l, cd_err *err)
{
	char name[2 * CD_UNIX_ADDR_MAX], holder[64];
	struct cd_unix_diag dg;
	size_t lt = first_holder(img, l->sk_ino), pt = 0, pj = 0;
	int r;

	name_show((const char *)l->sk_addr, l->sk_addrlen, name, sizeof(name));
	if ((r = cd_unix_diag((uint32_t)l->sk_ino, &dg, err)) < 0)
		return cd_err_wrap(err, L_FMT, L_ARGS);
	for (uint32_t k = 0; k < dg.nicons && k < CD_UNIX_ICONS_MAX; k++) {
		size_t ti, fj;
		if (!dg.icons[k])
			return cd_err_set(err, EOPNOTSUPP,
			                  L_FMT
			                  ": a connection waits to be accepted whose client "
			                  "has closed: a restore could not make it again; accept "
			                  "it first",
			                  L_ARGS);
		if (!client_at(img, dg.icons[k], &ti, &fj)) {
			holder_show(dg.icons[k], holder, sizeof(holder));
			return cd_err_set(err, EOPNOTSUPP,
			                  L_FMT
			                  ": a connection waits to be accepted from "
			                  "socket:[%u]%s outside the checkpoint: a restore could "
			                  "not bring its client back. Dump the tree that holds "
			                  "both ends, or accept it first",
			                  L_ARGS, dg.icons[k], holder);
		}
		if (ti < lt || (k && (ti < pt || (ti == pt && fj <= pj))))
			return cd_err_set(err, EOPNOTSUPP,
			                  L_FMT
			                  ": connections wait to be accepted from clients "
			                  "that a restore would connect %s (clients connect in "
			                  "tree order, parents first): not supported",
			                  L_ARGS,
			                  ti < lt ? "before the listener listens (a listener of a "
			                            "child)"
			                          : "in another order than accept takes them");
		pt = ti;
		pj = fj;
		for (size_t i = 0; i < img->ntasks; i++)
			for (size_t j = 0; j < img->tasks[i].nfds; j++) {
				struct cd_fd *c = &img->tasks[i].fds[j];
				if (c->kind == CD_FD_UNIX && c->sk_ino == dg.icons[k])
					c->sk_peer = l->sk_ino;
			}
	}
	return 0;
}

/* A client check_state let through as waiting to be accepted that no
 * listener of the tree holds in its queue: a server outside the tree. */
static int check_unresolved(const struct cd_task *t, const struct cd_fd *d, cd_err *err)
{
	char name[2 * CD_UNIX_ADDR_MAX];
	struct cd_unix_diag dg;

	if (d->sk_peer || d->sk_listen || d->sk_type == SOCK_DGRAM)
		return 0;
	if (cd_unix_diag((uint32_t)d->sk_ino, &dg, err) < 0)
		return cd_err_wrap(err, "pid %d: fd %d", t->pid, d->fd);
	if (dg.state != TCP_ESTABLISHED || dg.peer)
		return 0;
	name_show((const char *)d->sk_addr, d->sk_addrlen, name, sizeof(name));
	return cd_err_set(err, EOPNOTSUPP,
	                  "pid %d: fd %d (socket:[%" PRId64 "], unix %s %s): connected to a "
	                  "listener that has not accepted it yet, which is not a socket of "
	                  "the tree: a restored socket could not be connected to it. Dump the "
	                  "tree that holds both ends",
	                  t->pid, d->fd, d->sk_ino, type_name(d->sk_type), name);
}

static int resolve_pending(struct cd_image *img, cd_err *err)
{
	int r;

	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *d = &img->tasks[i].fds[j];
			if (d->kind == CD_FD_UNIX && d->sk_listen && first_of_obj(img, d) &&
			    (r = resolve_listener(img, img->tasks[i].pid, d, err)) < 0)
				return r;
		}
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *d = &img->tasks[i].fds[j];
			if (d->kind == CD_FD_UNIX && first_of_obj(img, d) &&
			    (r = check_unresolved(&img->tasks[i], d, err)) < 0)
				return r;
		}
	return 0;
}

int cd_unix_resolve_rights(struct cd_image *img, cd_err *err)
{
	int r;

	/* first: which clients wait to be accepted (their sk_peer) tells
	 * which sockets are connected at a restore */
	if ((r = resolve_pending(img, err)) < 0)
		return r;

	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			struct cd_fd *d = &img->tasks[i].fds[j];
			if (d->kind == CD_FD_UNIX && has_rights(d) &&
			    (r = resolve_queue(img, &img->tasks[i], d, err)) < 0)
				return r;
		}
	return 0;
}

/* The decoder: fds in flight are in a connected socket's queue (a pair's
 * or a connection's), each an open file of the image that may travel. */
static int check_rights(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                        cd_err *err)
{
	/* credentials: a connected socket's queue (the controller sends it
	 * again, ctl_fill), the pid a task of the image */
	for (size_t k = 0; k < d->sk_nqueue; k++)
		if (d->sk_queue[k].creds && (!d->sk_peer || is_dgconn(c->img, d) ||
		                             !in_image(c->img, d->sk_queue[k].cred_pid)))
			return cd_err_set(
			    err, EINVAL,
			    "pid %d: fd %d: field \"sk_queue\": %zu: creds: not in "
			    "the queue of a connected socket, or of pid %d, not a task "
			    "of the image",
			    t->pid, d->fd, k, d->sk_queue[k].cred_pid);
	if (!has_rights(d))
		return 0;
	if (!d->sk_peer || is_dgconn(c->img, d))
		return cd_err_set(
		    err, EINVAL,
		    "pid %d: fd %d: field \"sk_queue\": fds in flight in the queue of "
		    "a socket that is not connected back",
		    t->pid, d->fd);
	for (size_t k = 0; k < d->sk_nqueue; k++)
		for (size_t i = 0; i < d->sk_queue[k].nfds; i++) {
			const struct cd_fd *f = obj_fd(c->img, d->sk_queue[k].fds[i]);
			if (!f || !travels(c->img, f))
				return cd_err_set(
				    err, EINVAL,
				    "pid %d: fd %d: field \"sk_queue\": %zu: fds: %d is "
				    "not an open file of the image that may travel",
				    t->pid, d->fd, k, d->sk_queue[k].fds[i]);
		}
	return 0;
}

const struct cd_fd_ops cd_fd_ops_unix = {.kind = CD_FD_UNIX,
                                         .name = "unix socket",
                                         .has_owner = true,
                                         .claims = unix_claims,
                                         .dump = unix_dump,
                                         .open = unix_open,
                                         .open_done = conn_open_done,
                                         .restore = unix_restore,
                                         .restore_late = unix_restore_late,
                                         .check = unix_check};
