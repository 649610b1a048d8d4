/* wl-pidfd: pidfds before READY (pids are kept, so each must refer to the same pid again):
 *   fd 20  of a running child, PIDFD_NONBLOCK
 *   fd 21  of a child that has exited with code 5 and is not reaped (a zombie)
 *   fd 22  of ourselves, its FD_CLOEXEC cleared
 *   fd 23  PIDFD_THREAD of one of our threads, blocked in pause (Linux 6.9; skipped before)
 *   fd 25  a dup of fd 20, its FD_CLOEXEC cleared: one open file
 * After the trigger: fdinfo "Pid:" of each is its pid, the flags are as set; the zombie's
 * pidfd is readable at once and waitid(P_PIDFD) reaps it with code 5; the running child's is
 * not readable until pidfd_send_signal(SIGTERM) through it, and waitid(P_PIDFD) then reports
 * SIGTERM; a signal through the thread's pidfd reaches that thread; fd 25 is the same pid and
 * shares fd 20's status flags (one open file).
 * With "outside": a pidfd of our parent (outside the tree) is held instead; with "reaped": a
 * pidfd of a child that was reaped (Pid: -1): each is refused at dump; the workload checks
 * nothing of them and passes. With "forked": a pidfd of ours at fd 24 that a child inherited
 * from us (one open file in two tasks): after the trigger both fds are pidfds of us, and
 * O_NONBLOCK set through ours shows in the child's fdinfo (still one open file). */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>

#include "wl.h"

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

enum { FD_RUN = 20, FD_ZOMBIE, FD_SELF, FD_THREAD, FD_REFUSED, FD_DUP };

static volatile pid_t thread_tid;
static volatile sig_atomic_t thread_got;

static void on_usr1(int sig)
{
	thread_got = sig;
}

static void *thread_main(void *arg)
{
	thread_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return arg;
}

static int pidfd_at(pid_t pid, unsigned flags, int at)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, flags);

	if (fd < 0)
		return -errno;
	if (dup3(fd, at, O_CLOEXEC) != at)
		wl_fail("dup3 %d: %s", at, strerror(errno));
	close(fd);
	return at;
}

static long fdinfo_pid(int fd)
{
	char path[64], line[128];
	long pid = 0;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	if (!f)
		wl_fail("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pid:", 4)) {
			pid = strtol(line + 4, NULL, 10);
			found = true;
		}
	fclose(f);
	if (!found)
		wl_fail("fd %d: fdinfo has no Pid: (not a pidfd)", fd);
	return pid;
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void want(int fd, pid_t pid, int fl, int fdfl)
{
	long got = fdinfo_pid(fd);
	int flags = fcntl(fd, F_GETFL), fdflags = fcntl(fd, F_GETFD);

	if (got != pid)
		wl_fail("fd %d: a pidfd of %ld, want %d", fd, got, (int)pid);
	if ((flags & (O_NONBLOCK | O_EXCL)) != fl || fdflags != fdfl)
		wl_fail("fd %d: flags %#o fd flags %d, want %#o and %d", fd, flags, fdflags, fl,
		        fdfl);
}

static pid_t child(int code)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		if (code >= 0)
			_exit(code);
		/* until killed, or orphaned (a parent that failed) */
		while (getppid() == parent)
			wl_nap_ms(WL_POLL_MS);
		_exit(1);
	}
	wl_children[wl_nr_children++] = pid;
	return pid;
}

static void wait_ended(pid_t pid)
{
	siginfo_t si;

	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			wl_fail("waitid %d: %s", (int)pid, strerror(errno));
}

/* Pid: and flags: of fd of pid, from its fdinfo. */
static void fdinfo_of(pid_t pid, int fd, long *ret_pid, long *ret_flags)
{
	char path[64], line[128];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	if (!(f = fopen(path, "r")))
		wl_fail("%s: %s", path, strerror(errno));
	*ret_pid = *ret_flags = -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Pid:", 4))
			*ret_pid = strtol(line + 4, NULL, 10);
		if (!strncmp(line, "flags:", 6))
			*ret_flags = strtol(line + 6, NULL, 8);
	}
	fclose(f);
}

/* fd 24 of ours and of the child: one pidfd of us. */
static void check_forked(pid_t kid)
{
	long pid, flags;

	want(FD_REFUSED, getpid(), 0, FD_CLOEXEC);
	fdinfo_of(kid, FD_REFUSED, &pid, &flags);
	if (pid != getpid() || (flags & O_NONBLOCK))
		wl_fail("child's fd %d: a pidfd of %ld, flags %#lo", FD_REFUSED, pid, flags);
	if (fcntl(FD_REFUSED, F_SETFL, O_NONBLOCK) < 0)
		wl_fail("F_SETFL: %s", strerror(errno));
	fdinfo_of(kid, FD_REFUSED, &pid, &flags);
	if (!(flags & O_NONBLOCK))
		wl_fail("child's fd %d is no longer our fd's open file (flags %#lo)", FD_REFUSED,
		        flags);
}

