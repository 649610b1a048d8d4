/* Kernel features the engine depends on, probed once per process and kept
 * (as CRIU's kerndat does), never guessed from the kernel's version. A dump
 * or a restore that needs a missing one refuses before it touches anything,
 * naming it; `cedana check` reports them all through cd_engine_probe. A
 * probe fails on purpose when $CEDANA_ENGINE_FAULT is "probe-" and its
 * name with spaces as dashes (probe-kcmp, probe-clone3-set_tid), so tests
 * see the refusal. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/membarrier.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
/* From linux/ptrace.h, which clashes with glibc's sys/ptrace.h. */
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS     77
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif
#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

enum {
	P_PTRACE,
	P_RSEQ,
	P_CLONE3,
	P_KCMP,
	P_PIDFD_GETFD,
	P_USERFAULTFD,
	P_MEMBARRIER,
	P_TIMER_IDS,
	P_MAX,
};

static struct cd_probe probes[P_MAX] = {
    [P_PTRACE] = {.name = "ptrace", .needed_by = CD_PROBE_DUMP | CD_PROBE_RESTORE},
    [P_RSEQ] = {.name = "rseq config", .needed_by = CD_PROBE_DUMP},
    [P_CLONE3] = {.name = "clone3 set_tid", .needed_by = CD_PROBE_RESTORE},
    [P_KCMP] = {.name = "kcmp", .needed_by = CD_PROBE_DUMP},
    [P_PIDFD_GETFD] = {.name = "pidfd_getfd"},
    [P_USERFAULTFD] = {.name = "userfaultfd"},
    [P_MEMBARRIER] = {.name = "membarrier"},
    /* needed only by a tree with POSIX timers: posix-timers.c asks */
    [P_TIMER_IDS] = {.name = "timer ids"},
};

static void set(int i, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set(int i, bool ok, const char *fmt, ...)
{
	va_list ap;

	probes[i].ok = ok;
	va_start(ap, fmt);
	vsnprintf(probes[i].detail, sizeof(probes[i].detail), fmt, ap);
	va_end(ap);
}

/* Seizes a child of ours, interrupts it and reads its rseq configuration
 * (PTRACE_GET_RSEQ_CONFIGURATION, Linux 5.13), which the dump reads of
 * every task. */
static void probe_ptrace(void)
{
	struct {
		uint64_t ptr;
		uint32_t size, sig, flags, pad;
	} conf;
	pid_t pid = fork();
	long r, rs = -1;
	int e, es = 0;

	if (pid < 0) {
		set(P_PTRACE, false, "fork: %s", strerror(errno));
		set(P_RSEQ, false, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		for (;;)
			pause();
	}
	r = ptrace(PTRACE_SEIZE, pid, 0, 0);
	e = errno;
	if (r == 0)
		r = ptrace(PTRACE_INTERRUPT, pid, 0, 0);
	/* no waitpid for the stop: a caller's reaper (the daemon's) may take
	 * it; the request fails with ESRCH until the child is stopped */
	/* polled at 20 us, doubling to 1 ms, for 2 s at most */
	for (long waited_us = 0, nap_us = 20; r == 0 && waited_us < 2000000;) {
		rs = ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid,
		            (void *)sizeof(conf), &conf);
		es = errno;
		if (rs >= 0 || es != ESRCH)
			break;
		usleep((useconds_t)nap_us);
		waited_us += nap_us;
		nap_us = nap_us < 1000 ? 2 * nap_us : 1000;
	}
	kill(pid, SIGKILL);
	/* the reaper may get there first: that is fine */
	waitpid(pid, NULL, 0);
	if (r < 0)
		set(P_PTRACE, false, "PTRACE_SEIZE: %s", strerror(e));
	else
		set(P_PTRACE, true, "PTRACE_SEIZE and PTRACE_INTERRUPT work");
	if (rs < 0)
		set(P_RSEQ, false, "PTRACE_GET_RSEQ_CONFIGURATION: %s",
		    r < 0 ? "no traced task" : strerror(es));
	else
		set(P_RSEQ, true, "PTRACE_GET_RSEQ_CONFIGURATION works");
}

static void probe_clone3(void)
{
	pid_t taken = getpid();
	struct clone_args args = {
	    .exit_signal = SIGCHLD, .set_tid = (unsigned long)&taken, .set_tid_size = 1};
	long r = syscall(SYS_clone3, &args, sizeof(args));
	int e = errno;

	if (r == 0)
		_exit(0);
	if (r > 0) {
		waitpid((pid_t)r, NULL, 0);
		set(P_CLONE3, true, "clone3 accepts set_tid");
	} else if (e == EEXIST) {
		set(P_CLONE3, true, "clone3 set_tid works (a taken PID is refused)");
	} else if (e == EPERM) {
		set(P_CLONE3, false, "needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN");
	} else {
		set(P_CLONE3, false, "clone3: %s", strerror(e));
	}
}

/* Two fds of one open file are the same to kcmp, two opens are not. */
static void probe_kcmp(void)
{
	_cleanup_close_ int a = open("/dev/null", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int b = a < 0 ? -1 : fcntl(a, F_DUPFD_CLOEXEC, 0);
	_cleanup_close_ int c = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t me = getpid();

	if (a < 0 || b < 0 || c < 0) {
		set(P_KCMP, false, "open /dev/null: %s", strerror(errno));
		return;
	}
	long same = syscall(SYS_kcmp, me, me, KCMP_FILE, a, b);
	int e = errno;
	long other = same == 0 ? syscall(SYS_kcmp, me, me, KCMP_FILE, a, c) : -1;
	if (same < 0)
		set(P_KCMP, false, "kcmp(KCMP_FILE): %s", strerror(e));
	else if (same != 0 || other <= 0)
		set(P_KCMP, false, "kcmp(KCMP_FILE) does not tell open files apart");
	else
		set(P_KCMP, true, "kcmp(KCMP_FILE) orders open files");
}

static void probe_pidfd_getfd(void)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	_cleanup_close_ int fd = -1;

	if (pidfd < 0) {
		set(P_PIDFD_GETFD, false, "pidfd_open: %s", strerror(errno));
		return;
	}
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, pidfd, 0);
	if (fd < 0)
		set(P_PIDFD_GETFD, false, "pidfd_getfd: %s", strerror(errno));
	else
		set(P_PIDFD_GETFD, true, "pidfd_open and pidfd_getfd work");
}

