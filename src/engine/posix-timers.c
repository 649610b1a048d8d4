/* POSIX timers (timer_create). The dump lists them from /proc/PID/timers
 * (id, signal, sigev_value, notification, clock) and asks the task for what
 * is left of each (timer_gettime). The restore creates them again with the
 * same ids (prctl PR_TIMER_CREATE_RESTORE_IDS: timer_create then takes the
 * id it is given) and arms them for the time that was left. The interval
 * timers (setitimer) are the other "timers" module, in signals.c. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

/* Linux 6.14; Debian 12's headers are older. */
#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS     77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON  1
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif

#define SIGEVENT_SIZE   64 /* struct sigevent in the kernel's layout */
#define ITIMERSPEC_SIZE 32

/* Whether this kernel creates a timer with a given id: probed once by
 * the engine (probe.c; a test makes it say no with the fault point
 * "no-timer-ids"). */
static bool restore_ids_supported(void)
{
	return !cd_fault("no-timer-ids") && cd_probe_ok("timer ids");
}

static const char *clock_name(int clock)
{
	switch (clock) {
	case CLOCK_REALTIME:
		return "CLOCK_REALTIME";
	case CLOCK_MONOTONIC:
		return "CLOCK_MONOTONIC";
	case CLOCK_BOOTTIME:
		return "CLOCK_BOOTTIME";
	case CLOCK_REALTIME_ALARM:
		return "CLOCK_REALTIME_ALARM";
	case CLOCK_BOOTTIME_ALARM:
		return "CLOCK_BOOTTIME_ALARM";
	case CLOCK_TAI:
		return "CLOCK_TAI";
	default:
		return clock < 0 ? "a CPU clock" : "an unknown clock";
	}
}

/* The clocks the restore recreates: the wall and monotonic ones, and the
 * CPU clocks of the task itself (the kernel records them as ~pid << 3 |
 * which, pid 0 being "self"). An alarm clock needs CAP_WAKE_ALARM, which
 * the restored task may not have; a CPU clock of another process would be
 * another process's, or none, after a restore. */
static int check_clock(const struct cd_task *t, int id, int clock, cd_err *err)
{
	if (clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME ||
	    clock == CLOCK_TAI)
		return 0;
	if (clock < 0 && (clock & 3) != 3) {
		pid_t of = (pid_t)(~clock >> 3);
		if (of == 0 || of == t->pid)
			return 0;
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: POSIX timer %d counts the CPU time of pid %d: timers on "
		                  "another process's CPU clock are not supported",
		                  t->pid, id, of);
	}
	return cd_err_set(err, EOPNOTSUPP, "pid %d: POSIX timer %d on %s (%d) is not supported",
	                  t->pid, id, clock_name(clock), clock);
}

/* "notify: signal/pid.42", "signal/tid.42" or "none/pid.42". */
static int parse_notify(const struct cd_task *t, struct cd_posix_timer *pt, const char *s,
                        cd_err *err)
{
	char how[16], whom[8];
	int pid;

	if (sscanf(s, "%15[a-z]/%7[a-z].%d", how, whom, &pid) != 3)
		return cd_err_set(err, EINVAL, "pid %d: POSIX timer %d: bad notify line \"%s\"",
		                  t->pid, pt->id, s);
	if (!strcmp(how, "signal"))
		pt->notify = SIGEV_SIGNAL;
	else if (!strcmp(how, "none"))
		pt->notify = SIGEV_NONE;
	else
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: POSIX timer %d: notification \"%s\" is not supported",
		                  t->pid, pt->id, how);
	if (!strcmp(whom, "tid"))
		pt->notify |= SIGEV_THREAD_ID;
	pt->tid = pid;
	/* a timer aimed at one of the task's threads: made once it exists */
	for (size_t i = 0; (pt->notify & SIGEV_THREAD_ID) && i < t->nthreads; i++)
		if (t->threads[i].tid == pid)
			return 0;
	if (pid != t->pid)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: POSIX timer %d notifies pid %d, not the task itself: "
		                  "not supported",
		                  t->pid, pt->id, pid);
	return 0;
}

