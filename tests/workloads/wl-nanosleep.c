/* wl-nanosleep [seconds]: prints READY and goes into one nanosleep (default 5 s), to be
 * checkpointed while blocked in it. When it returns: it must have slept at least the requested
 * time in total (on a monotonic clock), and may have returned EINTR only for a signal that ran
 * our handler (then it sleeps on for the remaining time). Then the usual trigger wait. */
#include "wl.h"

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	handled++;
}

static unsigned parse_seconds(int argc, char **argv)
{
	char *end;
	unsigned long s = argc > 1 ? strtoul(argv[1], &end, 10) : 5;

	if (argc > 1 && (*end || s == 0 || s > 3600))
		wl_fail("usage: wl-nanosleep [seconds]");
	return (unsigned)s;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART: EINTR is ours to see */
	struct timespec req, rem;
	unsigned secs, interrupted = 0;
	uint64_t start, slept;

	wl_init("wl-nanosleep");
	secs = parse_seconds(argc, argv);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	req = (struct timespec){.tv_sec = secs};
	start = wl_now_ns(CLOCK_MONOTONIC);
	wl_ready();
	while (nanosleep(&req, &rem) < 0) {
		if (errno != EINTR)
			wl_fail("nanosleep: %s", strerror(errno));
		if (handled <= (sig_atomic_t)interrupted)
			wl_fail("nanosleep returned EINTR with no signal handled");
		interrupted++;
		req = rem;
	}
	slept = wl_now_ns(CLOCK_MONOTONIC) - start;
	fprintf(stderr, "wl-nanosleep: slept %llu ms of %u s, interrupted %u times\n",
	        (unsigned long long)(slept / 1000000), secs, interrupted);
	if (slept < secs * 1000000000ULL)
		wl_fail("slept %llu ms, asked for %u s", (unsigned long long)(slept / 1000000),
		        secs);
	wl_await_trigger();
	wl_pass();
}
