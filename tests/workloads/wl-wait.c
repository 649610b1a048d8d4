/* wl-wait: the parent blocks in waitpid() on its child from the moment of READY; the child
 * prints READY once it sees the parent blocked there, polls the trigger and exits with 42. The
 * parent's one waitpid() must return that child with exit code 42. */
#include <sys/syscall.h>

#include "wl.h"

#define EXIT_CODE 42

static int child_main(void *arg)
{
	if (!wl_wait_blocked(getppid(), SYS_wait4, SYS_waitid))
		wl_child_fail("the parent never blocked in waitpid()");
	wl_ready();
	wl_child_await_trigger();
	return EXIT_CODE;
}

int main(void)
{
	pid_t child, got;
	int status;

	wl_init("wl-wait");
	child = wl_spawn(child_main, NULL);
	/* No handlers here: an EINTR could only come from a broken restore. */
	got = waitpid(child, &status, 0);
	if (got < 0)
		wl_fail("waitpid: %s", strerror(errno));
	if (got != child)
		wl_fail("waitpid returned %d, not the child %d", (int)got, (int)child);
	wl_children[0] = 0; /* reaped: no longer ours to kill */
	if (WIFSIGNALED(status))
		wl_fail("the child was killed by signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) != EXIT_CODE)
		wl_fail("the child exited %d, want %d", WEXITSTATUS(status), EXIT_CODE);
	wl_pass();
}