static void probe_userfaultfd(void)
{
	_cleanup_close_ int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = {.api = UFFD_API};

	if (fd < 0)
		set(P_USERFAULTFD, false, "userfaultfd: %s", strerror(errno));
	else if (ioctl(fd, UFFDIO_API, &api) < 0)
		set(P_USERFAULTFD, false, "UFFDIO_API: %s", strerror(errno));
	else if (!(api.features & UFFD_FEATURE_WP_ASYNC))
		set(P_USERFAULTFD, false,
		    "no UFFD_FEATURE_WP_ASYNC: incremental dumps cannot track dirty pages");
	else
		set(P_USERFAULTFD, true, "userfaultfd with UFFD_FEATURE_WP_ASYNC");
}

/* Before Linux 6.3 the dump cannot ask a task for its registrations and
 * finds the private ones by trying them (attrs.c). */
static void probe_membarrier(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds < 0)
		set(P_MEMBARRIER, false, "MEMBARRIER_CMD_QUERY: %s", strerror(errno));
	else if (cmds & MEMBARRIER_CMD_GET_REGISTRATIONS)
		set(P_MEMBARRIER, true, "membarrier with MEMBARRIER_CMD_GET_REGISTRATIONS");
	else
		set(P_MEMBARRIER, true,
		    "membarrier without MEMBARRIER_CMD_GET_REGISTRATIONS: registrations are "
		    "found by trying them");
}

/* Whether timer_create can be told the id to create (Linux 6.16), so that
 * POSIX timers come back with the ids the task knows. */
static void probe_timer_ids(void)
{
	if (prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0, 0) < 0)
		set(P_TIMER_IDS, false, "PR_TIMER_CREATE_RESTORE_IDS: %s: POSIX timers are refused",
		    strerror(errno));
	else
		set(P_TIMER_IDS, true, "PR_TIMER_CREATE_RESTORE_IDS works");
}

/* A failure asked for by a test: probe-NAME, spaces as dashes. */
static void inject_faults(void)
{
	for (int i = 0; i < P_MAX; i++) {
		char point[64];
		snprintf(point, sizeof(point), "probe-%s", probes[i].name);
		for (char *c = point; *c; c++)
			if (*c == ' ')
				*c = '-';
		if (cd_fault(point))
			set(i, false, "injected fault %s", point);
	}
}

static void probe_all(void)
{
	probe_ptrace();
	probe_clone3();
	probe_kcmp();
	probe_pidfd_getfd();
	probe_userfaultfd();
	probe_membarrier();
	probe_timer_ids();
	inject_faults();
}

const struct cd_probe *cd_engine_probe(size_t *ret_n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, probe_all);
	*ret_n = P_MAX;
	return probes;
}

bool cd_probe_ok(const char *name)
{
	size_t n;
	const struct cd_probe *p = cd_engine_probe(&n);

	for (size_t i = 0; i < n; i++)
		if (!strcmp(p[i].name, name))
			return p[i].ok;
	return false;
}

int cd_probe_require(unsigned what, cd_err *err)
{
	size_t n;
	const struct cd_probe *p = cd_engine_probe(&n);

	for (size_t i = 0; i < n; i++)
		if ((p[i].needed_by & what) && !p[i].ok)
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "the kernel feature \"%s\" is missing (%s): a %s needs it", p[i].name,
			    p[i].detail, what & CD_PROBE_DUMP ? "dump" : "restore");
	return 0;
}
