/* Helpers shared by the modules: injected calls with error context, fault
 * injection for tests, the guard the entry points run under, stats and
 * progress. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

#define CD_PR_SET_MEMORY_MERGE 67 /* Linux 6.4, newer than the installed headers */

/* Calls that may change a mapping's VmFlags and nothing /proc/PID/maps
 * shows: a listing kept by the dump's cache (proc.c) is stale after them.
 * A range, a protection or a name that changes shows in maps; the
 * userfaultfd registrations are made by dirty.c, which says so itself. */
static bool changes_vmflags(long nr, uint64_t a0)
{
	switch (nr) {
	case SYS_madvise:
	case SYS_process_madvise:
	case SYS_mlock:
	case SYS_mlock2:
	case SYS_munlock:
	case SYS_mlockall:
	case SYS_munlockall:
	case SYS_pkey_mprotect:
	case SYS_mbind:
		return true;
	case SYS_prctl: /* the dumps' many PR_GET_* change nothing */
		return a0 == CD_PR_SET_MEMORY_MERGE;
	default:
		return false;
	}
}

int cd_call(cd_inject *inj, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
            uint64_t a4, uint64_t a5, long *ret, cd_err *err)
{
	const uint64_t args[6] = {a0, a1, a2, a3, a4, a5};

	if (changes_vmflags(nr, a0))
		cd_proc_maps_forget(0);
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

/* The dump's batch area is its scratch page. */
_Static_assert(CD_BATCH_AREA <= CD_PAGE_SIZE, "a batch fits the dump's scratch page");

/* Empty, for the next calls. */
static void batch_reset(struct cd_batch *b)
{
	b->n = b->used = 0;
	b->overflow = false;
}

void cd_batch_init(struct cd_batch *b, cd_inject *inj, uint64_t code, uint64_t area)
{
	b->inj = inj;
	b->code = code;
	b->area = area;
	b->prefix = NULL;
	b->call_ctx[0] = '\0';
	batch_reset(b);
}

/* The buffer follows the entries in the task's area. */
static uint64_t buf_addr(const struct cd_batch *b)
{
	return b->area + CD_BATCH_MAX * sizeof(struct cd_inject_entry);
}

static size_t aligned_used(const struct cd_batch *b)
{
	return (b->used + 7) & ~(size_t)7;
}

int cd_batch_reserve(struct cd_batch *b, size_t calls, size_t bytes, cd_err *err)
{
	size_t room = CD_BATCH_BUF - aligned_used(b);

	if (calls <= CD_BATCH_MAX - b->n && bytes + 8 <= room)
		return 0;
	if (calls > CD_BATCH_MAX || bytes + 8 > CD_BATCH_BUF)
		return cd_err_set(err, E2BIG, "more than a batch of injected calls holds");
	int r = cd_call_batch(b, err);
	b->used = 0; /* what it read went to its functions */
	return r;
}

uint64_t cd_batch_buf(struct cd_batch *b, const void *data, size_t len)
{
	size_t at = aligned_used(b);

	if (len > CD_BATCH_BUF - at) {
		b->overflow = true;
		return 0;
	}
	if (data)
		memcpy(b->buf + at, data, len);
	else
		memset(b->buf + at, 0, len);
	b->used = at + len;
	return buf_addr(b) + at;
}

void cd_batch_add(struct cd_batch *b, const char *what, long nr, uint64_t a0, uint64_t a1,
                  uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, long *ret)
{
	if (changes_vmflags(nr, a0))
		cd_proc_maps_forget(0);
	if (b->n == CD_BATCH_MAX) {
		b->overflow = true;
		return;
	}
	b->c[b->n] = (struct cd_batch_call){.what = what, .prefix = b->prefix, .ret = ret};
	b->e[b->n] = (struct cd_inject_entry){.nr = nr,
	                                      .flags = what ? CD_INJECT_STOP_ON_ERROR : 0,
	                                      .args = {a0, a1, a2, a3, a4, a5}};
	b->n++;
}

void cd_batch_then(struct cd_batch *b, cd_batch_fn fn, void *arg, const void *arg2, uint64_t out,
                   size_t out_len)
{
	if (!b->n || b->overflow)
		return;
	struct cd_batch_call *c = &b->c[b->n - 1];
	c->then = fn;
	c->arg = arg;
	c->arg2 = arg2;
	c->out = out;
	c->out_len = out_len;
}

void cd_batch_read(const struct cd_batch *b, uint64_t addr, void *out, size_t len)
{
	memcpy(out, b->buf + (addr - buf_addr(b)), len);
}

static bool failed(int64_t v)
{
	return v < 0 && v > -4096;
}

/* Test hook (CEDANA_ENGINE_FAULT=batch-call): the first checked call of
 * the second half fails (an unknown syscall number: ENOSYS). */
static void fault_middle(struct cd_batch *b)
{
	for (size_t i = b->n / 2; b->n >= 3 && i < b->n; i++)
		if (b->c[i].what) {
			b->e[i].nr = -1;
			return;
		}
}

/* Without the runner: the same calls, one round trip each. */
static int run_one_by_one(struct cd_batch *b, size_t *ran, cd_err *err)
{
	int r;

	for (*ran = 0; *ran < b->n; (*ran)++) {
		struct cd_inject_entry *e = &b->e[*ran];
		long v;
		if ((r = cd_inject_syscall(b->inj, e->nr, e->args, &v, err)) < 0)
			return r;
		e->ret = v;
		if ((e->flags & CD_INJECT_STOP_ON_ERROR) && failed(v)) {
			(*ran)++;
			break;
		}
	}
	return 0;
}

static int run_batched(struct cd_batch *b, size_t *ran, cd_err *err)
{
	const size_t elen = b->n * sizeof(b->e[0]);
	int r;

	if ((r = cd_inject_write_mem(b->inj, b->area, b->e, elen, err)) < 0 ||
	    (r = cd_inject_batch(b->inj, b->code, b->area, b->n, ran, err)) < 0)
		return r;
	return cd_inject_read_mem(b->inj, b->area, b->e, *ran * sizeof(b->e[0]), err);
}

/* Call i's result, in order, as if it had run alone: its check, its
 * caller's copy, its function. */
static int finish_call(struct cd_batch *b, size_t i, cd_err *err)
{
	const struct cd_batch_call *c = &b->c[i];
	long v = (long)b->e[i].ret;
	int r = 0;

	if (c->what && failed(v)) {
		if (b->call_ctx[0])
			r = cd_err_sys(err, (int)-v, "%s: %s", b->call_ctx, c->what);
		else
			r = cd_err_sys(err, (int)-v, "%s", c->what);
	} else {
		if (c->ret)
			*c->ret = v;
		if (c->then)
			r = c->then(c->arg, c->arg2, v,
			            c->out ? b->buf + (c->out - buf_addr(b)) : NULL, err);
	}
	if (r < 0 && c->prefix)
		return cd_err_wrap(err, "%s", c->prefix);
	return r;
}

static int run_batch(struct cd_batch *b, cd_err *err)
{
	size_t ran = 0;
	int r;

	if (b->overflow)
		return cd_err_set(err, E2BIG, "more than a batch of injected calls holds");
	if (!b->n)
		return 0;
	if (cd_fault("batch-call"))
		fault_middle(b);
	if (b->used && (r = cd_inject_write_mem(b->inj, buf_addr(b), b->buf, b->used, err)) < 0)
		return r;
	if (b->code && b->n >= 2 && cd_inject_batch_ok(b->inj))
		r = run_batched(b, &ran, err);
	else
		r = run_one_by_one(b, &ran, err);
	if (r < 0)
		return r;
	if (b->used && (r = cd_inject_read_mem(b->inj, buf_addr(b), b->buf, b->used, err)) < 0)
		return r;
	for (size_t i = 0; i < ran; i++)
		if ((r = finish_call(b, i, err)) < 0)
			return r;
	if (ran < b->n)
		return cd_err_set(err, EPROTO, "pid %d: %zu of %zu injected calls ran",
		                  cd_inject_pid(b->inj), ran, b->n);
	return 0;
}

int cd_call_batch(struct cd_batch *b, cd_err *err)
{
	int r = run_batch(b, err);

	/* the buffer stays readable until the next call is added */
	b->n = 0;
	b->overflow = false;
	if (r < 0)
		b->used = 0;
	return r;
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
