/* Starting a job's process: its own session, the caller's environment,
 * working directory and credentials, stdio already opened by the caller.
 * Failures up to and including exec are reported back, so a command that
 * cannot start creates no job. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "shared/error.h"

struct spawn_req {
	char **argv;
	char **envp;
	const char *cwd;
	bool set_ids; /* switch to uid/gid/groups below */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	int ngroups;
	int stdin_fd;
	int stdout_fd; /* -1: open out_path instead, after switching credentials */
	int stderr_fd;
	const char *out_path;
	bool new_session;
};

/* Opens a job's output file (--out) for appending, 0600 when created like a
 * job log, never through a symbolic link: one a user planted would send the
 * output of root's job to the link's target. Open it with the credentials
 * of whoever asked for it. Returns the fd, or -1 with errno (ELOOP: a link).
 * Only plain system calls: fit for a forked child. */
int spawn_open_out(const char *path);

/* The message for a failed spawn_open_out of path. */
int spawn_out_error(const char *path, int code, cd_err *err);

/* On success the child has exec'd; *ret_pid is its PID. */
int spawn_process(const struct spawn_req *req, pid_t *ret_pid, cd_err *err);

/* A new pty (master and slave, both O_CLOEXEC) of rows x cols (0: 24x80),
 * for an attachable job's stdio. */
int spawn_open_pty(int *ret_master, int *ret_slave, unsigned short rows, unsigned short cols,
                   cd_err *err);
