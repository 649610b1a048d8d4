#include "job/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "job/codec.h"
#include "job/io.h"
#include "job/names.h"
#include "job/proc.h"
#include "job/spawn.h"
#include "shared/cleanup.h"
#include "shared/log.h"

/* What only this daemon instance knows about a job it started or adopted
 * as a child: the PID to match when reaping, and the terminal relay. */
struct job_rt {
	struct job_rt *next;
	char jid[DB_JID_MAX];
	pid_t pid;
	struct job_io *io;
};

/* A forked helper (engine worker) whose exit status the reaper keeps for
 * job_manager_wait_worker instead of discarding it. */
struct worker {
	struct worker *next;
	pid_t pid;
	bool done;
	int status;
};

struct job_manager {
	pthread_mutex_t lock;
	pthread_cond_t worker_done;
	struct db *db;
	char *log_dir;
	struct job_rt *rts;
	struct worker *workers;
};

static void rt_free(struct job_rt *rt)
{
	if (rt) {
		job_io_free(rt->io);
		free(rt);
	}
}

static struct job_rt **rt_find(struct job_manager *jm, const char *jid, pid_t pid)
{
	for (struct job_rt **p = &jm->rts; *p; p = &(*p)->next)
		if ((jid && strcmp((*p)->jid, jid) == 0) || (!jid && (*p)->pid == pid))
			return p;
	return NULL;
}

static void rt_remove(struct job_manager *jm, const char *jid)
{
	struct job_rt **p = rt_find(jm, jid, 0);
	struct job_rt *rt;

	if (!p)
		return;
	rt = *p;
	*p = rt->next;
	rt_free(rt);
}

static int rt_add(struct job_manager *jm, const char *jid, pid_t pid, int master, cd_err *err)
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

static bool job_is_live(const struct db_job *job)
{
	const char *s = job_status(job);

	return strcmp(s, "halted") != 0 && strcmp(s, "zombie") != 0;
}

static json_t *job_json(struct job_manager *jm, const struct db_job *job)
{
	struct db_checkpoint cp;
	cd_err e = {0};
	json_t *j;

	if (db_checkpoint_latest(jm->db, job->jid, &cp, &e) < 0)
		return job_to_json(job, job_status(job), NULL);
	j = job_to_json(job, job_status(job), &cp);
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
static int authorize_pid(const struct job_caller *c, pid_t pid, cd_err *err)
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
static int pick_jid(struct job_manager *jm, const char *want, char *buf, size_t len, cd_err *err)
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

static int open_pty(int *ret_master, int *ret_slave, unsigned short rows, unsigned short cols,
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

static int open_log(const char *path, uid_t uid, gid_t gid, cd_err *err)
{
	_cleanup_close_ int fd =
	    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return cd_err_sys(err, errno, "log file %s", path);
	/* for the job's owner only, whatever the daemon's umask */
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0600) < 0)
		return cd_err_sys(err, errno, "log file %s", path);
	return TAKE_FD(fd);
}

struct run_io {
	int master, slave, log, devnull;
	char log_path[4096];
};

