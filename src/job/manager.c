/* The job manager's core: state, authorisation, queries, signals, attach
 * hand-over and reaping. Jobs are created in launch.c. */
#include "job/manager.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "job/codec.h"
#include "job/io.h"
#include "job/manager-internal.h"
#include "job/names.h"
#include "job/proc.h"
#include "shared/cleanup.h"
#include "shared/log.h"

static void rt_free(struct job_rt *rt)
{
	if (rt) {
		job_io_free(rt->io);
		free(rt);
	}
}

struct job_rt **rt_find(struct job_manager *jm, const char *jid, pid_t pid)
{
	for (struct job_rt **p = &jm->rts; *p; p = &(*p)->next)
		if ((jid && strcmp((*p)->jid, jid) == 0) || (!jid && (*p)->pid == pid))
			return p;
	return NULL;
}

void rt_remove(struct job_manager *jm, const char *jid)
{
	struct job_rt **p = rt_find(jm, jid, 0);
	struct job_rt *rt;

	if (!p)
		return;
	rt = *p;
	*p = rt->next;
	rt_free(rt);
}

int rt_add(struct job_manager *jm, const char *jid, pid_t pid, int master, cd_err *err)
{
	struct job_rt *rt = calloc(1, sizeof(*rt));
	int r;

	if (!rt) {
		if (master >= 0)
			close(master);
		return cd_err_sys(err, ENOMEM, "job %s", jid);
	}
	snprintf(rt->jid, sizeof(rt->jid), "%s", jid);
	rt->pid = pid;
	if (master >= 0) {
		r = job_io_start(master, &rt->io, err);
		if (r < 0) {
			free(rt);
			return r;
		}
	}
	rt->next = jm->rts;
	jm->rts = rt;
	return 0;
}

int job_manager_new(const char *db_path, const char *log_dir, struct job_manager **ret_jm,
                    cd_err *err)
{
	struct job_manager *jm = calloc(1, sizeof(*jm));
	int r;

	if (!jm || !(jm->log_dir = strdup(log_dir))) {
		free(jm);
		return cd_err_sys(err, ENOMEM, "job manager");
	}
	r = db_open(db_path, &jm->db, err);
	if (r < 0) {
		free(jm->log_dir);
		free(jm);
		return r;
	}
	pthread_mutex_init(&jm->lock, NULL);
	pthread_cond_init(&jm->worker_done, NULL);
	*ret_jm = jm;
	return 0;
}

void job_manager_free(struct job_manager *jm)
{
	if (!jm)
		return;
	while (jm->rts) {
		struct job_rt *rt = jm->rts;

		jm->rts = rt->next;
		rt_free(rt);
	}
	while (jm->workers) {
		struct worker *w = jm->workers;

		jm->workers = w->next;
		free(w);
	}
	db_close(jm->db);
	pthread_cond_destroy(&jm->worker_done);
	pthread_mutex_destroy(&jm->lock);
	free(jm->log_dir);
	free(jm);
}

/* Live status from /proc: the same PID with the same start time. */
static const char *job_status(const struct db_job *job)
{
	struct proc_stat st;
	cd_err e = {0};

	if (job->has_exit_code || job->pid <= 0)
		return "halted";
	if (proc_read_stat(job->pid, &st, &e) < 0 || st.start_time != job->start_time)
		return "halted";
	/* a zombie we will not reap (another parent's since a restart) has ended */
	if (st.state == 'Z' && st.ppid != getpid())
		return "halted";
	return proc_state_name(st.state);
}

bool job_is_live(const struct db_job *job)
{
	const char *s = job_status(job);

	return strcmp(s, "halted") != 0 && strcmp(s, "zombie") != 0;
}

json_t *job_json(struct job_manager *jm, const struct db_job *job)
{
	struct db_job shown = *job;
	struct db_checkpoint cp;
	cd_err e = {0};
	json_t *j;

	/* The GPU column: a live job whose tree holds GPU device files now
	 * (the gpu plugin needs no flag, so neither does the column). */
	shown.gpu = job->gpu || (job_is_live(job) && proc_tree_holds(job->pid, "/dev/nvidia"));
	if (db_checkpoint_latest(jm->db, job->jid, &cp, &e) < 0)
		return job_to_json(&shown, job_status(job), NULL);
	j = job_to_json(&shown, job_status(job), &cp);
	db_checkpoint_clear(&cp);
	return j;
}

static int authorize(const struct job_caller *c, const struct db_job *job, cd_err *err)
{
	if (c->uid == 0 || c->uid == job->uid)
		return 0;
	return cd_err_set(err, EPERM, "permission denied: job %s belongs to another user",
	                  job->jid);
}

