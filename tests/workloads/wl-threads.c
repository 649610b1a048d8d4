/* wl-threads [N] [nnp|leader-exit]: a process of N threads (default 8, at least 8) with per-thread
 * state, to be checkpointed while they count, wait and sleep. Besides the main thread:
 * - counters (N - 7 of them, at least one): add to their own counter and a shared total under a
 * mutex;
 * - "wl-cond" waits in pthread_cond_wait until the main thread signals after the trigger;
 * - "wl-sleep" sleeps 4 s in one nanosleep (EINTR sleeps on for what is left);
 * - "wl-join" waits in pthread_join for wl-sleep (its clear-tid address wakes it);
 * - "wl-mask" blocks SIGUSR1 and SIGUSR2; the main thread sends it SIGUSR1 with tgkill, which
 *   stays pending on that thread alone (its private queue); and a SIGTRAP the same way (every
 *   thread blocks it): a pending SIGTRAP must not meet the trap that ends the engine's batches
 *   of injected calls;
 * - "wl-altstack" has its own sigaltstack, on which its SIGUSR2 handler must run;
 * - "wl-read" waits in read() on a pipe the main thread writes to after the trigger;
 * - "wl-epoll" waits in epoll_wait() on an eventfd the main thread adds 1 to after the trigger
 *   (it is seen blocked in epoll_wait before READY).
 * A POSIX timer (SIGEV_THREAD_ID) fires every 10 ms at the first counter alone.
 * Every thread has a name (pthread_setname_np), its own nice value, a TLS value and, with two
 * CPUs or more, an affinity of one CPU that alternates. After the trigger each checks its tid,
 * name, nice, affinity and TLS are what they were, the counters carried on (above what they
 * were at READY, their sum the total), and the main thread collects the verdicts.
 * With "nnp" the first counter sets no_new_privs in itself alone (a credential of its own,
 * which a dump refuses by name). With "leader-exit" the main thread exits (pthread_exit) after
 * READY and another thread does the rest: a task the dump refuses by name. */
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#include "wl.h"

#define MIN_THREADS 9
#define MAX_THREADS 1024
#define SLEEP_S     4
#define ALT_SIZE    (64 * 1024)

enum role { COUNTER, COND, SLEEP, JOIN, MASK, ALTSTACK, READ, EPOLL };

struct thr {
	pthread_t pt;
	enum role role;
	int idx;
	pid_t tid;
	char name[16];
	int nice;
	int cpu; /* -1: no affinity set */
	uint64_t counter, at_ready;
	char fail[200];
};

static struct thr thr[MAX_THREADS];
static int nthr, ncpus;
static bool nnp, leader_exit;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool go_cond, stop;
static uint64_t total;
static pthread_barrier_t started;
static int pipefd[2];
static int epfd, evfd;
static __thread uint64_t tls_value;
static char *altstack;
static volatile sig_atomic_t alt_ok, alt_ran;
/* the timer's ticks, and ticks taken by a thread it does not aim at */
static pid_t timer_tid;
static uint64_t timer_ticks, timer_wrong;

static pid_t gettid_now(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void thr_fail(struct thr *t, const char *what)
{
	if (!t->fail[0])
		snprintf(t->fail, sizeof(t->fail), "thread %d (%s): %s", t->idx, t->name, what);
}

static void setup_self(struct thr *t)
{
	t->tid = gettid_now();
	tls_value = 0x7700000000ULL + (uint64_t)t->idx;
	pthread_setname_np(pthread_self(), t->name);
	if (setpriority(PRIO_PROCESS, (id_t)t->tid, t->nice) < 0)
		thr_fail(t, "setpriority");
	if (t->cpu >= 0) {
		cpu_set_t s;
		CPU_ZERO(&s);
		CPU_SET(t->cpu, &s);
		if (sched_setaffinity(0, sizeof(s), &s) < 0)
			thr_fail(t, "sched_setaffinity");
	}
}

/* What every thread checks of itself after the restore. */
static void check_self(struct thr *t)
{
	char name[16] = "";

	if (gettid_now() != t->tid)
		thr_fail(t, "tid changed");
	if (tls_value != 0x7700000000ULL + (uint64_t)t->idx)
		thr_fail(t, "TLS value lost (fs base?)");
	prctl(PR_GET_NAME, name);
	if (strcmp(name, t->name))
		thr_fail(t, "name changed");
	errno = 0;
	if (getpriority(PRIO_PROCESS, (id_t)t->tid) != t->nice)
		thr_fail(t, "nice changed");
	if (t->cpu >= 0) {
		cpu_set_t s;
		if (sched_getaffinity(0, sizeof(s), &s) < 0 || CPU_COUNT(&s) != 1 ||
		    !CPU_ISSET(t->cpu, &s))
			thr_fail(t, "affinity changed");
	}
}

static void counter_loop(struct thr *t)
{
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&lock);
		t->counter++;
		total++;
		pthread_mutex_unlock(&lock);
		wl_nap_ms(1);
	}
}

