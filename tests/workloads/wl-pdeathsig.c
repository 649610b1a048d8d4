/* wl-pdeathsig [root]: a child sets PR_SET_PDEATHSIG to SIGUSR2 and waits for the trigger; then
 * it must still have SIGUSR2 there, and the parent, which reaps it, prints the verdict. With
 * "root" the started process sets its own too (SIGWINCH): its parent is outside any checkpoint,
 * so a dump must refuse it, and the run goes on untouched. */
#include <sys/prctl.h>

#include "wl.h"

static int get_pdeathsig(void)
{
	int sig = -1;

	if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) < 0)
		return -1;
	return sig;
}

static int child_main(void *arg)
{
	int *ready = arg, sig;

	if (prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0) < 0)
		wl_child_fail("PR_SET_PDEATHSIG: %s", strerror(errno));
	if (write(ready[1], "x", 1) != 1)
		wl_child_fail("write: %s", strerror(errno));
	wl_child_await_trigger();
	sig = get_pdeathsig();
	if (sig != SIGUSR2)
		wl_child_fail("pdeathsig %d, want %d (SIGUSR2)", sig, SIGUSR2);
	return 0;
}

int main(int argc, char **argv)
{
	bool root = argc > 1 && !strcmp(argv[1], "root");
	int ready[2], sig;
	char c;
	pid_t child;

	wl_init("wl-pdeathsig");
	if (root && prctl(PR_SET_PDEATHSIG, SIGWINCH, 0, 0, 0) < 0)
		wl_fail("PR_SET_PDEATHSIG: %s", strerror(errno));
	if (pipe(ready) < 0)
		wl_fail("pipe: %s", strerror(errno));
	child = wl_spawn(child_main, ready);
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		wl_fail("the child died before it was ready");
	close(ready[0]);
	wl_ready();
	wl_await_trigger();
	wl_expect_exit(child, 0);
	sig = get_pdeathsig();
	if (sig != (root ? SIGWINCH : 0))
		wl_fail("own pdeathsig %d, want %d", sig, root ? SIGWINCH : 0);
	wl_pass();
}