/* Like ptrace_may_access for a caller without capabilities. */
int authorize_pid(const struct job_caller *c, pid_t pid, cd_err *err)
{
	struct proc_ids ids;
	int r;

	r = proc_read_ids(pid, &ids, err);
	if (r == -ENOENT)
		return cd_err_set(err, ENOENT, "no process with PID %d", (int)pid);
	if (r < 0 || c->uid == 0)
		return r;
	for (int i = 0; i < 3; i++)
		if (ids.uid[i] != c->uid || ids.gid[i] != c->gid)
			return cd_err_set(err, EPERM,
			                  "permission denied: process %d belongs to another user",
			                  (int)pid);
	return 0;
}

static int get_job(struct job_manager *jm, const struct job_caller *c, const char *jid,
                   struct db_job *ret_job, cd_err *err)
{
	int r = db_job_get(jm->db, jid, ret_job, err);

	if (r < 0)
		return r;
	r = authorize(c, ret_job, err);
	if (r < 0)
		db_job_clear(ret_job);
	return r;
}

static bool jid_valid(const char *jid)
{
	size_t len = strlen(jid);

	if (len == 0 || len >= DB_JID_MAX || jid[0] == '.' || jid[0] == '-')
		return false;
	return strspn(jid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
	       len;
}

/* Fills buf with the requested jid after checking it is free, or a fresh one. */
int pick_jid(struct job_manager *jm, const char *want, char *buf, size_t len, cd_err *err)
{
	struct db_job existing;
	cd_err e = {0};

	if (want) {
		if (!jid_valid(want))
			return cd_err_set(
			    err, EINVAL,
			    "invalid job id \"%s\": use letters, digits, '_', '.', '-' "
			    "(at most %d)",
			    want, DB_JID_MAX - 1);
		if (db_job_get(jm->db, want, &existing, &e) == 0) {
			db_job_clear(&existing);
			return cd_err_set(err, EEXIST, "job %s already exists", want);
		}
		snprintf(buf, len, "%s", want);
		return 0;
	}
	for (int i = 0; i < 100; i++) {
		job_name_generate(buf, len);
		if (db_job_get(jm->db, buf, &existing, &e) < 0)
			return 0;
		db_job_clear(&existing);
	}
	return cd_err_set(err, EEXIST, "could not find a free job id");
}

int job_manager_get(struct job_manager *jm, const struct job_caller *caller, const char *jid,
                    json_t **ret_job, cd_err *err)
{
	struct db_job job;
	int r;

	pthread_mutex_lock(&jm->lock);
	r = get_job(jm, caller, jid, &job, err);
	if (r == 0) {
		*ret_job = job_json(jm, &job);
		db_job_clear(&job);
	}
	pthread_mutex_unlock(&jm->lock);
	return r;
}

int job_manager_list(struct job_manager *jm, const struct job_caller *caller, pid_t pid,
                     json_t **ret_jobs, cd_err *err)
{
	struct db_job *jobs;
	json_t *arr;
	size_t n;
	int r;

	pthread_mutex_lock(&jm->lock);
	r = db_job_list(jm->db, &jobs, &n, err);
	if (r < 0)
		goto out;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		if (caller->uid != 0 && jobs[i].uid != caller->uid)
			continue;
		if (pid > 0 && jobs[i].pid != pid)
			continue;
		json_array_append_new(arr, job_json(jm, &jobs[i]));
	}
	db_job_list_free(jobs, n);
	*ret_jobs = arr;
out:
	pthread_mutex_unlock(&jm->lock);
	return r;
}

/* Jobs we started lead their own process group: signal all of it. */
static int signal_job(const struct db_job *job, int sig, cd_err *err)
{
	struct proc_stat st;
	cd_err e = {0};
	pid_t target = job->pid;

	if (proc_read_stat(job->pid, &st, &e) == 0 && st.pgrp == job->pid)
		target = -job->pid;
	if (kill(target, sig) < 0 && !(target < 0 && kill(job->pid, sig) == 0))
		return cd_err_sys(err, errno, "kill job %s (pid %d)", job->jid, (int)job->pid);
	return 0;
}

int job_manager_kill(struct job_manager *jm, const struct job_caller *caller, const char *jid,
                     int sig, json_t **ret_job, cd_err *err)
{
	struct db_job job;
	int r;

	pthread_mutex_lock(&jm->lock);
	r = get_job(jm, caller, jid, &job, err);
	if (r < 0)
		goto out;
	if (!job_is_live(&job))
		r = cd_err_set(err, ESRCH, "job %s is not running", jid);
	else
		r = signal_job(&job, sig, err);
	if (r == 0)
		*ret_job = job_json(jm, &job);
	db_job_clear(&job);
out:
	pthread_mutex_unlock(&jm->lock);
	return r;
}

