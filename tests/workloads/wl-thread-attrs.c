/* wl-thread-attrs: per-thread kernel state that the main thread's says nothing about. Besides
 * the main thread (SCHED_OTHER, nice 0, glibc's rseq and robust list), four threads each set
 * their own with sched_setattr on their own tid:
 *   0  SCHED_BATCH, nice 3
 *   1  SCHED_IDLE (whose nice sched_setattr ignores); a robust list head of its own (not glibc's)
 *   2  SCHED_FIFO priority 9 with SCHED_RESET_ON_FORK
 *   3  SCHED_RR priority 4; rseq unregistered (glibc registered it)
 * Before READY each notes its tid, get_robust_list(0) and whether its rseq area (glibc's, at
 * __rseq_offset from its thread pointer) is registered. They wait for the trigger in
 * nanosleep, then check, each on itself: the tid; sched_getattr(tid) gives the policy, flags,
 * nice and priority set; get_robust_list(0) gives the same head and length; rseq: registering
 * glibc's area again fails with EBUSY (registered, at that address, with that length and
 * signature), or for thread 3 succeeds (it was not registered; undone at once). The main thread
 * checks its own rseq and robust list the same way and collects the verdicts. */
#include <pthread.h>
#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#include "wl.h"

#define NTHREADS 4

#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif
#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

struct wl_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

/* struct robust_list_head, spelled out (no glibc header has it). */
struct wl_robust_head {
	void *next;
	long futex_offset;
	void *pending;
};

static const struct {
	uint32_t policy;
	uint64_t flags;
	int nice;
	uint32_t prio;
} want[NTHREADS] = {
    {SCHED_BATCH, 0, 3, 0},
    {SCHED_IDLE, 0, 0, 0},
    {SCHED_FIFO, SCHED_FLAG_RESET_ON_FORK, 0, 9},
    {SCHED_RR, 0, 0, 4},
};

struct thr {
	pthread_t pt;
	int idx;
	pid_t tid;
	void *robust_head;
	size_t robust_len;
	struct wl_robust_head own_head;
	char fail[256];
};

static struct thr thr[NTHREADS];
static pthread_barrier_t set_up;

