/* What dump and restore share: running a worker, and deleting checkpoints. */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "daemon/cr.h"
#include "daemon/op.h"
#include "job/checkpoint.h"
#include "storage/storage.h"

int cr_run_worker(struct api *api, int (*fn)(void *), void *arg, struct op_shared *op,
                  const char *what, cd_err *err)
{
	pid_t pid;
	int r;

	r = job_manager_fork_worker(api->jm, fn, arg, NULL, 0, &pid, err);
	if (r < 0)
		return cd_err_wrap(err, "%s", what);
	return cr_wait_worker(api, pid, op, what, err);
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
	struct db_checkpoint cp;
	int r;

	r = job_manager_checkpoint_get(api->jm, caller, id, &cp, err);
	if (r < 0)
		return r;
	r = storage_remove(cp.path, err);
	db_checkpoint_clear(&cp);
	if (r < 0)
		return cd_err_wrap(err, "delete checkpoint %s", id);
	return job_manager_checkpoint_delete(api->jm, caller, id, err);
}