int job_manager_delete(struct job_manager *jm, const struct job_caller *caller, const char *jid,
                       cd_err *err)
{
	struct db_job job;
	int r;

	pthread_mutex_lock(&jm->lock);
	r = get_job(jm, caller, jid, &job, err);
	if (r < 0)
		goto out;
	if (job_is_live(&job))
		r = signal_job(&job, SIGKILL, err);
	if (r == 0)
		r = db_job_delete(jm->db, jid, err);
	if (r == 0)
		rt_remove(jm, jid);
	db_job_clear(&job);
out:
	pthread_mutex_unlock(&jm->lock);
	return r;
}

int job_manager_add_checkpoint(struct job_manager *jm, const struct db_checkpoint *cp, cd_err *err)
{
	int r;

	pthread_mutex_lock(&jm->lock);
	r = db_checkpoint_insert(jm->db, cp, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

int job_manager_journal_begin(struct job_manager *jm, struct db_inflight *op, cd_err *err)
{
	int r;

	pthread_mutex_lock(&jm->lock);
	r = db_inflight_insert(jm->db, op, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

void job_manager_journal_end(struct job_manager *jm, int64_t id)
{
	cd_err err = {0};

	pthread_mutex_lock(&jm->lock);
	if (db_inflight_delete(jm->db, id, &err) < 0)
		log_warn("journal: %s", err.msg);
	pthread_mutex_unlock(&jm->lock);
}

int job_manager_journal_list(struct job_manager *jm, struct db_inflight **ret, size_t *ret_n,
                             cd_err *err)
{
	int r;

	pthread_mutex_lock(&jm->lock);
	r = db_inflight_list(jm->db, ret, ret_n, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

static bool has_checkpoint_at(struct job_manager *jm, const char *jid, const char *path)
{
	struct db_checkpoint *cps;
	bool found = false;
	cd_err e = {0};
	size_t n;

	if (db_checkpoint_list(jm->db, jid, &cps, &n, &e) < 0)
		return false;
	for (size_t i = 0; i < n && !found; i++)
		found = cps[i].path && strcmp(cps[i].path, path) == 0;
	db_checkpoint_list_free(cps, n);
	return found;
}

int job_manager_add_checkpoint_once(struct job_manager *jm, const struct db_checkpoint *cp,
                                    bool *ret_added, cd_err *err)
{
	int r = 0;

	pthread_mutex_lock(&jm->lock);
	*ret_added = !has_checkpoint_at(jm, cp->jid, cp->path);
	if (*ret_added)
		r = db_checkpoint_insert(jm->db, cp, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

bool job_manager_log_in_use(struct job_manager *jm, const char *path)
{
	struct db_job *jobs;
	bool used = true; /* when in doubt, keep the file */
	cd_err e = {0};
	size_t n;

	pthread_mutex_lock(&jm->lock);
	if (db_job_list(jm->db, &jobs, &n, &e) == 0) {
		used = false;
		for (size_t i = 0; i < n && !used; i++)
			used = jobs[i].log_path && strcmp(jobs[i].log_path, path) == 0;
		db_job_list_free(jobs, n);
	}
	pthread_mutex_unlock(&jm->lock);
	return used;
}

int job_manager_attach_check(struct job_manager *jm, const struct job_caller *caller,
                             const char *jid, cd_err *err)
{
	struct job_rt **rt;
	struct db_job job;
	int r;

	pthread_mutex_lock(&jm->lock);
	r = get_job(jm, caller, jid, &job, err);
	if (r < 0)
		goto out;
	rt = rt_find(jm, jid, 0);
	if (!job.attachable)
		r = cd_err_set(err, EINVAL, "job %s is not attachable (run it with --attachable)",
		               jid);
	else if (!rt || !(*rt)->io)
		r = cd_err_set(err, EINVAL,
		               "job %s is not attachable any more: its terminal was lost when the "
		               "daemon restarted",
		               jid);
	db_job_clear(&job);
out:
	pthread_mutex_unlock(&jm->lock);
	return r;
}

int job_manager_attach(struct job_manager *jm, const char *jid, int sock, const void *extra,
                       size_t extra_len, job_io_close_fn close_fn, void *close_arg, cd_err *err)
{
	struct job_rt **rt;
	int r = 0;

	pthread_mutex_lock(&jm->lock);
	rt = rt_find(jm, jid, 0);
	if (rt && (*rt)->io)
		job_io_attach((*rt)->io, sock, extra, extra_len, close_fn, close_arg);
	else
		r = cd_err_set(err, ENOENT, "job %s has no terminal", jid);
	pthread_mutex_unlock(&jm->lock);
	if (r < 0 && close_fn)
		close_fn(close_arg);
	else if (r < 0)
		close(sock);
	return r;
}

void job_manager_detach_all(struct job_manager *jm)
{
	pthread_mutex_lock(&jm->lock);
	for (struct job_rt *rt = jm->rts; rt; rt = rt->next) {
		job_io_free(rt->io);
		rt->io = NULL;
	}
	pthread_mutex_unlock(&jm->lock);
}

size_t job_manager_kill_workers(struct job_manager *jm, int sig)
{
	size_t n = 0;

	pthread_mutex_lock(&jm->lock);
	for (struct worker *w = jm->workers; w; w = w->next)
		if (!w->done && kill(w->pid, sig) == 0)
			n++;
	pthread_mutex_unlock(&jm->lock);
	return n;
}

static bool worker_reaped(struct job_manager *jm, pid_t pid, int status)
{
	for (struct worker *w = jm->workers; w; w = w->next)
		if (w->pid == pid) {
			w->done = true;
			w->status = status;
			pthread_cond_broadcast(&jm->worker_done);
			return true;
		}
	return false;
}

static int fd_cmp(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

/* In a forked child: every fd above 2 that is not in keep is closed (keep
 * beyond its first 128 fds too). No allocation: another thread of the
 * daemon may have held the allocator's lock at the fork. */
static void close_all_but(const int *keep, size_t n_keep)
{
	int sorted[128];
	size_t n = 0;
	unsigned lo = 3;

	for (size_t i = 0; i < n_keep && n < ARRAY_SIZE(sorted); i++)
		if (keep[i] > 2)
			sorted[n++] = keep[i];
	qsort(sorted, n, sizeof(sorted[0]), fd_cmp);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned)sorted[i] > lo)
			close_range(lo, (unsigned)sorted[i] - 1, 0);
		lo = (unsigned)sorted[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

int job_manager_fork_worker(struct job_manager *jm, int (*fn)(void *), void *arg, const int *keep,
                            size_t n_keep, pid_t *ret_pid, cd_err *err)
{
	struct worker *w = calloc(1, sizeof(*w));
	pid_t pid;

	if (!w)
		return cd_err_sys(err, ENOMEM, "worker");
	/* held across fork and registration, so the reaper cannot miss the PID */
	pthread_mutex_lock(&jm->lock);
	pid_t daemon_pid = getpid();
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		/* A worker never outlives the daemon: SIGTERM asks it to undo
		 * what it holds (a stopped tree, half a restore) and stop. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != daemon_pid)
			_exit(1);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close_all_but(keep, n_keep);
		_exit(fn(arg) & 0xff);
	}
	if (pid > 0) {
		w->pid = pid;
		w->next = jm->workers;
		jm->workers = w;
	}
	pthread_mutex_unlock(&jm->lock);
	if (pid < 0) {
		free(w);
		return cd_err_sys(err, errno, "fork a worker");
	}
	*ret_pid = pid;
	return 0;
}

int job_manager_wait_worker(struct job_manager *jm, pid_t pid, int *ret_status)
{
	struct worker **p, *w;

	pthread_mutex_lock(&jm->lock);
	for (p = &jm->workers; *p && (*p)->pid != pid; p = &(*p)->next)
		;
	w = *p;
	if (!w) {
		pthread_mutex_unlock(&jm->lock);
		return -ECHILD;
	}
	while (!w->done)
		pthread_cond_wait(&jm->worker_done, &jm->lock);
	/* the list may have changed while we waited */
	for (p = &jm->workers; *p != w; p = &(*p)->next)
		;
	*p = w->next;
	pthread_mutex_unlock(&jm->lock);
	*ret_status = w->status;
	free(w);
	return 0;
}

void job_manager_reap(struct job_manager *jm)
{
	int status;
	pid_t pid;

	pthread_mutex_lock(&jm->lock);
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct job_rt **rt = rt_find(jm, NULL, pid);
		int code = job_exit_code(status);
		cd_err e = {0};

		if (!rt) {
			worker_reaped(jm, pid, status); /* else an orphan we inherited */
			continue;
		}
		log_info("job %s (pid %d) exited with code %d", (*rt)->jid, (int)pid, code);
		if (db_job_set_exit(jm->db, (*rt)->jid, code, &e) < 0)
			log_warn("job %s: %s", (*rt)->jid, e.msg);
		if ((*rt)->io)
			job_io_exited((*rt)->io, code);
		(*rt)->pid = 0; /* PIDs get reused */
	}
	pthread_mutex_unlock(&jm->lock);
}

int job_manager_db_check(struct job_manager *jm, cd_err *err)
{
	struct db_job *jobs;
	size_t n;
	int r;

	pthread_mutex_lock(&jm->lock);
	r = db_job_list(jm->db, &jobs, &n, err);
	if (r == 0)
		db_job_list_free(jobs, n);
	pthread_mutex_unlock(&jm->lock);
	return r;
}
