/* What checkpoint/restore asks of the job manager: the target of a dump,
 * the checkpoint records of a job, and the job a restore brings back. The
 * engine work itself runs in the daemon's workers. */
#include "job/checkpoint.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "job/codec.h"
#include "job/manager-internal.h"
#include "job/proc.h"
#include "shared/cleanup.h"

static int get_authorized(struct job_manager *jm, const struct job_caller *c, const char *jid,
                          struct db_job *ret_job, cd_err *err)
{
	int r = db_job_get(jm->db, jid, ret_job, err);

	if (r < 0)
		return r;
	if (c->uid != 0 && c->uid != ret_job->uid) {
		db_job_clear(ret_job);
		return cd_err_set(err, EPERM, "permission denied: job %s belongs to another user",
		                  jid);
	}
	return 0;
}

static int target_of_job(struct job_manager *jm, const struct job_caller *c, const char *jid,
                         struct job_dump_target *t, cd_err *err)
{
	struct db_job job;
	int r;

	r = get_authorized(jm, c, jid, &job, err);
	if (r < 0)
		return r;
	if (!job_is_live(&job))
		r = cd_err_set(err, ESRCH,
		               "job %s is not running (halted): there is nothing to dump", jid);
	t->pid = job.pid;
	t->uid = job.uid;
	t->gid = job.gid;
	snprintf(t->jid, sizeof(t->jid), "%s", job.jid);
	snprintf(t->log_path, sizeof(t->log_path), "%s", job.log_path ? job.log_path : "");
	t->attachable = job.attachable;
	db_job_clear(&job);
	return r;
}

static int target_of_pid(const struct job_caller *c, pid_t pid, struct job_dump_target *t,
                         cd_err *err)
{
	struct proc_ids ids;
	int r;

	if (pid <= 0)
		return cd_err_set(err, EINVAL, "invalid PID %d", (int)pid);
	r = authorize_pid(c, pid, err);
	if (r == 0)
		r = proc_read_ids(pid, &ids, err);
	if (r == -ENOENT)
		return cd_err_set(err, ENOENT, "no process with PID %d", (int)pid);
	if (r < 0)
		return r;
	t->pid = pid;
	t->uid = ids.uid[0];
	t->gid = ids.gid[0];
	t->jid[0] = '\0';
	t->log_path[0] = '\0';
	t->attachable = false;
	return 0;
}

int job_manager_dump_target(struct job_manager *jm, const struct job_caller *caller,
                            const char *jid, pid_t pid, struct job_dump_target *ret, cd_err *err)
{
	int r;

	if (!jid)
		return target_of_pid(caller, pid, ret, err);
	pthread_mutex_lock(&jm->lock);
	r = target_of_job(jm, caller, jid, ret, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

int job_manager_checkpoints(struct job_manager *jm, const struct job_caller *caller,
                            const char *jid, json_t **ret, cd_err *err)
{
	struct db_checkpoint *cps = NULL;
	struct db_job job;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&jm->lock);
	r = get_authorized(jm, caller, jid, &job, err);
	if (r == 0) {
		db_job_clear(&job);
		r = db_checkpoint_list(jm->db, jid, &cps, &n, err);
	}
	pthread_mutex_unlock(&jm->lock);
	if (r < 0)
		return r;
	*ret = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*ret, job_checkpoint_to_json(&cps[i]));
	db_checkpoint_list_free(cps, n);
	return 0;
}

static int checkpoint_locked(struct job_manager *jm, const struct job_caller *caller,
                             const char *id, struct db_checkpoint *ret_cp, cd_err *err)
{
	struct db_job job;
	int r;

	r = db_checkpoint_get(jm->db, id, ret_cp, err);
	if (r < 0)
		return r;
	r = get_authorized(jm, caller, ret_cp->jid, &job, err);
	if (r < 0) {
		db_checkpoint_clear(ret_cp);
		return r;
	}
	db_job_clear(&job);
	return 0;
}