static pid_t tid_now(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void *rseq_area(void)
{
	return (char *)__builtin_thread_pointer() + __rseq_offset;
}

/* Registers this thread's glibc rseq area: 0 (it was not registered: now it is), or the errno
 * (EBUSY: registered there already). glibc registers 32 bytes; newer ones report a smaller
 * __rseq_size, so both are tried. */
static int rseq_probe(void)
{
	if (syscall(SYS_rseq, rseq_area(), 32, 0, RSEQ_SIG) == 0)
		return 0;
	if (errno == EINVAL && __rseq_size && __rseq_size != 32) {
		if (syscall(SYS_rseq, rseq_area(), __rseq_size, 0, RSEQ_SIG) == 0)
			return 0;
	}
	return errno;
}

static int rseq_unregister(void)
{
	if (syscall(SYS_rseq, rseq_area(), 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == 0)
		return 0;
	if (errno == EINVAL && __rseq_size && __rseq_size != 32)
		return (int)syscall(SYS_rseq, rseq_area(), __rseq_size, RSEQ_FLAG_UNREGISTER,
		                    RSEQ_SIG);
	return -1;
}

static void get_robust(void **head, size_t *len)
{
	if (syscall(SYS_get_robust_list, 0, head, len) < 0)
		wl_fail("get_robust_list: %s", strerror(errno));
}

__attribute__((format(printf, 2, 3))) static void thr_fail(struct thr *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->fail[0])
		return;
	n = snprintf(t->fail, sizeof(t->fail), "thread %d (tid %d): ", t->idx, (int)t->tid);
	va_start(ap, fmt);
	vsnprintf(t->fail + n, sizeof(t->fail) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void set_up_thread(struct thr *t)
{
	struct wl_sched_attr a = {.size = sizeof(a),
	                          .sched_policy = want[t->idx].policy,
	                          .sched_flags = want[t->idx].flags,
	                          .sched_nice = want[t->idx].nice,
	                          .sched_priority = want[t->idx].prio};

	if (syscall(SYS_sched_setattr, t->tid, &a, 0) < 0)
		wl_fail("thread %d: sched_setattr policy %u: %s", t->idx, a.sched_policy,
		        strerror(errno));
	if (t->idx == 1) {
		t->own_head.next = &t->own_head; /* an empty list */
		if (syscall(SYS_set_robust_list, &t->own_head, sizeof(t->own_head)) < 0)
			wl_fail("set_robust_list: %s", strerror(errno));
	}
	if (t->idx == 3 && rseq_unregister() < 0)
		wl_fail("thread 3: rseq unregister: %s", strerror(errno));
	get_robust(&t->robust_head, &t->robust_len);
}

static void check_sched(struct thr *t)
{
	struct wl_sched_attr a;

	memset(&a, 0, sizeof(a));
	if (syscall(SYS_sched_getattr, t->tid, &a, sizeof(a), 0) < 0) {
		thr_fail(t, "sched_getattr: %s", strerror(errno));
		return;
	}
	if (a.sched_policy != want[t->idx].policy || a.sched_flags != want[t->idx].flags ||
	    a.sched_priority != want[t->idx].prio ||
	    (want[t->idx].policy != SCHED_FIFO && want[t->idx].policy != SCHED_RR &&
	     a.sched_nice != want[t->idx].nice))
		thr_fail(t, "policy %u flags %#llx nice %d priority %u, want %u %#llx %d %u",
		         a.sched_policy, (unsigned long long)a.sched_flags, a.sched_nice,
		         a.sched_priority, want[t->idx].policy,
		         (unsigned long long)want[t->idx].flags, want[t->idx].nice,
		         want[t->idx].prio);
}

static void check_robust(struct thr *t)
{
	void *head;
	size_t len;

	get_robust(&head, &len);
	if (head != t->robust_head || len != t->robust_len)
		thr_fail(t, "robust list %p (%zu bytes), want %p (%zu bytes)", head, len,
		         t->robust_head, t->robust_len);
}

/* rseq as noted: registered (EBUSY), or for thread 3 not registered. */
static void check_rseq(struct thr *t)
{
	int r = rseq_probe();

	if (t->idx == 3) {
		if (r == 0) {
			if (rseq_unregister() < 0)
				thr_fail(t, "rseq unregister: %s", strerror(errno));
			return;
		}
		thr_fail(t, "rseq is registered (%s), want none", strerror(r));
		return;
	}
	if (r == 0)
		thr_fail(t, "rseq was not registered");
	else if (r != EBUSY)
		thr_fail(t, "rseq is registered elsewhere or otherwise (%s)", strerror(r));
}

static void *thread_main(void *arg)
{
	struct thr *t = arg;

	t->tid = tid_now();
	set_up_thread(t);
	pthread_barrier_wait(&set_up);
	if (!wl_wait_trigger()) {
		thr_fail(t, "no trigger");
		return NULL;
	}
	if (tid_now() != t->tid)
		thr_fail(t, "tid is now %d", (int)tid_now());
	check_sched(t);
	check_robust(t);
	check_rseq(t);
	return NULL;
}

int main(void)
{
	struct thr self = {.idx = -1};

	wl_init("wl-thread-attrs");
	if (!__rseq_size)
		wl_fail("glibc registered no rseq area (kernel without rseq, or the tunable off)");
	self.tid = tid_now();
	get_robust(&self.robust_head, &self.robust_len);
	if (rseq_probe() != EBUSY)
		wl_fail("the main thread's rseq area is not registered");
	pthread_barrier_init(&set_up, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		thr[i].idx = i;
		if ((errno = pthread_create(&thr[i].pt, NULL, thread_main, &thr[i])))
			wl_fail("pthread_create: %s", strerror(errno));
	}
	pthread_barrier_wait(&set_up);
	for (int i = 0; i < NTHREADS; i++)
		fprintf(stderr, "wl-thread-attrs: thread %d tid %d robust list %p\n", i,
		        (int)thr[i].tid, thr[i].robust_head);
	wl_ready();
	wl_await_trigger();
	check_robust(&self);
	check_rseq(&self);
	if (self.fail[0])
		wl_fail("main %s", self.fail);
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(thr[i].pt, NULL);
		if (thr[i].fail[0])
			wl_fail("%s", thr[i].fail);
	}
	wl_pass();
}
