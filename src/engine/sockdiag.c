/* NETLINK_SOCK_DIAG for unix sockets: one exact request per socket (by
 * inode, no cookie), answered with the attributes the dump needs. The
 * kernel answers only for sockets of the asker's network namespace. */
#include "engine/sockdiag.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shared/cleanup.h"

#define SHOW                                                                                       \
	(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN)

static int ask(int nl, uint32_t ino, cd_err *err)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req = {
	    .h = {.nlmsg_len = sizeof(req),
	          .nlmsg_type = SOCK_DIAG_BY_FAMILY,
	          .nlmsg_flags = NLM_F_REQUEST,
	          .nlmsg_seq = 1},
	    .r = {.sdiag_family = AF_UNIX,
	          .udiag_states = ~0u,
	          .udiag_ino = ino,
	          .udiag_show = SHOW,
	          .udiag_cookie = {~0u, ~0u}},
	};
	struct sockaddr_nl to = {.nl_family = AF_NETLINK};

	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return cd_err_sys(err, errno, "sock_diag: send");
	return 0;
}

/* One attribute of the answer into ret. */
static void take_attr(const struct nlattr *a, struct cd_unix_diag *ret)
{
	const void *p = (const char *)a + NLA_HDRLEN;
	size_t len = a->nla_len - NLA_HDRLEN;

	switch (a->nla_type) {
	case UNIX_DIAG_NAME:
		ret->namelen = len < sizeof(ret->name) ? len : sizeof(ret->name);
		memcpy(ret->name, p, ret->namelen);
		/* a path may come with its NUL: the name is what precedes it */
		if (ret->namelen && ret->name[0])
			ret->namelen = strnlen(ret->name, ret->namelen);
		break;
	case UNIX_DIAG_VFS:
		if (len >= sizeof(struct unix_diag_vfs)) {
			const struct unix_diag_vfs *v = p;
			ret->has_vfs = true;
			ret->vfs_ino = v->udiag_vfs_ino;
			ret->vfs_dev = v->udiag_vfs_dev;
		}
		break;
	case UNIX_DIAG_PEER:
		if (len >= sizeof(uint32_t))
			memcpy(&ret->peer, p, sizeof(uint32_t));
		break;
	case UNIX_DIAG_ICONS:
		ret->nicons = (uint32_t)(len / sizeof(uint32_t));
		memcpy(ret->icons, p,
		       (ret->nicons < CD_UNIX_ICONS_MAX ? ret->nicons : CD_UNIX_ICONS_MAX) *
		           sizeof(uint32_t));
		break;
	case UNIX_DIAG_RQLEN:
		if (len >= sizeof(struct unix_diag_rqlen)) {
			const struct unix_diag_rqlen *q = p;
			ret->rqueue = q->udiag_rqueue;
			ret->wqueue = q->udiag_wqueue;
		}
		break;
	case UNIX_DIAG_SHUTDOWN:
		if (len >= 1)
			ret->shutdown = *(const uint8_t *)p;
		break;
	default:
		break;
	}
}

static int parse(const struct nlmsghdr *h, size_t n, uint32_t ino, struct cd_unix_diag *ret,
                 cd_err *err)
{
	for (; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error == -ENOENT)
				return -ENOENT;
			return cd_err_sys(err, -e->error, "sock_diag: socket:[%u]", ino);
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
		    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
			continue;
		const struct unix_diag_msg *m = NLMSG_DATA(h);
		if (m->udiag_ino != ino)
			continue;
		memset(ret, 0, sizeof(*ret));
		ret->type = m->udiag_type;
		ret->state = m->udiag_state;
		size_t left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
		const struct nlattr *a =
		    (const struct nlattr *)((const char *)m + NLMSG_ALIGN(sizeof(*m)));
		while (left >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left) {
			take_attr(a, ret);
			size_t step = NLA_ALIGN(a->nla_len);
			if (step >= left)
				break;
			left -= step;
			a = (const struct nlattr *)((const char *)a + step);
		}
		return 0;
	}
	return cd_err_set(err, EIO, "sock_diag: socket:[%u]: no answer", ino);
}

int cd_unix_diag(uint32_t ino, struct cd_unix_diag *ret, cd_err *err)
{
	_cleanup_close_ int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	/* aligned for the netlink headers; the answer fits in a page
	 * (the kernel gives up on an exact answer above one) */
	static _Thread_local long buf[8192 / sizeof(long)];
	ssize_t n;
	int r;

	if (nl < 0)
		return cd_err_sys(err, errno, "sock_diag: socket");
	if ((r = ask(nl, ino, err)) < 0)
		return r;
	do
		n = recv(nl, buf, sizeof(buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return cd_err_sys(err, errno, "sock_diag: receive");
	return parse((const struct nlmsghdr *)buf, (size_t)n, ino, ret, err);
}