static void run_io_close(struct run_io *io)
{
	int *fds[] = {&io->master, &io->slave, &io->log, &io->devnull};

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

/* stdio of a new job: a pty when attachable, else /dev/null in and the
 * log file (or --out, opened by the child as the user) out. */
static int run_io_open(struct job_manager *jm, const char *jid, const struct job_run_opts *o,
                       uid_t uid, gid_t gid, struct run_io *io, struct spawn_req *req, cd_err *err)
{
	int r;

	if (o->attachable) {
		r = open_pty(&io->master, &io->slave, o->rows, o->cols, err);
		if (r < 0)
			return r;
		req->stdin_fd = req->stdout_fd = req->stderr_fd = io->slave;
		return 0;
	}
	io->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (io->devnull < 0)
		return cd_err_sys(err, errno, "/dev/null");
	req->stdin_fd = io->devnull;
	if (o->out) {
		req->stdout_fd = req->stderr_fd = -1;
		req->out_path = o->out;
		return 0;
	}
	snprintf(io->log_path, sizeof(io->log_path), "%s/cedana-output-%s.log", jm->log_dir, jid);
	io->log = open_log(io->log_path, uid, gid, err);
	if (io->log < 0)
		return io->log;
	req->stdout_fd = req->stderr_fd = io->log;
	return 0;
}

static int fill_creds(const struct job_caller *c, const struct job_run_opts *o,
                      struct spawn_req *req, gid_t **ret_groups, cd_err *err)
{
	if (o->as_root && c->uid != 0)
		return cd_err_set(err, EPERM, "permission denied: --as-root needs root");
	req->set_ids = geteuid() == 0;
	req->uid = o->as_root ? 0 : c->uid;
	req->gid = o->as_root ? 0 : c->gid;
	if (!req->set_ids || o->as_root || c->pid <= 0)
		return 0;
	/* the caller's supplementary groups, from the kernel, not the request */
	return proc_read_groups(c->pid, ret_groups, &req->ngroups, err);
}

static int run_locked(struct job_manager *jm, const struct job_caller *c,
                      const struct job_run_opts *o, struct run_io *io, json_t **ret_job,
                      cd_err *err)
{
	struct spawn_req req = {
	    .argv = o->argv, .envp = o->envp, .cwd = o->cwd, .new_session = true};
	_cleanup_free_ gid_t *groups = NULL;
	_cleanup_free_ char *cmd = NULL;
	struct db_job job = {0};
	struct proc_stat st;
	pid_t pid;
	int r;

	r = pick_jid(jm, o->jid, job.jid, sizeof(job.jid), err);
	if (r < 0)
		return r;
	r = fill_creds(c, o, &req, &groups, err);
	if (r < 0)
		return r;
	req.groups = groups;
	r = run_io_open(jm, job.jid, o, req.uid, req.gid, io, &req, err);
	if (r < 0)
		return r;
	r = spawn_process(&req, &pid, err);
	if (r < 0) {
		if (io->log_path[0])
			unlink(io->log_path);
		return r;
	}
	/* still our unreaped child, so /proc/PID/stat is there even if it exited */
	r = proc_read_stat(pid, &st, err);
	cmd = job_argv_to_json(o->argv);
	snprintf(job.type, sizeof(job.type), "process");
	job.pid = pid;
	job.start_time = r < 0 ? 0 : st.start_time;
	job.uid = req.uid;
	job.gid = req.gid;
	job.cmd = cmd;
	job.log_path = o->attachable ? NULL : (o->out ? (char *)o->out : io->log_path);
	job.attachable = o->attachable;
	job.created_at = time(NULL);
	r = db_job_insert(jm->db, &job, err);
	if (r == 0) {
		r = rt_add(jm, job.jid, pid, TAKE_FD(io->master), err);
		if (r < 0)
			db_job_delete(jm->db, job.jid, &(cd_err){0});
	}
	if (r < 0) {
		kill(-pid, SIGKILL);
		return cd_err_wrap(err, "job %s", job.jid);
	}
	*ret_job = job_json(jm, &job);
	return 0;
}

int job_manager_run(struct job_manager *jm, const struct job_caller *caller,
                    const struct job_run_opts *opts, json_t **ret_job, cd_err *err)
{
	struct run_io io = {.master = -1, .slave = -1, .log = -1, .devnull = -1};
	int r;

	if (!opts->argv || !opts->argv[0])
		return cd_err_set(err, EINVAL, "no command given");
	if (opts->attachable && opts->out)
		return cd_err_set(err, EINVAL, "--out cannot be combined with an attachable job");
	/* held across fork and insert, so the reaper cannot miss the new PID */
	pthread_mutex_lock(&jm->lock);
	r = run_locked(jm, caller, opts, &io, ret_job, err);
	pthread_mutex_unlock(&jm->lock);
	run_io_close(&io);
	return r;
}

static char *read_cmdline_json(pid_t pid)
{
	char path[64], buf[4096];
	_cleanup_close_ int fd = -1;
	json_t *arr = json_array();
	char *text;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	for (ssize_t i = 0; n > 0 && i < n; i += strlen(buf + i) + 1) {
		buf[n] = '\0';
		json_array_append_new(arr, json_string(buf + i));
	}
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}

/* The live job of a process, if any; jid is filled. */
static bool pid_has_job(struct job_manager *jm, pid_t pid, char *jid, size_t len)
{
	struct db_job *jobs;
	bool found = false;
	cd_err e = {0};
	size_t n;

	if (db_job_list(jm->db, &jobs, &n, &e) < 0)
		return false;
	for (size_t i = 0; i < n && !found; i++)
		if (jobs[i].pid == pid && job_is_live(&jobs[i])) {
			snprintf(jid, len, "%s", jobs[i].jid);
			found = true;
		}
	db_job_list_free(jobs, n);
	return found;
}

static int manage_locked(struct job_manager *jm, const struct job_caller *c, pid_t pid,
                         const char *want, json_t **ret_job, cd_err *err)
{
	_cleanup_free_ char *cmd = NULL;
	struct db_job job = {0};
	struct proc_stat st;
	struct proc_ids ids;
	char other[DB_JID_MAX];
	int r;

	r = authorize_pid(c, pid, err);
	if (r < 0)
		return r;
	if (pid_has_job(jm, pid, other, sizeof(other)))
		return cd_err_set(err, EEXIST, "process %d is already managed as job %s", (int)pid,
		                  other);
	r = pick_jid(jm, want, job.jid, sizeof(job.jid), err);
	if (r < 0)
		return r;
	if (proc_read_stat(pid, &st, err) < 0 || proc_read_ids(pid, &ids, err) < 0)
		return cd_err_wrap(err, "process %d", (int)pid);
	cmd = read_cmdline_json(pid);
	snprintf(job.type, sizeof(job.type), "process");
	job.pid = pid;
	job.start_time = st.start_time;
	job.uid = ids.uid[0];
	job.gid = ids.gid[0];
	job.cmd = cmd;
	job.created_at = time(NULL);
	r = db_job_insert(jm->db, &job, err);
	if (r < 0)
		return r;
	*ret_job = job_json(jm, &job);
	return 0;
}

int job_manager_manage(struct job_manager *jm, const struct job_caller *caller, pid_t pid,
                       const char *jid, json_t **ret_job, cd_err *err)
{
	int r;

	if (pid <= 0)
		return cd_err_set(err, EINVAL, "invalid PID %d", (int)pid);
	pthread_mutex_lock(&jm->lock);
	r = manage_locked(jm, caller, pid, jid, ret_job, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
}

static int adopt_locked(struct job_manager *jm, const struct job_adopt_opts *o, json_t **ret_job,
                        cd_err *err)
{
	struct db_job job = {0};
	struct proc_stat st;
	int r;

	r = pick_jid(jm, o->jid, job.jid, sizeof(job.jid), err);
	if (r < 0)
		return r;
	r = proc_read_stat(o->pid, &st, err);
	if (r < 0)
		return cd_err_wrap(err, "adopt process %d", (int)o->pid);
	snprintf(job.type, sizeof(job.type), "process");
	job.pid = o->pid;
	job.start_time = st.start_time;
	job.uid = o->uid;
	job.gid = o->gid;
	job.cmd = (char *)(o->cmd_json ? o->cmd_json : "[]");
	job.log_path = (char *)o->log_path;
	job.attachable = o->master >= 0;
	job.created_at = time(NULL);
	r = db_job_insert(jm->db, &job, err);
	if (r < 0)
		return r;
	if (o->is_child || o->master >= 0) {
		r = rt_add(jm, job.jid, o->pid, o->master, err);
		if (r < 0)
			return r;
	}
	*ret_job = job_json(jm, &job);
	return 0;
}

int job_manager_adopt(struct job_manager *jm, const struct job_adopt_opts *opts, json_t **ret_job,
                      cd_err *err)
{
	int r;

	pthread_mutex_lock(&jm->lock);
	r = adopt_locked(jm, opts, ret_job, err);
	pthread_mutex_unlock(&jm->lock);
	return r;
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

int job_manager_fork_worker(struct job_manager *jm, int (*fn)(void *), void *arg, pid_t *ret_pid,
                            cd_err *err)
{
	struct worker *w = calloc(1, sizeof(*w));
	pid_t pid;

	if (!w)
		return cd_err_sys(err, ENOMEM, "worker");
	/* held across fork and registration, so the reaper cannot miss the PID */
	pthread_mutex_lock(&jm->lock);
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
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
