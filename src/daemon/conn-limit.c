#include "daemon/conn-limit.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/mhd-dl.h"
#include "shared/log.h"

void conn_limit_init(struct conn_limit *cl)
{
	memset(cl, 0, sizeof(*cl));
	pthread_mutex_init(&cl->lock, NULL);
}

void conn_limit_destroy(struct conn_limit *cl)
{
	free(cl->counts);
	pthread_mutex_destroy(&cl->lock);
}

/* Called with the lock held; NULL when out of memory. */
static struct conn_uid_count *slot(struct conn_limit *cl, uid_t uid)
{
	for (size_t i = 0; i < cl->len; i++)
		if (cl->counts[i].uid == uid)
			return &cl->counts[i];
	if (cl->len == cl->cap) {
		size_t cap = cl->cap ? cl->cap * 2 : 16;
		struct conn_uid_count *n = realloc(cl->counts, cap * sizeof(*n));

		if (!n)
			return NULL;
		cl->counts = n;
		cl->cap = cap;
	}
	cl->counts[cl->len] = (struct conn_uid_count){.uid = uid};
	return &cl->counts[cl->len++];
}

/* Whether a new connection of uid is allowed; counts it if so. */
static bool take(struct conn_limit *cl, uid_t uid)
{
	struct conn_uid_count *c;
	bool ok = false;

	pthread_mutex_lock(&cl->lock);
	c = slot(cl, uid);
	if (c && c->n < CONN_PER_UID_MAX && cl->nonroot < CONN_NONROOT_MAX) {
		c->n++;
		cl->nonroot++;
		ok = true;
	}
	pthread_mutex_unlock(&cl->lock);
	return ok;
}

static void give_back(struct conn_limit *cl, uid_t uid)
{
	struct conn_uid_count *c;

	pthread_mutex_lock(&cl->lock);
	c = slot(cl, uid);
	if (c && c->n) {
		c->n--;
		cl->nonroot--;
		if (!c->n) /* keep the table as small as the set of connected users */
			*c = cl->counts[--cl->len];
	}
	pthread_mutex_unlock(&cl->lock);
}

/* The peer's uid on a unix socket; 0 for tcp (acts as root); -1 when unknown. */
static int64_t peer_uid(int fd)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		return -1;
	if (sa.ss_family != AF_UNIX)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	return cred.uid;
}

/* socket_context holds uid + 1 for a counted connection, NULL otherwise. */
void conn_limit_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe)
{
	struct conn_limit *cl = cls;
	const union MHD_ConnectionInfo *info;
	int64_t uid;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if (*socket_context)
			give_back(cl, (uid_t)((uintptr_t)*socket_context - 1));
		*socket_context = NULL;
		return;
	}
	*socket_context = NULL;
	info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!info)
		return;
	uid = peer_uid(info->connect_fd);
	if (uid == 0)
		return;
	if (uid > 0 && take(cl, (uid_t)uid)) {
		*socket_context = (void *)(uintptr_t)(uid + 1);
		return;
	}
	if (uid < 0)
		log_warn("connection refused: cannot read the peer's credentials: %m");
	else
		log_debug("connection of uid %lld refused: over the limit of %d", (long long)uid,
		          CONN_PER_UID_MAX);
	/* MHD closes it at once: the peer is gone before it can send a request */
	shutdown(info->connect_fd, SHUT_RDWR);
}