static void cond_wait(struct thr *t)
{
	pthread_mutex_lock(&lock);
	while (!go_cond)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	if (!wl_triggered())
		thr_fail(t, "woke from pthread_cond_wait before the trigger");
}

static void sleep_once(struct thr *t)
{
	struct timespec req = {.tv_sec = SLEEP_S}, rem;
	uint64_t start = wl_now_ns(CLOCK_MONOTONIC);

	while (nanosleep(&req, &rem) < 0) {
		if (errno != EINTR) {
			thr_fail(t, "nanosleep failed");
			return;
		}
		req = rem;
	}
	if (wl_now_ns(CLOCK_MONOTONIC) - start < SLEEP_S * 1000000000ULL)
		thr_fail(t, "nanosleep returned early");
}

static void join_sleeper(struct thr *t)
{
	for (int i = 0; i < nthr; i++)
		if (thr[i].role == SLEEP && pthread_join(thr[i].pt, NULL) != 0)
			thr_fail(t, "pthread_join failed");
}

static void read_pipe(struct thr *t)
{
	char c = 0;

	if (read(pipefd[0], &c, 1) != 1 || c != 'x')
		thr_fail(t, "read on the pipe failed");
	else if (!wl_triggered())
		thr_fail(t, "read returned before the trigger");
}

static void epoll_once(struct thr *t)
{
	struct epoll_event ev;
	uint64_t v = 0;
	int n;

	while ((n = epoll_wait(epfd, &ev, 1, -1)) < 0 && errno == EINTR)
		;
	if (n != 1 || ev.data.u64 != 0x5eed || !(ev.events & EPOLLIN))
		thr_fail(t, "epoll_wait did not report the eventfd");
	else if (!wl_triggered())
		thr_fail(t, "epoll_wait returned before the trigger");
	else if (read(evfd, &v, sizeof(v)) != sizeof(v) || v != 1)
		thr_fail(t, "the eventfd's counter is not 1");
}

static void epoll_setup(void)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x5eed};

	epfd = epoll_create1(EPOLL_CLOEXEC);
	evfd = eventfd(0, EFD_CLOEXEC);
	if (epfd < 0 || evfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) < 0)
		wl_fail("epoll/eventfd: %s", strerror(errno));
}

static void mask_check(struct thr *t)
{
	sigset_t want, have, pend;
	siginfo_t si;
	struct timespec zero = {0};

	sigemptyset(&want);
	sigaddset(&want, SIGUSR1);
	sigaddset(&want, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, NULL, &have);
	if (!sigismember(&have, SIGUSR1) || !sigismember(&have, SIGUSR2) ||
	    sigismember(&have, SIGTERM))
		thr_fail(t, "signal mask changed");
	sigpending(&pend);
	if (!sigismember(&pend, SIGUSR1)) {
		thr_fail(t, "its pending SIGUSR1 is lost");
		return;
	}
	int sig = sigtimedwait(&want, &si, &zero);
	if (sig != SIGUSR1 || (si.si_code != SI_TKILL && si.si_code != SI_USER) ||
	    si.si_pid != getpid() || si.si_uid != getuid()) {
		fprintf(stderr, "wl-threads: got signal %d code %d from %d\n", sig, si.si_code,
		        (int)si.si_pid);
		thr_fail(t, "the pending signal is not the tgkill'd SIGUSR1");
	}
	sigemptyset(&want);
	sigaddset(&want, SIGTRAP);
	if (!sigismember(&pend, SIGTRAP) || sigtimedwait(&want, &si, &zero) != SIGTRAP ||
	    (si.si_code != SI_TKILL && si.si_code != SI_USER) || si.si_pid != getpid())
		thr_fail(t, "its pending SIGTRAP is lost");
}

