/* A deadline for reading a request. libmicrohttpd's connection timeout
 * counts from the last byte read, so a client dripping a byte every few
 * seconds would hold a thread and a connection slot for as long as it
 * likes. Here a request (headers and body) must be read whole within the
 * deadline from the connection's start, or from the end of the request
 * before it on a kept-alive connection; a watchdog thread shuts the socket
 * of a late one down, and libmicrohttpd then closes it. A request that
 * runs (a dump may take minutes) and an attach stream have no deadline. */
#pragma once

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "shared/error.h"

/* Seconds to read a request in; CEDANA_REQUEST_TIMEOUT (1..3600) overrides
 * it, for tests. */
#define CONN_REQUEST_DEADLINE_S 30

struct conn_deadline_entry {
	struct MHD_Connection *conn;
	int fd;
	bool armed;
	struct timespec start;
};

struct conn_deadline {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool stop;
	unsigned seconds;
	struct conn_deadline_entry *entries;
	size_t len, cap;
};

/* Starts the watchdog with a deadline of seconds. */
int conn_deadline_start(struct conn_deadline *cd, unsigned seconds, cd_err *err);
/* Stops it; after libmicrohttpd stopped (its callbacks use cd). */
void conn_deadline_stop(struct conn_deadline *cd);

/* The deadline from the environment (see CONN_REQUEST_DEADLINE_S). */
int conn_deadline_seconds(char **envp, unsigned *ret, cd_err *err);

/* A new connection, armed: its first request is being read. */
void conn_deadline_add(struct conn_deadline *cd, struct MHD_Connection *conn);
void conn_deadline_remove(struct conn_deadline *cd, struct MHD_Connection *conn);
/* armed: reading a request starts now; not armed: a request runs. */
void conn_deadline_arm(struct conn_deadline *cd, struct MHD_Connection *conn, bool armed);
