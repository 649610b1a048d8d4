/* Stopping the HTTP server waits for every request thread, and a dump or
 * restore thread waits for its worker, which only the reaper collects: so
 * the reaping goes on while the server stops, and workers still running
 * after a grace period (or at a second signal) are killed, so that SIGTERM
 * always ends the daemon. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "daemon/shutdown.h"
#include "shared/cleanup.h"
#include "shared/log.h"

#define WORKER_GRACE_MS 2000

struct stopper {
	struct MHD_Daemon *mhd;
	int done_fd;
};

static void *stop_http(void *arg)
{
	struct stopper *s = arg;
	uint64_t one = 1;

	MHD_stop_daemon(s->mhd);
	if (write(s->done_fd, &one, sizeof(one)) < 0)
		log_warn("shutdown: eventfd: %m");
	return NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kill_workers(struct job_manager *jm)
{
	size_t n = job_manager_kill_workers(jm);

	if (n)
		log_warn("shutdown: killed %zu dump/restore worker(s) still running", n);
}

/* Reaps (and at the deadline, or a second signal, kills workers) until done_fd fires. */
static void reap_until_stopped(int sigfd, int done_fd, struct job_manager *jm)
{
	int64_t deadline = now_ms() + WORKER_GRACE_MS;
	bool killed = false;

	for (;;) {
		struct pollfd p[2] = {{.fd = done_fd, .events = POLLIN},
		                      {.fd = sigfd, .events = POLLIN}};
		int64_t left = killed ? -1 : deadline - now_ms();
		struct signalfd_siginfo si;
		int n;

		if (!killed && left <= 0) {
			kill_workers(jm);
			killed = true;
			continue;
		}
		n = poll(p, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("shutdown: poll: %m");
			kill_workers(jm);
			return;
		}
		if (p[0].revents)
			return;
		if (!p[1].revents)
			continue;
		if (read(sigfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo != SIGCHLD && !killed) {
			kill_workers(jm);
			killed = true;
		}
		job_manager_reap(jm);
	}
}

void daemon_shutdown(struct MHD_Daemon *mhd, int sigfd, struct job_manager *jm)
{
	struct stopper s = {.mhd = mhd};
	_cleanup_close_ int done_fd = eventfd(0, EFD_CLOEXEC);
	pthread_t t;

	s.done_fd = done_fd;
	if (done_fd < 0 || pthread_create(&t, NULL, stop_http, &s) != 0) {
		log_error("shutdown: cannot stop the server in a thread: killing the workers");
		kill_workers(jm);
		MHD_stop_daemon(mhd);
		return;
	}
	job_manager_reap(jm);
	reap_until_stopped(sigfd, done_fd, jm);
	pthread_join(t, NULL);
	job_manager_reap(jm);
}
