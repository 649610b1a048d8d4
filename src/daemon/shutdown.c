/* Stopping the HTTP server waits for every request thread, and a dump or
 * restore thread waits for its worker, which only the reaper collects: so
 * the reaping goes on while the server stops, and workers still running
 * after a grace period (or at a second signal) are cancelled, then after
 * another killed, so that SIGTERM always ends the daemon. */
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

#include "daemon/mhd-dl.h"
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

/* The next step against workers still running: first SIGTERM, which
 * cancels their work through its failure path (the dumped tree runs on, a
 * half-made restore is killed), then SIGKILL. */
static void stop_workers(struct job_manager *jm, int *stage)
{
	int sig = *stage == 0 ? SIGTERM : SIGKILL;
	size_t n = job_manager_kill_workers(jm, sig);

	if (n)
		log_warn("shutdown: %s %zu dump/restore worker(s) still running",
		         sig == SIGTERM ? "cancelled" : "killed", n);
	if (*stage < 2)
		(*stage)++;
}

/* Reaps until done_fd fires; at each grace deadline, or at another signal,
 * workers are stopped one step harder. */
static void reap_until_stopped(int sigfd, int done_fd, struct job_manager *jm)
{
	int64_t deadline = now_ms() + WORKER_GRACE_MS;
	int stage = 0;

	for (;;) {
		struct pollfd p[2] = {{.fd = done_fd, .events = POLLIN},
		                      {.fd = sigfd, .events = POLLIN}};
		int64_t left = stage == 2 ? -1 : deadline - now_ms();
		struct signalfd_siginfo si;
		int n;

		if (stage < 2 && left <= 0) {
			stop_workers(jm, &stage);
			deadline = now_ms() + WORKER_GRACE_MS;
			continue;
		}
		n = poll(p, 2, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("shutdown: poll: %m");
			job_manager_kill_workers(jm, SIGKILL);
			return;
		}
		if (p[0].revents)
			return;
		if (!p[1].revents)
			continue;
		if (read(sigfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo != SIGCHLD && stage < 2) {
			stop_workers(jm, &stage);
			deadline = now_ms() + WORKER_GRACE_MS;
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
		job_manager_kill_workers(jm, SIGKILL);
		MHD_stop_daemon(mhd);
		return;
	}
	job_manager_reap(jm);
	reap_until_stopped(sigfd, done_fd, jm);
	pthread_join(t, NULL);
	job_manager_reap(jm);
}
