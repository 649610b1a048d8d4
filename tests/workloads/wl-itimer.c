/* wl-itimer: an ITIMER_REAL firing every 10 ms into a counting SIGALRM handler, and an
 * ITIMER_VIRTUAL armed far in the future. After the trigger both timers keep their intervals,
 * the virtual one has not gained time, and SIGALRM ticks keep arriving. */
#include <sys/time.h>

#include "wl.h"

#define TICK_US          10000
#define TICKS_BEFORE     5
#define TICKS_AFTER      10
#define VIRTUAL_VALUE_S  1000
#define VIRTUAL_PERIOD_S 500

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
	ticks++;
}

/* Naps until the tick count reaches want; false after about two seconds. */
static bool wait_ticks(sig_atomic_t want)
{
	for (int i = 0; i < 200 && ticks < want; i++)
		wl_nap_ms(WL_POLL_MS);
	return ticks >= want;
}

static void setup(void)
{
	struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
	struct itimerval real = {.it_interval = {0, TICK_US}, .it_value = {0, TICK_US}};
	struct itimerval virt = {.it_interval = {VIRTUAL_PERIOD_S, 0},
	                         .it_value = {VIRTUAL_VALUE_S, 0}};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		wl_fail("sigaction: %s", strerror(errno));
	if (setitimer(ITIMER_REAL, &real, NULL) < 0 || setitimer(ITIMER_VIRTUAL, &virt, NULL) < 0)
		wl_fail("setitimer: %s", strerror(errno));
	if (!wait_ticks(TICKS_BEFORE))
		wl_fail("ITIMER_REAL does not tick before READY");
}

static void check(void)
{
	struct itimerval real, virt;
	/* The kernel adds a tick to an armed CPU timer; a second is plenty of slack. */
	struct timeval armed = {VIRTUAL_VALUE_S + 1, 0};
	sig_atomic_t now = ticks;

	if (getitimer(ITIMER_REAL, &real) < 0 || getitimer(ITIMER_VIRTUAL, &virt) < 0)
		wl_fail("getitimer: %s", strerror(errno));
	if (real.it_interval.tv_sec != 0 || real.it_interval.tv_usec != TICK_US)
		wl_fail("ITIMER_REAL interval is %ld.%06ld s", (long)real.it_interval.tv_sec,
		        (long)real.it_interval.tv_usec);
	if (!timerisset(&real.it_value))
		wl_fail("ITIMER_REAL is disarmed");
	if (virt.it_interval.tv_sec != VIRTUAL_PERIOD_S || virt.it_interval.tv_usec != 0)
		wl_fail("ITIMER_VIRTUAL interval is %ld.%06ld s", (long)virt.it_interval.tv_sec,
		        (long)virt.it_interval.tv_usec);
	if (!timerisset(&virt.it_value) || timercmp(&virt.it_value, &armed, >))
		wl_fail("ITIMER_VIRTUAL has %ld s left, more than armed",
		        (long)virt.it_value.tv_sec);
	if (!wait_ticks(now + TICKS_AFTER))
		wl_fail("ITIMER_REAL ticked %d times in 2 s after the trigger", (int)(ticks - now));
}

int main(void)
{
	wl_init("wl-itimer");
	setup();
	wl_ready();
	wl_await_trigger();
	check();
	wl_pass();
}
