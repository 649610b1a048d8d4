#include "daemon/conn-deadline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/mhd-dl.h"
#include "shared/log.h"

/* How often the watchdog looks: the deadline holds to within this. */
#define WATCH_PERIOD_NS 200000000L

static double elapsed_s(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* With the lock held. An entry leaves the table (on NOTIFY_CLOSED) before
 * libmicrohttpd closes its fd, so the fd shut down here is still the one. */
static void shut_late(struct conn_deadline *cd)
{
	for (size_t i = 0; i < cd->len; i++) {
		struct conn_deadline_entry *e = &cd->entries[i];

		if (!e->armed || elapsed_s(&e->start) < cd->seconds)
			continue;
		log_info("connection closed: its request was not read within %u s", cd->seconds);
		shutdown(e->fd, SHUT_RDWR);
		e->armed = false;
	}
}

static void *watch(void *arg)
{
	struct conn_deadline *cd = arg;
	struct timespec t;

	pthread_mutex_lock(&cd->lock);
	while (!cd->stop) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += WATCH_PERIOD_NS;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&cd->wake, &cd->lock, &t);
		shut_late(cd);
	}
	pthread_mutex_unlock(&cd->lock);
	return NULL;
}

int conn_deadline_start(struct conn_deadline *cd, unsigned seconds, cd_err *err)
{
	pthread_condattr_t attr;
	int r;

	memset(cd, 0, sizeof(*cd));
	cd->seconds = seconds;
	pthread_mutex_init(&cd->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cd->wake, &attr);
	pthread_condattr_destroy(&attr);
	r = pthread_create(&cd->thread, NULL, watch, cd);
	if (r != 0) {
		pthread_cond_destroy(&cd->wake);
		pthread_mutex_destroy(&cd->lock);
		return cd_err_sys(err, r, "start the request deadline watchdog");
	}
	return 0;
}

void conn_deadline_stop(struct conn_deadline *cd)
{
	pthread_mutex_lock(&cd->lock);
	cd->stop = true;
	pthread_cond_signal(&cd->wake);
	pthread_mutex_unlock(&cd->lock);
	pthread_join(cd->thread, NULL);
	pthread_cond_destroy(&cd->wake);
	pthread_mutex_destroy(&cd->lock);
	free(cd->entries);
}

int conn_deadline_seconds(char **envp, unsigned *ret, cd_err *err)
{
	const char *prefix = "CEDANA_REQUEST_TIMEOUT=";
	char *end;
	long n;

	*ret = CONN_REQUEST_DEADLINE_S;
	for (; envp && *envp; envp++) {
		if (strncmp(*envp, prefix, strlen(prefix)) != 0)
			continue;
		n = strtol(*envp + strlen(prefix), &end, 10);
		if (end == *envp + strlen(prefix) || *end || n < 1 || n > 3600)
			return cd_err_set(err, EINVAL,
			                  "CEDANA_REQUEST_TIMEOUT must be seconds in [1, 3600]");
		*ret = (unsigned)n;
	}
	return 0;
}

/* With the lock held; NULL when conn is not in the table. */
static struct conn_deadline_entry *find(struct conn_deadline *cd, struct MHD_Connection *conn)
{
	for (size_t i = 0; i < cd->len; i++)
		if (cd->entries[i].conn == conn)
			return &cd->entries[i];
	return NULL;
}

/* With the lock held; false when out of memory. */
static bool grow(struct conn_deadline *cd)
{
	size_t cap = cd->cap ? cd->cap * 2 : 64;
	struct conn_deadline_entry *n;

	if (cd->len < cd->cap)
		return true;
	n = realloc(cd->entries, cap * sizeof(*n));
	if (!n)
		return false;
	cd->entries = n;
	cd->cap = cap;
	return true;
}

void conn_deadline_add(struct conn_deadline *cd, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct conn_deadline_entry *e;

	if (!info)
		return;
	pthread_mutex_lock(&cd->lock);
	if (grow(cd)) {
		e = &cd->entries[cd->len++];
		*e = (struct conn_deadline_entry){
		    .conn = conn, .fd = info->connect_fd, .armed = true};
		clock_gettime(CLOCK_MONOTONIC, &e->start);
	} else {
		/* a connection we cannot watch is not served */
		shutdown(info->connect_fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&cd->lock);
}

void conn_deadline_remove(struct conn_deadline *cd, struct MHD_Connection *conn)
{
	struct conn_deadline_entry *e;

	pthread_mutex_lock(&cd->lock);
	e = find(cd, conn);
	if (e)
		*e = cd->entries[--cd->len];
	pthread_mutex_unlock(&cd->lock);
}

void conn_deadline_arm(struct conn_deadline *cd, struct MHD_Connection *conn, bool armed)
{
	struct conn_deadline_entry *e;

	pthread_mutex_lock(&cd->lock);
	e = find(cd, conn);
	if (e) {
		e->armed = armed;
		clock_gettime(CLOCK_MONOTONIC, &e->start);
	}
	pthread_mutex_unlock(&cd->lock);
}
