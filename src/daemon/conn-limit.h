/* Who may hold how many connections: a thread each, and libmicrohttpd's
 * table is finite, so one user opening idle connections could lock out
 * everyone else, root included. Root (and tcp, which acts as root) is not
 * limited; every other uid gets CONN_PER_UID_MAX at a time, all of them
 * together CONN_NONROOT_MAX. A connection over the limit, or whose peer
 * credentials cannot be read, is shut down as soon as it is accepted. */
#pragma once

#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#define CONN_PER_UID_MAX 64
#define CONN_NONROOT_MAX 512
/* Seconds a connection may sit idle while its request is read, or between
 * requests; not while a request runs (a dump may take minutes). */
#define CONN_IDLE_TIMEOUT_S 30

struct conn_uid_count {
	uid_t uid;
	unsigned n;
};

struct conn_limit {
	pthread_mutex_t lock;
	struct conn_uid_count *counts;
	size_t len, cap;
	unsigned nonroot;
};

void conn_limit_init(struct conn_limit *cl);
void conn_limit_destroy(struct conn_limit *cl);
/* For MHD_OPTION_NOTIFY_CONNECTION, with cls the conn_limit. */
void conn_limit_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                       enum MHD_ConnectionNotificationCode toe);
