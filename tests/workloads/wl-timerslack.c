/* wl-timerslack: sets its timer slack to 123457 ns (PR_SET_TIMERSLACK); after the trigger
 * PR_GET_TIMERSLACK must give it again. */
#include <sys/prctl.h>

#include "wl.h"

#define SLACK_NS 123457L

int main(void)
{
	long got;

	wl_init("wl-timerslack");
	if (prctl(PR_SET_TIMERSLACK, SLACK_NS, 0, 0, 0) < 0)
		wl_fail("PR_SET_TIMERSLACK: %s", strerror(errno));
	wl_ready();
	wl_await_trigger();
	got = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
	if (got != SLACK_NS)
		wl_fail("timer slack %ld ns, want %ld", got, SLACK_NS);
	wl_pass();
}
