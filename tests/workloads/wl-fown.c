/* wl-fown: SIGIO ownership and signals of fds, in a parent and a child:
 *   10, 11  pipe A; 10 (read end) O_ASYNC, owner us (F_SETOWN), F_SETSIG SIGUSR1
 *   12, 13  pipe B; 12 (read end) O_ASYNC, owner the child's thread (F_SETOWN_EX F_OWNER_TID)
 *   14      <trigger>.fown O_RDWR, owner our process group (F_SETOWN with -pgrp), F_SETSIG
 *           SIGRTMIN+2, no O_ASYNC
 *   15, 16  pipe C; 15 (read end) O_ASYNC, owner one of our own threads (not the main one,
 *           F_OWNER_TID), F_SETSIG SIGUSR2
 * After the trigger every fd has the same owner, signal and O_ASYNC, and a byte written into
 * pipe A brings SIGUSR1 to us with si_fd 10, and one into pipe C SIGUSR2 to that thread with
 * si_fd 15. With `outside` fd 14's owner is our parent,
 * which is not in the checkpoint: the engine refuses the dump and the run goes on to PASS. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>

#include "wl.h"

static volatile sig_atomic_t got_sig, got_fd;

static void on_io(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	got_sig = sig;
	got_fd = si->si_fd;
}

static volatile pid_t thread_tid;
static volatile sig_atomic_t thread_sig_tid, thread_sig_fd;

static void on_io_thread(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	(void)sig;
	thread_sig_fd = si->si_fd;
	thread_sig_tid = (pid_t)syscall(SYS_gettid);
}

static void *thread_main(void *arg)
{
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return arg;
}

static void set_owner(int fd, int type, pid_t pid, int sig, bool async)
{
	struct f_owner_ex own = {.type = type, .pid = pid};

	if (fcntl(fd, F_SETOWN_EX, &own) < 0 || fcntl(fd, F_SETSIG, sig) < 0 ||
	    (async && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) < 0))
		wl_fail("fd %d: set owner: %s", fd, strerror(errno));
}

static void check(int fd, int type, pid_t pid, int sig, bool async)
{
	struct f_owner_ex own;
	int s = fcntl(fd, F_GETSIG), fl = fcntl(fd, F_GETFL);

	if (fcntl(fd, F_GETOWN_EX, &own) < 0)
		wl_fail("fd %d: F_GETOWN_EX: %s", fd, strerror(errno));
	if ((int)own.type != type || own.pid != pid)
		wl_fail("fd %d: owner type %d pid %d, want type %d pid %d", fd, (int)own.type,
		        own.pid, type, pid);
	if (s != sig)
		wl_fail("fd %d: signal %d, want %d", fd, s, sig);
	if (!!(fl & O_ASYNC) != async)
		wl_fail("fd %d: O_ASYNC %s", fd, async ? "lost" : "gained");
}

int main(int argc, char **argv)
{
	bool outside = argc > 1 && !strcmp(argv[1], "outside");
	struct sigaction sa = {.sa_sigaction = on_io, .sa_flags = SA_SIGINFO};
	char *path;
	int p[2];
	pid_t child;

	wl_init("wl-fown");
	struct sigaction sa2 = {.sa_sigaction = on_io_thread, .sa_flags = SA_SIGINFO};
	pthread_t th;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa2, NULL);
	if (pthread_create(&th, NULL, thread_main, NULL))
		wl_fail("pthread_create failed");
	while (!thread_tid)
		wl_nap_ms(1);
	child = wl_fork_idle_child();
	if (pipe(p) < 0)
		wl_fail("pipe: %s", strerror(errno));
	wl_place_fd(p[0], 10);
	wl_place_fd(p[1], 11);
	if (pipe(p) < 0)
		wl_fail("pipe: %s", strerror(errno));
	wl_place_fd(p[0], 12);
	wl_place_fd(p[1], 13);
	path = wl_side_path(".fown");
	wl_place_fd(open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), 14);
	if (pipe(p) < 0)
		wl_fail("pipe: %s", strerror(errno));
	wl_place_fd(p[0], 15);
	wl_place_fd(p[1], 16);
	set_owner(15, F_OWNER_TID, thread_tid, SIGUSR2, true);
	set_owner(10, F_OWNER_PID, getpid(), SIGUSR1, true);
	set_owner(12, F_OWNER_TID, child, 0, true);
	if (outside)
		set_owner(14, F_OWNER_PID, getppid(), SIGRTMIN + 2, false);
	else
		set_owner(14, F_OWNER_PGRP, getpgrp(), SIGRTMIN + 2, false);
	wl_ready();
	wl_await_trigger();
	check(10, F_OWNER_PID, getpid(), SIGUSR1, true);
	check(12, F_OWNER_TID, child, 0, true);
	check(15, F_OWNER_TID, thread_tid, SIGUSR2, true);
	if (!outside)
		check(14, F_OWNER_PGRP, getpgrp(), SIGRTMIN + 2, false);
	if (write(11, "x", 1) != 1)
		wl_fail("write pipe A: %s", strerror(errno));
	for (int i = 0; i < 100 && !got_sig; i++)
		wl_nap_ms(10);
	if (got_sig != SIGUSR1 || got_fd != 10)
		wl_fail("I/O on pipe A: signal %d for fd %d, want %d for fd 10", (int)got_sig,
		        (int)got_fd, SIGUSR1);
	if (write(16, "x", 1) != 1)
		wl_fail("write pipe C: %s", strerror(errno));
	for (int i = 0; i < 100 && !thread_sig_tid; i++)
		wl_nap_ms(10);
	if (thread_sig_tid != thread_tid || thread_sig_fd != 15)
		wl_fail("I/O on pipe C: SIGUSR2 in thread %d for fd %d, want thread %d, fd 15",
		        (int)thread_sig_tid, (int)thread_sig_fd, (int)thread_tid);
	wl_expect_exit(child, 0);
	wl_pass();
}