/* One "ID:" block of /proc/PID/timers into pt (the id read already). */
static int parse_timer(FILE *f, const struct cd_task *t, struct cd_posix_timer *pt, cd_err *err)
{
	char line[256];
	int got = 0, r;

	while (got < 3 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "signal: ", 8)) {
			if (sscanf(line + 8, "%d/%" SCNx64, &pt->signo, &pt->value) != 2)
				break;
			got++;
		} else if (!strncmp(line, "notify: ", 8)) {
			if ((r = parse_notify(t, pt, line + 8, err)) < 0)
				return r;
			got++;
		} else if (!strncmp(line, "ClockID: ", 9)) {
			if (sscanf(line + 9, "%d", &pt->clock) != 1)
				break;
			got++;
		}
	}
	if (got != 3)
		return cd_err_set(err, EINVAL, "pid %d: POSIX timer %d: unexpected /proc/%d/timers",
		                  t->pid, pt->id, t->pid);
	if ((r = check_clock(t, pt->id, pt->clock, err)) < 0)
		return r;
	/* a SIGEV_NONE timer keeps whatever number it was given */
	if (pt->signo < 0 || pt->signo > CD_NSIG || (pt->notify != SIGEV_NONE && !pt->signo))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: POSIX timer %d: signal %d not supported", t->pid, pt->id,
		                  pt->signo);
	return 0;
}

static int add_timer(struct cd_task *t, size_t *cap, cd_err *err)
{
	if (t->ntimers == CD_MAX_TIMERS)
		return cd_err_set(err, E2BIG, "pid %d: more than %u POSIX timers", t->pid,
		                  CD_MAX_TIMERS);
	if (t->ntimers < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	struct cd_posix_timer *n = realloc(t->timers, ncap * sizeof(*n));
	if (!n)
		return cd_err_set(err, ENOMEM, "out of memory");
	t->timers = n;
	*cap = ncap;
	return 0;
}

static int read_timers(struct cd_task *t, cd_err *err)
{
	char path[64], line[256];
	size_t cap = 0;
	int id, r;

	snprintf(path, sizeof(path), "/proc/%d/timers", t->pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return cd_err_sys(err, errno, "open %s", path);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "ID: %d", &id) != 1)
			continue;
		if ((r = add_timer(t, &cap, err)) < 0)
			return r;
		struct cd_posix_timer *pt = &t->timers[t->ntimers];
		memset(pt, 0, sizeof(*pt));
		pt->id = id;
		if ((r = parse_timer(f, t, pt, err)) < 0)
			return r;
		t->ntimers++;
	}
	return 0;
}

static int posix_timers_dump(struct cd_dump_ctx *ctx, struct cd_task *t, cd_err *err)
{
	int64_t spec[4];
	int r;

	if ((r = read_timers(t, err)) < 0)
		return r;
	if (t->ntimers && !restore_ids_supported())
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: has %zu POSIX timers, and this kernel cannot create a "
		                  "timer with a given id (no PR_TIMER_CREATE_RESTORE_IDS, Linux "
		                  "6.14)",
		                  t->pid, t->ntimers);
	for (size_t i = 0; i < t->ntimers; i++) {
		struct cd_posix_timer *pt = &t->timers[i];
		r = cd_call_ok(ctx->inj, "timer_gettime", SYS_timer_gettime, (uint64_t)pt->id,
		               ctx->scratch, 0, 0, 0, 0, NULL, err);
		if (r >= 0)
			r = cd_inject_read_mem(ctx->inj, ctx->scratch, spec, sizeof(spec), err);
		if (r < 0)
			return cd_err_wrap(err, "pid %d: POSIX timer %d", t->pid, pt->id);
		pt->isec = spec[0];
		pt->insec = spec[1];
		pt->vsec = spec[2];
		pt->vnsec = spec[3];
	}
	return 0;
}

