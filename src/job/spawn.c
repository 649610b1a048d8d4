#include "job/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shared/cleanup.h"

extern char **environ;

enum spawn_stage { STAGE_SESSION = 1, STAGE_STDIO, STAGE_CREDS, STAGE_OUT, STAGE_CWD, STAGE_EXEC };

struct spawn_failure {
	int stage;
	int error;
};

/* Runs in the forked child of a threaded process: only simple calls until exec. */
static void child_fail(int fd, int stage)
{
	struct spawn_failure f = {stage, errno};

	if (write(fd, &f, sizeof(f)) < 0) {
		/* nothing left to report to */
	}
	_exit(127);
}

static void child_setup_signals(void)
{
	sigset_t all;

	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

static void child_stdio(const struct spawn_req *req, int status_fd)
{
	if (dup2(req->stdin_fd, 0) < 0)
		child_fail(status_fd, STAGE_STDIO);
	if (req->stdout_fd >= 0 && (dup2(req->stdout_fd, 1) < 0 || dup2(req->stderr_fd, 2) < 0))
		child_fail(status_fd, STAGE_STDIO);
	/* the daemon's sockets must not leak into the job, whoever opened them */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
}

int spawn_open_out(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
}

int spawn_out_error(const char *path, int code, cd_err *err)
{
	if (code == ELOOP)
		return cd_err_set(err, ELOOP, "output file %s is a symbolic link: refused", path);
	return cd_err_sys(err, code, "output file %s", path);
}

/* After the switch to the job's credentials: the file is opened as the caller. */
static void child_out_file(const struct spawn_req *req, int status_fd)
{
	int fd;

	if (req->stdout_fd >= 0 || !req->out_path)
		return;
	fd = spawn_open_out(req->out_path);
	if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
		child_fail(status_fd, STAGE_OUT);
}

static _Noreturn void child_run(const struct spawn_req *req, int status_fd)
{
	child_setup_signals();
	if (req->new_session && setsid() < 0)
		child_fail(status_fd, STAGE_SESSION);
	child_stdio(req, status_fd);
	if (req->set_ids && (setgroups(req->ngroups, req->groups) < 0 || setgid(req->gid) < 0 ||
	                     setuid(req->uid) < 0))
		child_fail(status_fd, STAGE_CREDS);
	child_out_file(req, status_fd);
	if (req->cwd && chdir(req->cwd) < 0)
		child_fail(status_fd, STAGE_CWD);
	/* execvpe searches the PATH of environ, not of envp */
	environ = req->envp;
	execvpe(req->argv[0], req->argv, req->envp);
	child_fail(status_fd, STAGE_EXEC);
	_exit(127);
}

static int report_failure(const struct spawn_req *req, const struct spawn_failure *f, cd_err *err)
{
	switch (f->stage) {
	case STAGE_EXEC:
		if (f->error == ENOENT)
			return cd_err_set(err, ENOENT, "command not found: %s", req->argv[0]);
		return cd_err_sys(err, f->error, "exec %s", req->argv[0]);
	case STAGE_CWD:
		return cd_err_sys(err, f->error, "working directory %s", req->cwd);
	case STAGE_OUT:
		return spawn_out_error(req->out_path, f->error, err);
	case STAGE_CREDS:
		return cd_err_sys(err, f->error, "switch to uid %u gid %u", (unsigned)req->uid,
		                  (unsigned)req->gid);
	default:
		return cd_err_sys(err, f->error, "set up the job's session and stdio");
	}
}

int spawn_process(const struct spawn_req *req, pid_t *ret_pid, cd_err *err)
{
	struct spawn_failure f;
	int pipefd[2];
	ssize_t n;
	pid_t pid;

	if (!req->argv || !req->argv[0])
		return cd_err_set(err, EINVAL, "no command given");
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "pipe");
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return cd_err_sys(err, e, "fork");
	}
	if (pid == 0) {
		close(pipefd[0]);
		child_run(req, pipefd[1]);
	}
	close(pipefd[1]);
	/* EOF means exec succeeded (the write end was close-on-exec) */
	do
		n = read(pipefd[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(f)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return report_failure(req, &f, err);
	}
	*ret_pid = pid;
	return 0;
}

int spawn_open_pty(int *ret_master, int *ret_slave, unsigned short rows, unsigned short cols,
                   cd_err *err)
{
	_cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct winsize ws = {.ws_row = rows ? rows : 24, .ws_col = cols ? cols : 80};
	char name[128];
	int slave;

	if (master < 0)
		return cd_err_sys(err, errno, "open a pty");
	if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)))
		return cd_err_sys(err, errno, "set up the pty");
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return cd_err_sys(err, errno, "open %s", name);
	ioctl(master, TIOCSWINSZ, &ws);
	*ret_master = TAKE_FD(master);
	*ret_slave = slave;
	return 0;
}
