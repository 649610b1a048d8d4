/* wl-zombie: two children have ended and are not reaped at READY: one exited with code 3, the
 * other was killed by SIGTERM. After the trigger the parent reaps each by its pid: the first
 * must have exited 3, the second been killed by SIGTERM (no core flag), and no other child may
 * be left. Zombies come back as zombies, with their wait status. */
#include <signal.h>

#include "wl.h"

#define EXIT_CODE 3

static int exit_code(void *arg)
{
	return EXIT_CODE;
}

static int wait_for_term(void *arg)
{
	pause();
	return 0;
}

/* Until pid has ended, leaving it unreaped (WNOWAIT). */
static void wait_ended(pid_t pid)
{
	siginfo_t si;

	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			wl_fail("waitid %d: %s", (int)pid, strerror(errno));
}

static void expect_status(pid_t pid, bool signaled, int want)
{
	int status;
	pid_t got = waitpid(pid, &status, WNOHANG);

	if (got != pid)
		wl_fail("child %d: not a zombie after the restore (waitpid: %d)", (int)pid,
		        (int)got);
	if (signaled && !(WIFSIGNALED(status) && WTERMSIG(status) == want && !WCOREDUMP(status)))
		wl_fail("child %d: status %#x, want killed by signal %d", (int)pid, status, want);
	if (!signaled && !(WIFEXITED(status) && WEXITSTATUS(status) == want))
		wl_fail("child %d: status %#x, want exit %d", (int)pid, status, want);
}

int main(void)
{
	wl_init("wl-zombie");
	pid_t exited = wl_spawn(exit_code, NULL);
	pid_t killed = wl_spawn(wait_for_term, NULL);

	kill(killed, SIGTERM);
	wait_ended(exited);
	wait_ended(killed);
	wl_ready();
	wl_await_trigger();
	expect_status(exited, false, EXIT_CODE);
	expect_status(killed, true, SIGTERM);
	wl_children[0] = wl_children[1] = 0;
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
		wl_fail("a child other than the two");
	wl_pass();
}
