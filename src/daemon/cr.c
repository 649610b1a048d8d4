/* What dump and restore share: running a worker, and deleting checkpoints. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "daemon/cr.h"
#include "daemon/op.h"
#include "engine/engine.h"
#include "job/checkpoint.h"
#include "shared/log.h"
#include "storage/storage.h"

static void on_sigterm(int sig)
{
	(void)sig;
	cd_engine_cancel();
}

void cr_worker_cancellable(void)
{
	/* SA_RESTART: the engine looks at the flag at its safe points; an
	 * interrupted waitpid or ptrace wait half-way through releasing a tree
	 * would only leave it worse */
	struct sigaction sa = {.sa_handler = on_sigterm, .sa_flags = SA_RESTART};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
}

bool cr_wait_worker_pipe(int fd, int client_fd, pid_t worker, const char *what)
{
	bool gone = false;

	for (;;) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
		                      {.fd = gone ? -1 : client_fd, .events = POLLRDHUP}};

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return gone;
		if (p[0].revents)
			return gone;
		if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			log_info("%s: the client hung up: cancelling worker %d", what, (int)worker);
			kill(worker, SIGTERM);
			gone = true;
		}
	}
}

int cr_wait_worker(struct api *api, pid_t pid, struct op_shared *op, const char *what, cd_err *err)
{
	int status;

	if (job_manager_wait_worker(api->jm, pid, &status) < 0)
		return cd_err_set(err, ECHILD, "%s: lost the worker %d", what, (int)pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (op->err.msg[0]) {
		*err = op->err;
		return -(err->code ? err->code : EIO);
	}
	if (WIFSIGNALED(status))
		return cd_err_set(err, EIO, "%s: the worker was killed by signal %d (%s)", what,
		                  WTERMSIG(status), strsignal(WTERMSIG(status)));
	return cd_err_set(err, EIO, "%s: the worker failed with code %d", what,
	                  WEXITSTATUS(status));
}

int cr_checkpoint_delete(struct api *api, const struct job_caller *caller, const char *id,
                         cd_err *err)
{
	struct db_checkpoint cp = {0};
	int r;

	r = job_manager_checkpoint_may_delete(api->jm, caller, id, err);
	if (r == 0)
		r = job_manager_checkpoint_get(api->jm, caller, id, &cp, err);
	if (r != 0)
		return r;
	r = storage_remove(cp.path, err);
	db_checkpoint_clear(&cp);
	if (r < 0)
		return cd_err_wrap(err, "delete checkpoint %s", id);
	return job_manager_checkpoint_delete(api->jm, caller, id, err);
}

int cr_image_format(const char *path, storage_compression *ret, cd_err *err)
{
	char names[96] = "";
	struct stat st;

	if (stat(path, &st) < 0)
		return cd_err_sys(err, errno, "checkpoint %s", path);
	if (S_ISDIR(st.st_mode) || storage_compression_from_suffix(path) != STORAGE_NONE)
		return storage_detect(path, ret, err);
	for (int c = STORAGE_TAR; c <= STORAGE_ZSTD; c++) {
		size_t n = strlen(names);

		snprintf(names + n, sizeof(names) - n, "%s%s", c == STORAGE_TAR ? "" : ", ",
		         storage_compression_suffix((storage_compression)c));
	}
	return cd_err_set(err, EINVAL,
	                  "checkpoint %s: not a checkpoint image: an archive's name ends in one "
	                  "of %s (or give an image directory)",
	                  path, names);
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

void cr_dump_timings(struct op_shared *op, const struct cd_dump_stats *st, bool leave_running)
{
	op_time(op, "freeze (seize the tree)", ms(st->freeze_ns));
	op_time(op, "task state (registers, /proc, injected calls)", ms(st->state_ns));
	op_time(op, "files", ms(st->files_ns));
	op_time(op, "memory (pagemap scan, read pages)", ms(st->mem_scan_ns));
	op_time(op, "write page files", ms(st->write_ns));
	op_time(op, "fsync (page files, manifest)", ms(st->fsync_ns));
	op_time(op, leave_running ? "release the tree" : "kill the tree", ms(st->release_ns));
	op_time(op, "engine dump (all of the above)", ms(st->total_ns));
}

void cr_restore_timings(struct op_shared *op, const struct cd_restore_stats *st)
{
	op_time(op, "validate (manifest, page file sizes, pids)", ms(st->validate_ns));
	op_time(op, "files (open, refill pipes)", ms(st->files_ns));
	op_time(op, "create the tree", ms(st->create_ns));
	op_time(op, "memory (map, fill)", ms(st->mem_ns));
	op_time(op, "other state (registers, signals, creds)", ms(st->state_ns));
	op_time(op, "release", ms(st->release_ns));
	op_time(op, "engine restore (all of the above)", ms(st->total_ns));
}
