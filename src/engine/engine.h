/* The checkpoint/restore engine: our own, ptrace-based (docs/engine.md; see
 * docs/image-format.md for what an image holds). Library code: it reports
 * through cd_err and logs nothing above debug.
 *
 * Call it from a single-threaded process (the daemon's forked worker): the
 * restore clones new tasks from the caller and runs code in them before
 * their memory is replaced. It needs root (CAP_SYS_PTRACE, CAP_SYS_ADMIN for
 * the exe link, set_tid). SIGCHLD is at its default while a call runs. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "shared/error.h"

#define CD_ENGINE_OPTS_VERSION 1

struct cd_dump_opts {
	int version;        /* CD_ENGINE_OPTS_VERSION */
	pid_t pid;          /* root of the tree to checkpoint */
	const char *dir;    /* image directory; must not exist yet */
	bool leave_running; /* detach instead of killing the tree afterwards */
	bool shell_job;     /* the root's session leader may be outside the tree */
};

struct cd_restore_opts {
	int version;     /* CD_ENGINE_OPTS_VERSION */
	const char *dir; /* image directory */
	/* Replacements for the root task's external stdio (fd 0, 1, 2 and
	 * every fd sharing those open files); -1 leaves the caller's own fd. */
	int stdio_fd[3];
};

/* Checkpoints the tree rooted at opts->pid. On failure nothing is left in
 * opts->dir and the tree runs on untouched. */
int cd_engine_dump(const struct cd_dump_opts *opts, cd_err *err);

/* Validates the image, then recreates the tree as a child of the caller,
 * running when this returns; the caller reaps the root (waitpid).
 * *ret_pid gets the root's pid. On failure no process is left behind. */
int cd_engine_restore(const struct cd_restore_opts *opts, pid_t *ret_pid, cd_err *err);