static void refused_case(const char *mode)
{
	pid_t pid;

	if (!strcmp(mode, "outside")) {
		pid = getppid();
	} else if (!strcmp(mode, "forked")) {
		pid = getpid();
	} else if (!strcmp(mode, "reaped")) {
		pid = child(0);
		wait_ended(pid);
	} else {
		wl_fail("unknown mode %s", mode);
	}
	if (pidfd_at(pid, 0, FD_REFUSED) < 0)
		wl_fail("pidfd_open %d: %s", (int)pid, strerror(errno));
	if (!strcmp(mode, "reaped") && waitpid(pid, NULL, 0) != pid)
		wl_fail("waitpid %d: %s", (int)pid, strerror(errno));
	if (!strcmp(mode, "forked"))
		child(-1); /* holds fd 24 too */
	wl_ready();
	wl_await_trigger();
	if (!strcmp(mode, "forked")) {
		check_forked(wl_children[wl_nr_children - 1]);
		kill(wl_children[wl_nr_children - 1], SIGKILL);
		waitpid(wl_children[wl_nr_children - 1], NULL, 0);
	}
	wl_pass();
}

static void check_waitid(int fd, int code, int status, const char *name)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	siginfo_t si = {0};

	/* a PIDFD_NONBLOCK pidfd's waitid does not wait: EAGAIN until it has ended */
	if (poll(&p, 1, 10000) != 1)
		wl_fail("%s: its pidfd did not become readable", name);
	if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED) < 0)
		wl_fail("%s: waitid(P_PIDFD): %s", name, strerror(errno));
	if (si.si_code != code || si.si_status != status)
		wl_fail("%s: si_code %d status %d, want %d and %d", name, si.si_code, si.si_status,
		        code, status);
}

int main(int argc, char **argv)
{
	pthread_t th;
	int r;

	wl_init("wl-pidfd");
	if (argc > 1)
		refused_case(argv[1]);
	pid_t run = child(-1), zombie = child(5);
	wait_ended(zombie);
	if (pidfd_at(run, PIDFD_NONBLOCK, FD_RUN) < 0 || pidfd_at(zombie, 0, FD_ZOMBIE) < 0 ||
	    pidfd_at(getpid(), 0, FD_SELF) < 0)
		wl_fail("pidfd_open: %s", strerror(errno));
	fcntl(FD_SELF, F_SETFD, 0);
	signal(SIGUSR1, on_usr1);
	if ((r = pthread_create(&th, NULL, thread_main, NULL)))
		wl_fail("pthread_create: %s", strerror(r));
	while (!thread_tid)
		wl_nap_ms(1);
	bool threads = pidfd_at(thread_tid, PIDFD_THREAD, FD_THREAD) == FD_THREAD;
	if (dup2(FD_RUN, FD_DUP) != FD_DUP)
		wl_fail("dup2: %s", strerror(errno));
	wl_ready();
	wl_await_trigger();

	want(FD_RUN, run, O_NONBLOCK, FD_CLOEXEC);
	want(FD_ZOMBIE, zombie, 0, FD_CLOEXEC);
	want(FD_SELF, getpid(), 0, 0);
	want(FD_DUP, run, O_NONBLOCK, 0);
	/* one open file: a status flag set through one shows through the other */
	if (fcntl(FD_DUP, F_SETFL, 0) < 0 || (fcntl(FD_RUN, F_GETFL) & O_NONBLOCK))
		wl_fail("fd %d and its dup %d are not one open file", FD_RUN, FD_DUP);
	fcntl(FD_DUP, F_SETFL, O_NONBLOCK);
	if (threads) {
		want(FD_THREAD, thread_tid, O_EXCL, FD_CLOEXEC);
		if (syscall(SYS_pidfd_send_signal, FD_THREAD, SIGUSR1, NULL, 0) < 0)
			wl_fail("pidfd_send_signal to the thread: %s", strerror(errno));
		for (int i = 0; i < 1000 && !thread_got; i++)
			wl_nap_ms(1);
		if (!thread_got)
			wl_fail("the thread's pidfd: SIGUSR1 did not arrive");
	}
	if (!readable(FD_ZOMBIE))
		wl_fail("the zombie's pidfd is not readable");
	check_waitid(FD_ZOMBIE, CLD_EXITED, 5, "zombie");
	wl_children[1] = 0;
	if (readable(FD_RUN))
		wl_fail("the running child's pidfd is readable before it ended");
	if (syscall(SYS_pidfd_send_signal, FD_RUN, SIGTERM, NULL, 0) < 0)
		wl_fail("pidfd_send_signal: %s", strerror(errno));
	check_waitid(FD_RUN, CLD_KILLED, SIGTERM, "running child");
	wl_children[0] = 0;
	wl_pass();
}