static void on_tick(int sig)
{
	if ((pid_t)syscall(SYS_gettid) == timer_tid)
		__atomic_add_fetch(&timer_ticks, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&timer_wrong, 1, __ATOMIC_RELAXED);
}

/* Every 10 ms at the first counter thread (its signal unblocked there only
 * matters for delivery: a thread-directed signal waits for its thread). */
static void start_timer(void)
{
	struct sigaction sa = {.sa_handler = on_tick, .sa_flags = SA_RESTART};
	struct sigevent sev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN + 1};
	struct itimerspec its = {.it_interval = {0, 10000000}, .it_value = {0, 10000000}};
	timer_t id;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN + 1, &sa, NULL);
	timer_tid = thr[0].tid;
	sev._sigev_un._tid = timer_tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &id) < 0 || timer_settime(id, 0, &its, NULL) < 0)
		wl_fail("timer_create: %s", strerror(errno));
}

static void on_usr2(int sig)
{
	char here;

	alt_ran = 1;
	alt_ok = &here >= altstack && &here < altstack + ALT_SIZE;
}

static void altstack_check(struct thr *t)
{
	stack_t ss;
	sigset_t s;

	if (sigaltstack(NULL, &ss) < 0 || ss.ss_sp != altstack || ss.ss_size != ALT_SIZE)
		thr_fail(t, "sigaltstack changed");
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	pthread_kill(pthread_self(), SIGUSR2);
	if (!alt_ran || !alt_ok)
		thr_fail(t, "SIGUSR2 handler did not run on the alternate stack");
}

