/* wl-stopped [seen|sigstop|threads]: a child stopped by job control. The child leads a process
 * group of its own (so SIGTSTP is not dropped: its parent is in the same session, in another
 * group) and stops itself with SIGTSTP (SIGSTOP with "sigstop"; with "threads" it runs two more
 * threads first). The parent counts SIGCHLD with a handler (no SA_NOCLDSTOP) and waits for the
 * stop's SIGCHLD before READY; with "seen" it has also taken the stop with
 * waitpid(WUNTRACED). After the trigger: every thread of the child is still stopped (state T),
 * the parent got no other SIGCHLD, waitpid(WUNTRACED|WNOHANG) reports the stop by the same
 * signal (nothing with "seen", which took it), and SIGCONT resumes the child, which exits 42. */
#include <dirent.h>
#include <pthread.h>
#include <sys/wait.h>

#include "wl.h"

static volatile sig_atomic_t nchld;

static void on_chld(int sig)
{
	(void)sig;
	nchld++;
}

static void *idle_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int child_main(int stop_sig, bool threads)
{
	pthread_t th;

	if (setpgid(0, 0) < 0)
		return 2;
	for (int i = 0; threads && i < 2; i++)
		if (pthread_create(&th, NULL, idle_thread, NULL))
			return 3;
	kill(getpid(), stop_sig);
	/* here only after SIGCONT */
	return 42;
}

/* Whether every thread of pid is stopped (/proc/PID/task/TID/stat state T). */
static bool all_stopped(pid_t pid, int want_threads)
{
	char path[320], buf[512];
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool ok = true;
	for (struct dirent *de; ok && (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, de->d_name);
		FILE *f = fopen(path, "re");
		ok = f && fgets(buf, sizeof(buf), f);
		if (f)
			fclose(f);
		char *p = ok ? strrchr(buf, ')') : NULL;
		ok = p && p[1] == ' ' && p[2] == 'T';
		n++;
	}
	closedir(d);
	return ok && n == want_threads;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	bool seen = !strcmp(mode, "seen"), threads = !strcmp(mode, "threads");
	int stop_sig = !strcmp(mode, "sigstop") ? SIGSTOP : SIGTSTP, st;
	struct sigaction sa = {.sa_handler = on_chld, .sa_flags = SA_RESTART};
	pid_t child, got;

	wl_init("wl-stopped");
	if (*mode && !seen && !threads && strcmp(mode, "sigstop"))
		wl_fail("unknown mode %s", mode);
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		wl_fail("sigaction: %s", strerror(errno));
	child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0)
		_exit(child_main(stop_sig, threads));
	for (int i = 0; i < 5000 && (!all_stopped(child, threads ? 3 : 1) || nchld < 1); i++)
		wl_nap_ms(1);
	if (!all_stopped(child, threads ? 3 : 1) || nchld != 1)
		wl_fail("child not stopped (%d SIGCHLD)", (int)nchld);
	if (seen && (waitpid(child, &st, WUNTRACED) != child || !WIFSTOPPED(st)))
		wl_fail("waitpid(WUNTRACED) did not report the stop");
	wl_ready();
	wl_await_trigger();
	if (!all_stopped(child, threads ? 3 : 1))
		wl_fail("child not stopped after the trigger");
	if (nchld != 1)
		wl_fail("%d SIGCHLD, want 1", (int)nchld);
	got = waitpid(child, &st, WUNTRACED | WNOHANG);
	if (seen && got != 0)
		wl_fail("waitpid(WUNTRACED) reported the stop again (%d, status %#x)", got, st);
	if (!seen && (got != child || !WIFSTOPPED(st) || WSTOPSIG(st) != stop_sig))
		wl_fail("waitpid(WUNTRACED): %d, status %#x, want stopped by %d", got,
		        got > 0 ? st : 0, stop_sig);
	if (kill(child, SIGCONT) < 0)
		wl_fail("SIGCONT: %s", strerror(errno));
	while ((got = waitpid(child, &st, 0)) < 0 && errno == EINTR)
		;
	if (got != child || !WIFEXITED(st) || WEXITSTATUS(st) != 42)
		wl_fail("child after SIGCONT: status %#x, want exit 42", st);
	wl_pass();
}