/* In the task, with restore ids on: timer_create takes the id it finds at
 * the id pointer. */
static int create_timer(struct cd_restore_ctx *ctx, const struct cd_task *t,
                        const struct cd_posix_timer *pt, cd_err *err)
{
	uint8_t sev[SIGEVENT_SIZE] = {0};
	int32_t signo = pt->signo, notify = pt->notify, tid = pt->tid, got = -1;
	uint64_t at_id = ctx->data + SIGEVENT_SIZE;
	int r;

	memcpy(sev, &pt->value, 8);
	memcpy(sev + 8, &signo, 4);
	memcpy(sev + 12, &notify, 4);
	memcpy(sev + 16, &tid, 4); /* _sigev_un._tid, read with SIGEV_THREAD_ID */
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, sev, sizeof(sev), err)) < 0 ||
	    (r = cd_inject_write_mem(ctx->inj, at_id, &pt->id, sizeof(pt->id), err)) < 0 ||
	    (r = cd_call_ok(ctx->inj, "timer_create", SYS_timer_create,
	                    (uint64_t)(int64_t)pt->clock, ctx->data, at_id, 0, 0, 0, NULL, err)) <
	        0 ||
	    (r = cd_inject_read_mem(ctx->inj, at_id, &got, sizeof(got), err)) < 0)
		return r;
	if (got != pt->id)
		return cd_err_set(err, EIO, "timer_create gave id %d", got);
	return 0;
}

/* Relative: the time that was left at the dump is left now. */
static int arm_timer(struct cd_restore_ctx *ctx, const struct cd_posix_timer *pt, cd_err *err)
{
	const int64_t spec[4] = {pt->isec, pt->insec, pt->vsec, pt->vnsec};
	int r;

	if (!pt->vsec && !pt->vnsec)
		return 0; /* disarmed, as created */
	if ((r = cd_inject_write_mem(ctx->inj, ctx->data, spec, sizeof(spec), err)) < 0)
		return r;
	return cd_call_ok(ctx->inj, "timer_settime", SYS_timer_settime, (uint64_t)pt->id, 0,
	                  ctx->data, 0, 0, 0, NULL, err);
}

static int set_restore_ids(struct cd_restore_ctx *ctx, unsigned long on, cd_err *err)
{
	return cd_call_ok(ctx->inj, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", SYS_prctl,
	                  PR_TIMER_CREATE_RESTORE_IDS, on, 0, 0, 0, 0, NULL, err);
}

/* Runs after the credentials, so the kernel checks the timers against the
 * task's own rights and limits. */
static int posix_timers_restore(struct cd_restore_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	int r;

	if (!t->ntimers)
		return 0;
	if ((r = set_restore_ids(ctx, PR_TIMER_CREATE_RESTORE_IDS_ON, err)) < 0)
		return r;
	/* /proc/PID/timers lists the newest first: created oldest first, they
	 * list as they did */
	for (size_t i = t->ntimers; r >= 0 && i-- > 0;)
		if ((r = create_timer(ctx, t, &t->timers[i], err)) < 0)
			r = cd_err_wrap(err, "POSIX timer %d", t->timers[i].id);
	if (r < 0)
		return r;
	if ((r = set_restore_ids(ctx, PR_TIMER_CREATE_RESTORE_IDS_OFF, err)) < 0)
		return r;
	for (size_t i = 0; i < t->ntimers; i++)
		if ((r = arm_timer(ctx, &t->timers[i], err)) < 0)
			return cd_err_wrap(err, "POSIX timer %d", t->timers[i].id);
	return 0;
}

const struct cd_module cd_mod_posix_timers = {
    .name = "posix-timers", .dump = posix_timers_dump, .restore = posix_timers_restore};
