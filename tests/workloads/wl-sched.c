/* wl-sched [other|batch|idle|fifo|rr] [reset]: sets its scheduling policy (default batch) with a
 * nice of 7 (fifo and rr: priority 11), and SCHED_RESET_ON_FORK with "reset". After the trigger
 * sched_getscheduler(), sched_getparam() and getpriority() must give what was set. */
#include <sched.h>
#include <sys/resource.h>

#include "wl.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

static int parse_policy(const char *name)
{
	static const struct {
		const char *name;
		int policy;
	} names[] = {{"other", SCHED_OTHER},
	             {"batch", SCHED_BATCH},
	             {"idle", SCHED_IDLE},
	             {"fifo", SCHED_FIFO},
	             {"rr", SCHED_RR}};

	for (size_t i = 0; i < WL_ARRAY_SIZE(names); i++)
		if (!strcmp(name, names[i].name))
			return names[i].policy;
	wl_fail("unknown policy %s", name);
}

int main(int argc, char **argv)
{
	int policy = parse_policy(argc > 1 ? argv[1] : "batch");
	bool reset = argc > 2 && !strcmp(argv[2], "reset");
	bool rt = policy == SCHED_FIFO || policy == SCHED_RR;
	struct sched_param sp = {.sched_priority = rt ? 11 : 0};
	int want = policy | (reset ? SCHED_RESET_ON_FORK : 0), got;

	wl_init("wl-sched");
	if (setpriority(PRIO_PROCESS, 0, 7) < 0)
		wl_fail("setpriority: %s", strerror(errno));
	if (sched_setscheduler(0, want, &sp) < 0)
		wl_fail("sched_setscheduler %#x: %s", want, strerror(errno));
	wl_ready();
	wl_await_trigger();
	got = sched_getscheduler(0);
	if (got != want)
		wl_fail("policy %#x, want %#x", got, want);
	memset(&sp, 0, sizeof(sp));
	if (sched_getparam(0, &sp) < 0)
		wl_fail("sched_getparam: %s", strerror(errno));
	if (sp.sched_priority != (rt ? 11 : 0))
		wl_fail("priority %d, want %d", sp.sched_priority, rt ? 11 : 0);
	errno = 0;
	got = getpriority(PRIO_PROCESS, 0);
	if (errno || got != 7)
		wl_fail("nice %d, want 7", got);
	wl_pass();
}
