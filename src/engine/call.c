/* Helpers shared by the modules: injected calls with error context, fault
 * injection for tests, the guard the entry points run under, stats and
 * progress. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/internal.h"

bool cd_fault(const char *point)
{
	const char *f = getenv("CEDANA_ENGINE_FAULT");

	return f && !strcmp(f, point);
}

int cd_fault_stall(const char *point, cd_err *err)
{
	int r = 0;

	for (int i = 0; cd_fault(point) && i < 600 && r == 0; i++) {
		r = cd_check_cancel(err);
		usleep(50000);
	}
	return r;
}

int cd_call(cd_inject *inj, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
            uint64_t a4, uint64_t a5, long *ret, cd_err *err)
{
	const uint64_t args[6] = {a0, a1, a2, a3, a4, a5};

	return cd_inject_syscall(inj, nr, args, ret, err);
}

int cd_call_ok(cd_inject *inj, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
               uint64_t a3, uint64_t a4, uint64_t a5, long *ret, cd_err *err)
{
	long v;
	int r = cd_call(inj, nr, a0, a1, a2, a3, a4, a5, &v, err);

	if (r < 0)
		return r;
	if (v < 0 && v > -4096)
		return cd_err_sys(err, (int)-v, "%s", what);
	if (ret)
		*ret = v;
	return 0;
}

void cd_sigchld_default(struct sigaction *saved)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, saved);
}

void cd_sigchld_restore(const struct sigaction *saved)
{
	sigaction(SIGCHLD, saved, NULL);
}

uint64_t cd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t cancelled;

void cd_engine_cancel(void)
{
	cancelled = 1;
}

int cd_check_cancel(cd_err *err)
{
	if (cancelled)
		return cd_err_set(err, ECANCELED, "cancelled (the request or the daemon is gone)");
	return 0;
}

/* Often enough for a progress line, rarely enough to cost nothing. */
#define PROGRESS_STEP (4u << 20)

void cd_progress_add(struct cd_progress *p, uint64_t bytes)
{
	p->done += bytes;
	/* an estimate may fall short: never report more done than total */
	if (p->done > p->total)
		p->total = p->done;
	if (p->fn && p->done - p->reported >= PROGRESS_STEP) {
		p->reported = p->done;
		p->fn(p->stage, p->done, p->total, p->userdata);
	}
}

void cd_progress_end(struct cd_progress *p)
{
	p->total = p->done;
	if (p->fn)
		p->fn(p->stage, p->done, p->total, p->userdata);
}
