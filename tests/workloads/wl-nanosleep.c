/* wl-nanosleep [seconds [strict]]: prints READY and goes into one nanosleep (default 5 s), to
 * be checkpointed while blocked in it. An EINTR sleeps on for the remaining time, as careful
 * programs do. When the sleep is over it must have lasted at least the requested time in total
 * (monotonic clock). With "strict", an EINTR that no signal handler explains is a failure too:
 * a transparent restore restarts the sleep instead (CRIU, for one, returns EINTR). Then the
 * usual trigger wait. */
#include "wl.h"

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	handled++;
}

static void parse_args(int argc, char **argv, unsigned *secs, bool *strict)
{
	char *end = "";
	unsigned long s = argc > 1 ? strtoul(argv[1], &end, 10) : 5;

	*strict = argc > 2 && !strcmp(argv[2], "strict");
	if (*end || s == 0 || s > 3600 || argc > 3 || (argc > 2 && !*strict))
		wl_fail("usage: wl-nanosleep [seconds [strict]]");
	*secs = (unsigned)s;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_usr1}; /* no SA_RESTART: EINTR is ours to see */
	struct timespec req, rem;
	unsigned secs, interrupted = 0, spurious = 0;
	uint64_t start, slept;
	bool strict;

	wl_init("wl-nanosleep");
	parse_args(argc, argv, &secs, &strict);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	req = (struct timespec){.tv_sec = secs};
	start = wl_now_ns(CLOCK_MONOTONIC);
	wl_ready();
	while (nanosleep(&req, &rem) < 0) {
		if (errno != EINTR)
			wl_fail("nanosleep: %s", strerror(errno));
		interrupted++;
		if (handled < (sig_atomic_t)(interrupted - spurious))
			spurious++;
		if (spurious && strict)
			wl_fail("nanosleep returned EINTR with no signal handled");
		req = rem;
	}
	slept = wl_now_ns(CLOCK_MONOTONIC) - start;
	fprintf(stderr,
	        "wl-nanosleep: slept %llu ms of %u s, interrupted %u times (%u without a "
	        "signal)\n",
	        (unsigned long long)(slept / 1000000), secs, interrupted, spurious);
	if (slept < secs * 1000000000ULL)
		wl_fail("slept %llu ms, asked for %u s", (unsigned long long)(slept / 1000000),
		        secs);
	wl_await_trigger();
	wl_pass();
}
