/* Jobs coming into existence: run (spawn a process), manage (adopt a
 * running process) and adopt (a restored tree). */
#include "job/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "job/codec.h"
#include "job/manager-internal.h"
#include "job/proc.h"
#include "job/spawn.h"
#include "shared/cleanup.h"

static int open_log(const char *path, uid_t uid, gid_t gid, cd_err *err)
{
	_cleanup_close_ int fd = -1;

	/* a fresh file, never one planted in the log dir (a link to a system
	 * file would be truncated and given to the job's owner) */
	if (unlink(path) < 0 && errno != ENOENT)
		return cd_err_sys(err, errno, "log file %s", path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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
		r = spawn_open_pty(&io->master, &io->slave, o->rows, o->cols, err);
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
	if (!req->set_ids || o->as_root || c->ngroups <= 0)
		return 0;
	/* the caller's supplementary groups, from the kernel, not the request */
	*ret_groups = malloc((size_t)c->ngroups * sizeof(gid_t));
	if (!*ret_groups)
		return cd_err_sys(err, ENOMEM, "supplementary groups");
	memcpy(*ret_groups, c->groups, (size_t)c->ngroups * sizeof(gid_t));
	req->ngroups = c->ngroups;
	return 0;
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
	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(buf + i) + 1) {
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

/* restore of an existing job: same jid, new process */
static int adopt_replace(struct job_manager *jm, const struct job_adopt_opts *o,
                         uint64_t start_time, bool *consumed, json_t **ret_job, cd_err *err)
{
	struct db_job job;
	int r;

	r = db_job_get(jm->db, o->jid, &job, err);
	if (r < 0)
		return r;
	if (job_is_live(&job))
		r = cd_err_set(err, EBUSY, "job %s is still running", o->jid);
	db_job_clear(&job);
	if (r == 0)
		r = db_job_set_process(jm->db, o->jid, o->pid, start_time, o->log_path,
		                       o->master >= 0, err);
	if (r < 0)
		return r;
	rt_remove(jm, o->jid);
	if (o->is_child || o->master >= 0) {
		*consumed = true;
		r = rt_add(jm, o->jid, o->pid, o->master, err);
		if (r < 0)
			return r;
	}
	r = db_job_get(jm->db, o->jid, &job, err);
	if (r == 0) {
		*ret_job = job_json(jm, &job);
		db_job_clear(&job);
	}
	return r;
}

static int adopt_new(struct job_manager *jm, const struct job_adopt_opts *o, uint64_t start_time,
                     bool *consumed, json_t **ret_job, cd_err *err)
{
	_cleanup_free_ char *cmd = NULL;
	struct db_job job = {0};
	int r;

	r = pick_jid(jm, o->jid, job.jid, sizeof(job.jid), err);
	if (r < 0)
		return r;
	snprintf(job.type, sizeof(job.type), "process");
	job.pid = o->pid;
	job.start_time = start_time;
	job.uid = o->uid;
	job.gid = o->gid;
	job.cmd = o->cmd_json ? (char *)o->cmd_json : (cmd = read_cmdline_json(o->pid));
	job.log_path = (char *)o->log_path;
	job.attachable = o->master >= 0;
	job.created_at = time(NULL);
	r = db_job_insert(jm->db, &job, err);
	if (r < 0)
		return r;
	if (o->is_child || o->master >= 0) {
		*consumed = true;
		r = rt_add(jm, job.jid, o->pid, o->master, err);
		if (r < 0)
			return r;
	}
	*ret_job = job_json(jm, &job);
	return 0;
}

static int adopt_locked(struct job_manager *jm, const struct job_adopt_opts *o, json_t **ret_job,
                        cd_err *err)
{
	bool consumed = false;
	struct proc_stat st;
	int r;

	r = proc_read_stat(o->pid, &st, err);
	if (r < 0)
		r = cd_err_wrap(err, "adopt process %d", (int)o->pid);
	else if (o->replace && o->jid)
		r = adopt_replace(jm, o, st.start_time, &consumed, ret_job, err);
	else
		r = adopt_new(jm, o, st.start_time, &consumed, ret_job, err);
	/* the master is the relay's once rt_add had it, even on failure */
	if (!consumed && o->master >= 0)
		close(o->master);
	return r;
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
