/* wl-seccomp [strict|notif|differ]: seccomp across a checkpoint. With no_new_privs set and a
 * second thread running, two filters are installed with SECCOMP_FILTER_FLAG_TSYNC (one chain
 * for both threads): the older makes getpgid and getsid fail with EPERM, the newer (with
 * SECCOMP_FILTER_FLAG_LOG) getpgid with EACCES, which wins as the newer. After the trigger, in
 * both threads: getpgid fails with EACCES, getsid with EPERM, getpid and getppid work,
 * PR_GET_SECCOMP is 2, no_new_privs is 1, and the status shows 2 filters. With "strict", a child
 * in strict mode (SECCOMP_MODE_STRICT) blocks in read on a pipe: after the trigger it reads,
 * writes back, and its next getpid kills it (SIGKILL). With "notif" a filter returns
 * SECCOMP_RET_USER_NOTIF, with "differ" each thread adds a filter of its own (as many filters,
 * other programs): the dump refuses both, naming them. */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "wl.h"

#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define NR    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ON(nr, action)                                                                             \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (action))

static pthread_barrier_t ready, check;
static char thread_fail[256];
static bool differ;

static long install(struct sock_filter *prog, unsigned short len, unsigned flags)
{
	struct sock_fprog fp = {.len = len, .filter = prog};

	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fp);
}

static void install_filters(bool notif)
{
	struct sock_filter older[] = {NR, ON(SYS_getpgid, SECCOMP_RET_ERRNO | EPERM),
	                              ON(SYS_getsid, SECCOMP_RET_ERRNO | EPERM), ALLOW};
	struct sock_filter newer[] = {NR, ON(SYS_getpgid, SECCOMP_RET_ERRNO | EACCES), ALLOW};
	struct sock_filter notify[] = {NR, ON(SYS_getpriority, SECCOMP_RET_USER_NOTIF), ALLOW};

	if (install(older, sizeof(older) / sizeof(older[0]), SECCOMP_FILTER_FLAG_TSYNC) != 0)
		wl_fail("seccomp (older): %s", strerror(errno));
	if (install(newer, sizeof(newer) / sizeof(newer[0]),
	            SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG) != 0)
		wl_fail("seccomp (newer): %s", strerror(errno));
	if (notif &&
	    install(notify, sizeof(notify) / sizeof(notify[0]), SECCOMP_FILTER_FLAG_TSYNC) != 0)
		wl_fail("seccomp (notify): %s", strerror(errno));
}

/* The checks, in the calling thread; a reason on failure. */
static const char *verify(char *buf, size_t len)
{
	errno = 0;
	if (syscall(SYS_getpgid, 0) != -1 || errno != EACCES)
		return snprintf(buf, len, "getpgid: errno %d, want EACCES", errno), buf;
	errno = 0;
	if (syscall(SYS_getsid, 0) != -1 || errno != EPERM)
		return snprintf(buf, len, "getsid: errno %d, want EPERM", errno), buf;
	if (syscall(SYS_getpid) != getpid() || syscall(SYS_getppid) <= 0)
		return "getpid or getppid failed";
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
		return "PR_GET_SECCOMP is not 2";
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return "no_new_privs is not 1";
	return NULL;
}

static void *thread_main(void *arg)
{
	struct sock_filter own[] = {NR, ON(SYS_getuid, SECCOMP_RET_ERRNO | EPERM), ALLOW};
	char buf[200];
	const char *why;

	(void)arg;
	pthread_barrier_wait(&ready);
	/* after the main thread's TSYNC: a chain of its own */
	if (differ && install(own, sizeof(own) / sizeof(own[0]), 0) != 0)
		snprintf(thread_fail, sizeof(thread_fail), "own filter: %s", strerror(errno));
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&check);
	if (!thread_fail[0] && (why = verify(buf, sizeof(buf))))
		snprintf(thread_fail, sizeof(thread_fail), "%s", why);
	return NULL;
}

static int filters_in_status(void)
{
	char line[256];
	int n = -1;
	FILE *f = fopen("/proc/self/status", "re");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp_filters: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* A child in strict mode, blocked in read: after the trigger it answers,
 * and its next call other than read, write, exit or sigreturn kills it. */
static void strict_mode(void)
{
	int down[2], up[2], st;
	char c = 0;

	if (pipe(down) < 0 || pipe(up) < 0)
		wl_fail("pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0)
			syscall(SYS_exit, 2);
		if (syscall(SYS_read, down[0], &c, 1) == 1)
			syscall(SYS_write, up[1], "k", 1);
		syscall(SYS_getpid); /* killed here */
		syscall(SYS_exit, 3);
	}
	wl_ready();
	wl_await_trigger();
	if (write(down[1], "g", 1) != 1 || read(up[0], &c, 1) != 1 || c != 'k')
		wl_fail("the strict child did not answer");
	if (waitpid(child, &st, 0) != child || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		wl_fail("the strict child: status %#x, want killed by SIGKILL (strict mode)", st);
	wl_pass();
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	char buf[256];
	const char *why;
	pthread_t th;

	wl_init("wl-seccomp");
	if (!strcmp(mode, "strict"))
		strict_mode();
	differ = !strcmp(mode, "differ");
	if (*mode && !differ && strcmp(mode, "notif"))
		wl_fail("unknown mode %s", mode);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		wl_fail("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	if (pthread_barrier_init(&ready, NULL, 2) || pthread_barrier_init(&check, NULL, 2) ||
	    pthread_create(&th, NULL, thread_main, NULL))
		wl_fail("pthread setup failed");
	install_filters(!strcmp(mode, "notif"));
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&ready);
	/* as many filters as the thread, not the same programs */
	struct sock_filter own[] = {NR, ON(SYS_getgid, SECCOMP_RET_ERRNO | EPERM), ALLOW};
	if (differ && install(own, sizeof(own) / sizeof(own[0]), 0) != 0)
		wl_fail("own filter: %s", strerror(errno));
	wl_ready();
	wl_await_trigger();
	if ((why = verify(buf, sizeof(buf))))
		wl_fail("main thread: %s", why);
	if (filters_in_status() != (*mode ? 3 : 2))
		wl_fail("Seccomp_filters: %d", filters_in_status());
	pthread_barrier_wait(&check);
	pthread_join(th, NULL);
	if (thread_fail[0])
		wl_fail("thread: %s", thread_fail);
	wl_pass();
}