static void block_usr(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	sigaddset(&s, SIGTRAP);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

static void *thread_main(void *arg)
{
	struct thr *t = arg;

	setup_self(t);
	if (nnp && t->idx == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		thr_fail(t, "PR_SET_NO_NEW_PRIVS");
	if (t->role == ALTSTACK) {
		stack_t ss = {.ss_sp = altstack, .ss_size = ALT_SIZE};
		if (sigaltstack(&ss, NULL) < 0)
			thr_fail(t, "sigaltstack");
	}
	pthread_barrier_wait(&started);
	switch (t->role) {
	case COUNTER:
		counter_loop(t);
		break;
	case COND:
		cond_wait(t);
		break;
	case SLEEP:
		sleep_once(t);
		return NULL; /* checked by its joiner's success */
	case JOIN:
		join_sleeper(t);
		break;
	case READ:
		read_pipe(t);
		break;
	case EPOLL:
		epoll_once(t);
		break;
	case MASK:
	case ALTSTACK:
		while (!wl_triggered())
			wl_nap_ms(WL_POLL_MS);
		if (t->role == MASK)
			mask_check(t);
		else
			altstack_check(t);
		break;
	}
	check_self(t);
	return NULL;
}

static void make_threads(int n)
{
	static const enum role special[] = {COND, SLEEP, JOIN, MASK, ALTSTACK, READ, EPOLL};
	static const char *const names[] = {"wl-cond",     "wl-sleep", "wl-join", "wl-mask",
	                                    "wl-altstack", "wl-read",  "wl-epoll"};

	nthr = n - 1;
	for (int i = 0; i < nthr; i++) {
		struct thr *t = &thr[i];
		int s = i - (nthr - (int)WL_ARRAY_SIZE(special));
		t->idx = i;
		t->role = s >= 0 ? special[s] : COUNTER;
		if (s >= 0)
			snprintf(t->name, sizeof(t->name), "%s", names[s]);
		else
			snprintf(t->name, sizeof(t->name), "wl-cnt-%d", i);
		t->nice = 1 + i % 5;
		t->cpu = ncpus >= 2 ? i % 2 : -1;
	}
	/* the mask thread's signals are blocked from its start (inherited) */
	block_usr();
	pthread_barrier_init(&started, NULL, (unsigned)nthr + 1);
	for (int i = 0; i < nthr; i++)
		if (pthread_create(&thr[i].pt, NULL, thread_main, &thr[i]) != 0)
			wl_fail("pthread_create %d", i);
	pthread_barrier_wait(&started);
}

static void unblock_main(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

static const char *collect(void)
{
	uint64_t sum = 0;

	for (int i = 0; i < nthr; i++)
		if (thr[i].role != SLEEP && pthread_join(thr[i].pt, NULL) != 0)
			return "pthread_join";
	for (int i = 0; i < nthr; i++) {
		if (thr[i].fail[0])
			return thr[i].fail;
		if (thr[i].role != COUNTER)
			continue;
		sum += thr[i].counter;
		if (thr[i].counter <= thr[i].at_ready)
			return "a counter did not carry on";
	}
	return sum == total ? NULL : "the counters do not add up to the total";
}

/* After READY: the trigger, then the verdicts. */
static void *finish(void *unused)
{
	const char *why;

	wl_await_trigger();
	uint64_t ticks = __atomic_load_n(&timer_ticks, __ATOMIC_RELAXED);
	wl_nap_ms(100); /* the counters carry on, the timer fires on */
	__atomic_store_n(&stop, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&lock);
	go_cond = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	if (write(pipefd[1], "x", 1) != 1)
		wl_fail("write to the pipe");
	if (write(evfd, &(uint64_t){1}, sizeof(uint64_t)) != sizeof(uint64_t))
		wl_fail("write to the eventfd");
	if ((why = collect()))
		wl_fail("%s", why);
	if (__atomic_load_n(&timer_ticks, __ATOMIC_RELAXED) <= ticks)
		wl_fail("the POSIX timer aimed at thread %d no longer fires", timer_tid);
	if (timer_wrong)
		wl_fail("the POSIX timer's signal reached another thread %llu times",
		        (unsigned long long)timer_wrong);
	wl_pass();
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_usr2, .sa_flags = SA_ONSTACK};
	int n = argc > 1 ? atoi(argv[1]) : MIN_THREADS;

	wl_init("wl-threads");
	nnp = argc > 2 && !strcmp(argv[2], "nnp");
	leader_exit = argc > 2 && !strcmp(argv[2], "leader-exit");
	if (n < MIN_THREADS || n > MAX_THREADS || argc > 3 || (argc > 2 && !nnp && !leader_exit))
		wl_fail("usage: wl-threads [N from %d to %d] [nnp|leader-exit]", MIN_THREADS,
		        MAX_THREADS);
	ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	altstack = malloc(ALT_SIZE);
	if (pipe(pipefd) < 0)
		wl_fail("pipe");
	epoll_setup();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	make_threads(n);
	start_timer();
	unblock_main();
	for (int i = 0; i < nthr; i++)
		if (thr[i].role == MASK && (pthread_kill(thr[i].pt, SIGUSR1) != 0 ||
		                            pthread_kill(thr[i].pt, SIGTRAP) != 0))
			wl_fail("pthread_kill");
	wl_nap_ms(50); /* the counters count, the sleeper is in nanosleep */
	for (int i = 0; i < nthr; i++)
		if (thr[i].role == EPOLL &&
		    !wl_wait_blocked(thr[i].tid, SYS_epoll_wait, SYS_epoll_pwait))
			wl_fail("the epoll thread never blocked in epoll_wait");
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nthr; i++)
		thr[i].at_ready = thr[i].counter;
	pthread_mutex_unlock(&lock);
	wl_ready();
	if (leader_exit) {
		pthread_t pt;
		if (pthread_create(&pt, NULL, finish, NULL) != 0)
			wl_fail("pthread_create");
		pthread_exit(NULL);
	}
	finish(NULL);
}
