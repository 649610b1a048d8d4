/* wl-subreaper: marks itself a child subreaper (PR_SET_CHILD_SUBREAPER). After the trigger the
 * flag must still be set, and it must still work: an orphaned grandchild is reparented to us,
 * not to init, and reaped by us. */
#include <sys/prctl.h>

#include "wl.h"

/* The middle child's pid, set by it before it forks the orphan: the orphan
 * cannot read it with getppid(), the middle may be gone by then. */
static pid_t middle_pid;

static int orphan_main(void *arg)
{
	int *out = arg;
	pid_t ppid;

	/* wait until the middle child has gone and we are reparented */
	for (int i = 0; i < 500 && getppid() == middle_pid; i++)
		wl_nap_ms(WL_POLL_MS);
	ppid = getppid();
	if (write(out[1], &ppid, sizeof(ppid)) != sizeof(ppid))
		_exit(2);
	return 0;
}

static int middle_main(void *arg)
{
	middle_pid = getpid();
	wl_spawn(orphan_main, arg);
	return 0;
}

int main(void)
{
	int flag = -1, out[2];
	pid_t middle, got, ppid = 0;
	int status;

	wl_init("wl-subreaper");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		wl_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	wl_ready();
	wl_await_trigger();
	if (prctl(PR_GET_CHILD_SUBREAPER, &flag, 0, 0, 0) < 0)
		wl_fail("PR_GET_CHILD_SUBREAPER: %s", strerror(errno));
	if (flag != 1)
		wl_fail("child subreaper flag %d, want 1", flag);
	if (pipe(out) < 0)
		wl_fail("pipe: %s", strerror(errno));
	middle = wl_spawn(middle_main, out);
	wl_expect_exit(middle, 0);
	if (read(out[0], &ppid, sizeof(ppid)) != sizeof(ppid))
		wl_fail("the orphan did not report");
	if (ppid != getpid())
		wl_fail("the orphan was reparented to %d, not to us (%d)", (int)ppid,
		        (int)getpid());
	got = waitpid(-1, &status, 0);
	if (got < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		wl_fail("reaping the orphan: %d, status %#x", (int)got, status);
	wl_pass();
}
