/* wl-posix-timer: POSIX timers on several clocks, signals and intervals, one of them disarmed.
 * After the trigger every timer answers timer_gettime at the id it had, /proc/self/timers reads
 * as before, the periodic ones keep delivering their signal with their sigev_value, and the
 * disarmed one stays disarmed. */
#include <sys/syscall.h>

#include "wl.h"

#define TICK_NS   (10 * 1000000L)
#define TICKS     10
#define FAR_S     1000
#define PERIOD_S  500
#define NTIMERS   6
#define NDISCARD  5
#define TIMERS_SZ 4096

struct wl_timer {
	const char *name;
	clockid_t clock;
	int notify, sig;
	int value;
	struct itimerspec spec;
	timer_t id;
};

static struct wl_timer timers[NTIMERS] = {
    {"monotonic 10 ms", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, 0xa1, {{0, TICK_NS}, {0, TICK_NS}}},
    {"realtime 20 ms",
     CLOCK_REALTIME,
     SIGEV_SIGNAL,
     SIGUSR1,
     0xb2,
     {{0, 2 * TICK_NS}, {0, 2 * TICK_NS}}},
    {"boottime disarmed", CLOCK_BOOTTIME, SIGEV_SIGNAL, SIGUSR2, 0xc3, {{0, 0}, {0, 0}}},
    {"process cpu far",
     CLOCK_PROCESS_CPUTIME_ID,
     SIGEV_SIGNAL,
     0,
     0xd4,
     {{PERIOD_S, 0}, {FAR_S, 0}}},
    {"monotonic none", CLOCK_MONOTONIC, SIGEV_NONE, SIGUSR2, 0xe5, {{PERIOD_S, 0}, {FAR_S, 0}}},
    {"monotonic thread far", CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGUSR2, 0xf6, {{0, 0}, {FAR_S, 0}}},
};

static volatile sig_atomic_t ticks[2], bad, bad_value, bad_code;

/* The two periodic timers count their signals; anything else is bad. */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
	int i = sig == SIGRTMIN ? 0 : sig == SIGUSR1 ? 1 : -1;

	if (i < 0) {
		bad = sig;
		return;
	}
	if (si->si_code != SI_TIMER)
		bad_code = si->si_code;
	else if (si->si_value.sival_int != timers[i].value)
		bad_value = si->si_value.sival_int;
	else
		ticks[i]++;
}

static void read_timers(char *buf)
{
	FILE *f = fopen("/proc/self/timers", "re");
	size_t n;

	if (!f)
		wl_fail("open /proc/self/timers: %s", strerror(errno));
	n = fread(buf, 1, TIMERS_SZ - 1, f);
	buf[n] = 0;
	fclose(f);
}

static void create(struct wl_timer *t)
{
	struct sigevent sev = {.sigev_notify = t->notify, .sigev_signo = t->sig};

	sev.sigev_value.sival_int = t->value;
	if (t->notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(t->clock, &sev, &t->id) < 0)
		wl_fail("timer_create %s: %s", t->name, strerror(errno));
}

static void setup(char *before)
{
	struct sigaction sa = {.sa_sigaction = on_signal, .sa_flags = SA_SIGINFO | SA_RESTART};
	timer_t discard[NDISCARD];

	timers[0].sig = SIGRTMIN;
	timers[3].sig = SIGRTMIN + 1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGRTMIN, &sa, NULL) < 0 || sigaction(SIGUSR1, &sa, NULL) < 0 ||
	    sigaction(SIGUSR2, &sa, NULL) < 0 || sigaction(SIGRTMIN + 1, &sa, NULL) < 0)
		wl_fail("sigaction: %s", strerror(errno));
	/* ids that a restore creating timers afresh would not hand out */
	for (int i = 0; i < NDISCARD; i++)
		if (timer_create(CLOCK_MONOTONIC, NULL, &discard[i]) < 0)
			wl_fail("timer_create: %s", strerror(errno));
	for (int i = 0; i < NTIMERS; i++) {
		create(&timers[i]);
		if (i == 1)
			timer_delete(discard[2]); /* a hole among the ids */
	}
	for (int i = 0; i < NDISCARD; i++)
		if (i != 2)
			timer_delete(discard[i]);
	for (int i = 0; i < NTIMERS; i++)
		if (timer_settime(timers[i].id, 0, &timers[i].spec, NULL) < 0)
			wl_fail("timer_settime %s: %s", timers[i].name, strerror(errno));
	read_timers(before);
	for (int i = 0; i < 200 && (ticks[0] < 3 || ticks[1] < 3); i++)
		wl_nap_ms(WL_POLL_MS);
	if (ticks[0] < 3 || ticks[1] < 3)
		wl_fail("the periodic timers do not tick before READY");
}

static long long ns(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static void check_one(const struct wl_timer *t)
{
	struct itimerspec now;
	/* a CPU timer gets a tick of slack from the kernel; a second is plenty */
	long long most = ns(&t->spec.it_value) + 1000000000LL;

	if (timer_gettime(t->id, &now) < 0)
		wl_fail("timer %s: timer_gettime at id %ld: %s", t->name, (long)(intptr_t)t->id,
		        strerror(errno));
	if (ns(&now.it_interval) != ns(&t->spec.it_interval))
		wl_fail("timer %s: interval %lld ns, want %lld", t->name, ns(&now.it_interval),
		        ns(&t->spec.it_interval));
	if (!ns(&t->spec.it_value) && ns(&now.it_value))
		wl_fail("timer %s: armed, want disarmed", t->name);
	if (ns(&t->spec.it_value) && (!ns(&now.it_value) || ns(&now.it_value) > most))
		wl_fail("timer %s: %lld ns left, armed with %lld", t->name, ns(&now.it_value),
		        ns(&t->spec.it_value));
}

/* The kernel hands out ids in sequence: the next timer gets the one after the newest. */
static void check_next_id(void)
{
	timer_t next;
	long want = (long)(intptr_t)timers[NTIMERS - 1].id + 1;

	if (timer_create(CLOCK_MONOTONIC, NULL, &next) < 0)
		wl_fail("timer_create: %s", strerror(errno));
	if ((long)(intptr_t)next != want)
		wl_fail("a new timer got id %ld, want %ld", (long)(intptr_t)next, want);
}

static void check(const char *before)
{
	char after[TIMERS_SZ];
	sig_atomic_t from[2] = {ticks[0], ticks[1]};

	for (int i = 0; i < NTIMERS; i++)
		check_one(&timers[i]);
	read_timers(after);
	if (strcmp(before, after))
		wl_fail("/proc/self/timers was\n%s\nand is\n%s", before, after);
	for (int i = 0; i < 200 && (ticks[0] < from[0] + TICKS || ticks[1] < from[1] + TICKS / 2);
	     i++)
		wl_nap_ms(WL_POLL_MS);
	if (bad)
		wl_fail("signal %d arrived, from no armed timer", (int)bad);
	if (bad_code || bad_value)
		wl_fail("a timer signal came with code %d, value %#x", (int)bad_code,
		        (int)bad_value);
	if (ticks[0] < from[0] + TICKS || ticks[1] < from[1] + TICKS / 2)
		wl_fail("in 2 s after the trigger: %d monotonic and %d realtime ticks",
		        (int)(ticks[0] - from[0]), (int)(ticks[1] - from[1]));
	check_next_id();
}

int main(void)
{
	char before[TIMERS_SZ];

	wl_init("wl-posix-timer");
	setup(before);
	wl_ready();
	wl_await_trigger();
	check(before);
	wl_pass();
}
