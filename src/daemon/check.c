#include "daemon/check.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/cleanup.h"

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static void add(json_t *arr, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add(json_t *arr, const char *name, bool ok, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_array_append_new(
	    arr, json_pack("{s:s, s:b, s:s}", "name", name, "ok", ok, "detail", detail));
}

static void check_ptrace(json_t *arr)
{
	pid_t pid = fork();
	long r;
	int e;

	if (pid < 0) {
		add(arr, "ptrace", false, "fork: %s", strerror(errno));
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
	kill(pid, SIGKILL);
	/* the reaper may get there first: that is fine */
	waitpid(pid, NULL, 0);
	if (r < 0)
		add(arr, "ptrace", false, "PTRACE_SEIZE: %s", strerror(e));
	else
		add(arr, "ptrace", true, "PTRACE_SEIZE and PTRACE_INTERRUPT work");
}

static void check_clone3_set_tid(json_t *arr)
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
		add(arr, "clone3 set_tid", true, "clone3 accepts set_tid");
	} else if (e == EEXIST) {
		add(arr, "clone3 set_tid", true, "clone3 set_tid works (a taken PID is refused)");
	} else if (e == EPERM) {
		add(arr, "clone3 set_tid", false, "needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN");
	} else {
		add(arr, "clone3 set_tid", false, "clone3: %s", strerror(e));
	}
}

static void check_pidfd_getfd(json_t *arr)
{
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	_cleanup_close_ int fd = -1;

	if (pidfd < 0) {
		add(arr, "pidfd_getfd", false, "pidfd_open: %s", strerror(errno));
		return;
	}
	fd = (int)syscall(SYS_pidfd_getfd, pidfd, pidfd, 0);
	if (fd < 0)
		add(arr, "pidfd_getfd", false, "pidfd_getfd: %s", strerror(errno));
	else
		add(arr, "pidfd_getfd", true, "pidfd_open and pidfd_getfd work");
}

static void check_userfaultfd(json_t *arr)
{
	_cleanup_close_ int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	struct uffdio_api api = {.api = UFFD_API};

	if (fd < 0) {
		add(arr, "userfaultfd", false, "userfaultfd: %s", strerror(errno));
		return;
	}
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		add(arr, "userfaultfd", false, "UFFDIO_API: %s", strerror(errno));
		return;
	}
	if (!(api.features & UFFD_FEATURE_WP_ASYNC))
		add(arr, "userfaultfd", false,
		    "no UFFD_FEATURE_WP_ASYNC: incremental dumps cannot track dirty pages");
	else
		add(arr, "userfaultfd", true, "userfaultfd with UFFD_FEATURE_WP_ASYNC");
}

static void check_freezer(json_t *arr)
{
	struct statfs fs;

	if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) {
		if (access("/sys/fs/cgroup/cgroup.subtree_control", F_OK) == 0)
			add(arr, "cgroup freezer", true, "cgroup v2 (cgroup.freeze)");
		else
			add(arr, "cgroup freezer", false,
			    "cgroup v2 without cgroup.subtree_control");
		return;
	}
	if (access("/sys/fs/cgroup/freezer/freezer.state", F_OK) == 0 ||
	    access("/sys/fs/cgroup/freezer", F_OK) == 0)
		add(arr, "cgroup freezer", true, "cgroup v1 freezer");
	else
		add(arr, "cgroup freezer", false, "no cgroup freezer found under /sys/fs/cgroup");
}

static void check_dir_writable(json_t *arr, const char *name, const char *dir)
{
	if (access(dir, W_OK | X_OK) == 0)
		add(arr, name, true, "%s is writable", dir);
	else
		add(arr, name, false, "%s: %s", dir, strerror(errno));
}

static void check_recovered(json_t *arr, json_t *recovered)
{
	size_t n = json_array_size(recovered), i, len = 0;
	char detail[400] = "";
	json_t *v;

	if (n == 0) {
		add(arr, "recovery", true, "nothing was left in flight by an earlier daemon");
		return;
	}
	json_array_foreach(recovered, i, v)
	{
		int w = snprintf(detail + len, sizeof(detail) - len, "%s%s", i ? "; " : "",
		                 json_string_value(v));
		if (w < 0 || (size_t)w >= sizeof(detail) - len)
			break;
		len += (size_t)w;
	}
	add(arr, "recovery", true, "at start-up, %zu operation(s) an earlier daemon left: %s", n,
	    detail);
}

json_t *check_run(struct job_manager *jm, const struct cd_config *cfg, json_t *recovered, bool full)
{
	json_t *arr = json_array();
	cd_err err = {0};

	if (job_manager_db_check(jm, &err) < 0)
		add(arr, "db", false, "%s", err.msg);
	else
		add(arr, "db", true, "%s is readable", cfg->db_path);
	check_ptrace(arr);
	check_clone3_set_tid(arr);
	check_pidfd_getfd(arr);
	check_userfaultfd(arr);
	check_freezer(arr);
	check_recovered(arr, recovered);
	if (full) {
		check_dir_writable(arr, "job log dir", cfg->job_log_dir);
		check_dir_writable(arr, "checkpoint dir", cfg->checkpoint_dir);
	}
	return arr;
}