int job_manager_checkpoint_get(struct job_manager *jm, const struct job_caller *caller,
                               const char *id, struct db_checkpoint *ret_cp, cd_err *err)
{
	int r;

	pthread_mutex_lock(&jm->lock);
	r = checkpoint_locked(jm, caller, id, ret_cp, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

/* An incremental checkpoint needs its parent: a parent is not deleted
 * while a checkpoint of its job names it (delete the newest first). */
static int refuse_parent(struct job_manager *jm, const struct db_checkpoint *cp, cd_err *err)
{
	struct db_checkpoint *cps = NULL;
	size_t n = 0;
	int r = db_checkpoint_list(jm->db, cp->jid, &cps, &n, err);

	for (size_t i = 0; r == 0 && i < n; i++)
		if (!strcmp(cps[i].parent, cp->id))
			r = cd_err_set(err, EBUSY,
			               "checkpoint %s is the parent of incremental checkpoint %s: "
			               "delete that one first",
			               cp->id, cps[i].id);
	db_checkpoint_list_free(cps, n);
	return r;
}

/* Under the lock: the caller may see checkpoint id, and no other names it
 * as its parent. */
static int may_delete_locked(struct job_manager *jm, const struct job_caller *caller,
                             const char *id, cd_err *err)
{
	struct db_checkpoint cp;
	int r = checkpoint_locked(jm, caller, id, &cp, err);

	if (r == 0) {
		r = refuse_parent(jm, &cp, err);
		db_checkpoint_clear(&cp);
	}
	return r;
}

int job_manager_checkpoint_may_delete(struct job_manager *jm, const struct job_caller *caller,
                                      const char *id, cd_err *err)
{
	pthread_mutex_lock(&jm->lock);
	int r = may_delete_locked(jm, caller, id, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

int job_manager_checkpoint_delete(struct job_manager *jm, const struct job_caller *caller,
                                  const char *id, cd_err *err)
{
	pthread_mutex_lock(&jm->lock);
	int r = may_delete_locked(jm, caller, id, err);
	if (r == 0)
		r = db_checkpoint_delete(jm->db, id, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

static int restore_target_locked(struct job_manager *jm, const struct job_caller *caller,
                                 const char *jid, struct job_restore_target *t, cd_err *err)
{
	struct db_checkpoint cp;
	struct db_job job;
	int r;

	r = get_authorized(jm, caller, jid, &job, err);
	if (r < 0)
		return r;
	if (job_is_live(&job))
		r = cd_err_set(err, EBUSY,
		               "job %s is still running (pid %d): kill it before restoring it", jid,
		               (int)job.pid);
	if (r == 0)
		r = db_checkpoint_latest(jm->db, jid, &cp, err);
	if (r == 0) {
		t->path = TAKE_PTR(cp.path);
		t->log_path = TAKE_PTR(job.log_path);
		t->cmd = TAKE_PTR(job.cmd);
		t->uid = job.uid;
		t->gid = job.gid;
		db_checkpoint_clear(&cp);
	}
	db_job_clear(&job);
	return r;
}

int job_manager_restore_target(struct job_manager *jm, const struct job_caller *caller,
                               const char *jid, struct job_restore_target *ret, cd_err *err)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&jm->lock);
	r = restore_target_locked(jm, caller, jid, ret, err);
	pthread_mutex_unlock(&jm->lock);
	if (r < 0)
		job_restore_target_clear(ret);
	return r;
}

void job_restore_target_clear(struct job_restore_target *t)
{
	free(t->path);
	free(t->log_path);
	free(t->cmd);
	t->path = t->log_path = t->cmd = NULL;
}

int job_manager_pick_jid(struct job_manager *jm, const char *want, char *buf, size_t len,
                         cd_err *err)
{
	int r;

	pthread_mutex_lock(&jm->lock);
	r = pick_jid(jm, want, buf, len, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

const char *job_manager_log_dir(const struct job_manager *jm)
{
	return jm->log_dir;
}

void job_checkpoint_new_id(char *buf, size_t len)
{
	unsigned char rnd[6] = {0};

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0, sizeof(rnd)); /* still an id; a clash is refused by the DB */
	snprintf(buf, len, "ck-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
	         rnd[5]);
}
