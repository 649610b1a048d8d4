/* POST /v1/restore: a checkpoint (a path, or the newest of a job) brought
 * back as a job whose tree is a child of the daemon.
 *
 * Where the tree comes from: the engine makes the restored root a child of
 * its caller. Restoring in the daemon process itself would mean ptrace and
 * waitpid on the tree while the reaper thread calls waitpid(-1), which
 * would steal the engine's ptrace stops and children. So the engine runs
 * in a worker (a child of the daemon) and the worker exits once the tree
 * runs: the daemon is a child subreaper (PR_SET_CHILD_SUBREAPER), so the
 * orphaned root is reparented to the daemon, which then reaps it and
 * records its exit code. The worker first waits until the daemon has
 * registered the root as a job, so a root that exits at once is not
 * reaped as an unknown orphan. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cr.h"
#include "daemon/fields.h"
#include "daemon/image-trust.h"
#include "daemon/op.h"
#include "engine/engine.h"
#include "job/checkpoint.h"
#include "job/proc.h"
#include "job/spawn.h"
#include "shared/cleanup.h"
#include "shared/log.h"
#include "storage/storage.h"

struct restore_req {
	const char *path;
	struct job_restore_target target; /* restore of a job */
	bool replace;
	char jid[DB_JID_MAX];
	storage_compression format;
	bool attachable, leave_stopped;
	const char *out;
	const char *op_id; /* for progress polls; NULL: none */
	unsigned short rows, cols;
	int master;
	int stdio[3];
	unsigned external_only;  /* cd_restore_opts.stdio_external_only */
	char log_path[PATH_MAX]; /* the output file: job log or --out */
	bool log_created;
	char *scratch; /* where an archive is unpacked, or a user's image copied */
	int client_fd; /* the request's socket, watched while the worker runs */
	int64_t journal_id;
	int ready[2]; /* worker → daemon: the tree runs (op->pid) */
	int ack[2];   /* daemon → worker: registered, you may exit (closed) */
	struct op_shared *op;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void restore_req_clear(struct restore_req *r)
{
	int *fds[] = {&r->master,   &r->stdio[0], &r->stdio[1], &r->stdio[2],
	              &r->ready[0], &r->ready[1], &r->ack[0],   &r->ack[1]};

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close_fd(fds[i]);
	if (r->scratch)
		storage_remove(r->scratch, &(cd_err){0});
	free(r->scratch);
	job_restore_target_clear(&r->target);
	op_free(r->op);
}

static int parse_fields(json_t *body, struct restore_req *r, const char **ret_jid,
                        const char **ret_new_jid, cd_err *err)
{
	json_int_t rows = 0, cols = 0;
	int rc;

	rc = field_string(body, "jid", ret_jid, err);
	if (rc == 0)
		rc = field_string(body, "new_jid", ret_new_jid, err);
	if (rc == 0)
		rc = field_string(body, "path", &r->path, err);
	if (rc == 0)
		rc = field_string(body, "out", &r->out, err);
	if (rc == 0)
		rc = field_string(body, "op", &r->op_id, err);
	if (rc == 0)
		rc = field_bool(body, "attachable", &r->attachable, err);
	if (rc == 0)
		rc = field_bool(body, "leave_stopped", &r->leave_stopped, err);
	if (rc == 0)
		rc = field_int(body, "rows", 0, USHRT_MAX, &rows, err);
	if (rc == 0)
		rc = field_int(body, "cols", 0, USHRT_MAX, &cols, err);
	r->rows = (unsigned short)rows;
	r->cols = (unsigned short)cols;
	return rc;
}

static int parse(struct api *api, const struct job_caller *c, json_t *body, struct restore_req *r,
                 cd_err *err)
{
	const char *jid = NULL, *new_jid = NULL;
	int rc;

	if (c->uid != 0)
		return cd_err_set(err, EPERM,
		                  "permission denied: restore needs root (a checkpoint carries "
		                  "the credentials it restores)");
	rc = parse_fields(body, r, &jid, &new_jid, err);
	if (rc < 0)
		return rc;
	if (r->out && r->out[0] != '/')
		return cd_err_set(err, EINVAL, "\"out\" must be an absolute path");
	if (r->out && r->attachable)
		return cd_err_set(err, EINVAL,
		                  "--out cannot be combined with --attach or --attachable");
	if (jid && r->path)
		return cd_err_set(err, EINVAL, "give either \"jid\" or \"path\", not both");
	if (jid) {
		rc = job_manager_restore_target(api->jm, c, jid, &r->target, err);
		if (rc < 0)
			return rc;
		r->path = r->target.path;
		r->replace = true;
		snprintf(r->jid, sizeof(r->jid), "%s", jid);
		return 0;
	}
	if (!r->path || r->path[0] != '/')
		return cd_err_set(err, EINVAL, "\"path\" must be an absolute path");
	return job_manager_pick_jid(api->jm, new_jid, r->jid, sizeof(r->jid), err);
}

static int check_image(struct restore_req *r, cd_err *err)
{
	return cr_image_format(r->path, &r->format, err);
}

static bool users_image(const struct restore_req *r)
{
	return r->replace && r->target.uid != 0;
}

/* A user's checkpoint lies in a directory that user controls. It is copied
 * (or unpacked) into scratch/user/image, read with the user's own rights,
 * and restored from there: the scratch directory is root's and private, so
 * from the copy on, what is checked is what is restored. The user's
 * subdirectory lets the copy be written with the user's identity. */
static int make_user_dir(struct restore_req *r, cd_err *err)
{
	_cleanup_free_ char *dir = NULL;

	if (asprintf(&dir, "%s/user", r->scratch) < 0)
		return cd_err_sys(err, ENOMEM, "restore");
	if (mkdir(dir, 0700) < 0 || chown(dir, r->target.uid, r->target.gid) < 0)
		return cd_err_sys(err, errno, "restore: scratch directory %s", dir);
	return 0;
}

/* Beside the archive when we can write there, else in /tmp; a user's
 * checkpoint, archive or directory, always goes to the sticky, root-owned
 * /var/tmp (a scratch directory root made in the user's directory could be
 * swapped for a link before the unpack writes into it). */
static int make_scratch(struct restore_req *r, cd_err *err)
{
	_cleanup_free_ char *copy = strdup(r->path);
	const char *dir = copy ? dirname(copy) : "/tmp";

	if (r->format == STORAGE_NONE && !users_image(r))
		return 0;
	if (users_image(r))
		dir = "/var/tmp";
	else if (access(dir, W_OK | X_OK) < 0)
		dir = "/tmp";
	if (asprintf(&r->scratch, "%s/.cedana-restore-XXXXXX", dir) < 0) {
		r->scratch = NULL;
		return cd_err_sys(err, ENOMEM, "restore");
	}
	if (!mkdtemp(r->scratch)) {
		int e = errno;

		free(r->scratch);
		r->scratch = NULL;
		return cd_err_sys(err, e, "restore: scratch directory in %s", dir);
	}
	return users_image(r) ? make_user_dir(r, err) : 0;
}

/* Output to path (appended); stdin reads /dev/null. */
static int open_output(struct restore_req *r, const char *path, cd_err *err)
{
	int fd;

	snprintf(r->log_path, sizeof(r->log_path), "%s", path);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		r->log_created = true;
	else if (errno == EEXIST)
		fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return spawn_out_error(path, errno, err);
	r->stdio[1] = fd;
	if (r->log_created && r->replace && fchown(fd, r->target.uid, r->target.gid) < 0)
		return cd_err_sys(err, errno, "output file %s", path);
	r->stdio[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	r->stdio[2] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (r->stdio[0] < 0 || r->stdio[2] < 0)
		return cd_err_sys(err, errno, "stdio of the restored job");
	return 0;
}

/* The restored root's stdio: the job's terminal (every slot: asked for),
 * --out (stdout and stderr: asked for; /dev/null only on a stdin that was
 * the daemon's), or its log (appended), which takes only the slots the dump
 * recorded as the daemon's own: a FIFO or file the job put on its stdio
 * itself stays. */
static int open_stdio(struct api *api, struct restore_req *r, cd_err *err)
{
	char path[PATH_MAX];
	int slave, rc;

	if (r->attachable) {
		rc = spawn_open_pty(&r->master, &slave, r->rows, r->cols, err);
		if (rc < 0)
			return rc;
		r->stdio[0] = slave;
		r->stdio[1] = fcntl(slave, F_DUPFD_CLOEXEC, 0);
		r->stdio[2] = fcntl(slave, F_DUPFD_CLOEXEC, 0);
		if (r->stdio[1] < 0 || r->stdio[2] < 0)
			return cd_err_sys(err, errno, "stdio of the restored job");
		return 0;
	}
	r->external_only = 7;
	if (r->out) {
		r->external_only = 1;
		return open_output(r, r->out, err);
	}
	if (r->replace && r->target.log_path)
		return open_output(r, r->target.log_path, err);
	snprintf(path, sizeof(path), "%s/cedana-output-%s.log", job_manager_log_dir(api->jm),
	         r->jid);
	return open_output(r, path, err);
}

/* Unpacks with the owner's identity into scratch/user/image. The owner may
 * not search root's private scratch directory, so the destination is named
 * relative to the working directory (which this worker owns): a path walk
 * from there checks no directory above it. */
static int unpack_as_owner(struct restore_req *r, const struct image_trust *trust,
                           const storage_opts *so, cd_err *err)
{
	_cleanup_free_ char *dir = NULL;
	struct fsid_saved saved;
	int rc;

	if (asprintf(&dir, "%s/user", r->scratch) < 0)
		return cd_err_sys(err, ENOMEM, "restore");
	if (chdir(dir) < 0)
		return cd_err_sys(err, errno, "restore: %s", dir);
	rc = fsid_enter(&trust->id, &saved, err);
	if (rc == 0) {
		rc = storage_unpack(r->path, "image", so, NULL, NULL, err);
		fsid_leave(&saved);
	}
	if (chdir("/") < 0 && rc == 0)
		rc = cd_err_sys(err, errno, "restore: chdir /");
	return rc;
}

/* In the worker: the image into the scratch directory, read with the
 * owner's rights for a user's checkpoint. */
static int unpack(struct restore_req *r, const struct image_trust *trust, char **ret_dir,
                  cd_err *err)
{
	storage_opts so = {.progress = op_progress_cb, .userdata = r->op};
	double t0 = op_now_ms();
	int rc;

	if (asprintf(ret_dir, "%s/%simage", r->scratch, trust ? "user/" : "") < 0) {
		*ret_dir = NULL;
		return cd_err_sys(err, ENOMEM, "restore");
	}
	op_phase(r->op, "unpack");
	if (trust)
		rc = unpack_as_owner(r, trust, &so, err);
	else
		rc = storage_unpack(r->path, *ret_dir, &so, NULL, NULL, err);
	if (rc < 0)
		return cd_err_wrap(err, "checkpoint %s", r->path);
	op_time(r->op, "unpack (read, decompress, verify)", op_now_ms() - t0);
	return 0;
}

static int restore_image(struct restore_req *r, struct image_trust *trust, pid_t *ret_pid)
{
	struct cd_restore_stats st = {0};
	struct cd_restore_opts o = {.version = CD_ENGINE_OPTS_VERSION,
	                            .dir = r->path,
	                            .stats = &st,
	                            .progress = op_engine_progress_cb,
	                            .userdata = r->op,
	                            .leave_stopped = r->leave_stopped,
	                            .stdio_external_only = r->external_only};
	_cleanup_free_ char *image = NULL;
	cd_err *err = &r->op->err;

	if (r->scratch && unpack(r, trust, &image, err) < 0)
		return -1;
	if (image)
		o.dir = image;
	if (trust) {
		o.open_as = &trust->id;
		o.check = image_trust_check;
		o.check_userdata = trust;
	}
	memcpy(o.stdio_fd, r->stdio, sizeof(o.stdio_fd));
	op_phase(r->op, "verify"); /* the engine's first stage */
	if (cd_engine_restore(&o, ret_pid, err) < 0)
		return -1;
	cr_restore_timings(r->op, &st);
	return 0;
}

/* In the worker: unpack, restore, then hold on until the daemon has adopted the root. */
static int restore_worker(void *arg)
{
	struct restore_req *r = arg;
	struct image_trust trust = {0};
	double t0 = op_now_ms();
	cd_err *err = &r->op->err;
	char c = 1;
	pid_t pid;
	int rc;

	cr_worker_cancellable();
	close_fd(&r->ready[0]);
	close_fd(&r->ack[1]);
	if (users_image(r) && image_trust_init(&trust, r->target.uid, r->target.gid, err) < 0)
		return 1;
	rc = restore_image(r, users_image(r) ? &trust : NULL, &pid);
	image_trust_clear(&trust);
	if (rc < 0)
		return 1;
	op_time(r->op, "total", op_now_ms() - t0);
	r->op->pid = pid;
	if (write(r->ready[1], &c, 1) != 1) {
		proc_signal_tree(pid, SIGKILL);
		cd_err_sys(err, errno, "restore: tell the daemon");
		return 1;
	}
	/* EOF (the daemon closed its end) is the go-ahead */
	while (read(r->ack[0], &c, 1) < 0 && errno == EINTR)
		;
	return 0;
}

static int adopt(struct api *api, struct restore_req *r, pid_t pid, json_t **ret_job, cd_err *err)
{
	struct job_adopt_opts o = {
	    .jid = r->jid,
	    .pid = pid,
	    .cmd_json = r->replace ? r->target.cmd : NULL,
	    .log_path = r->attachable ? NULL : r->log_path,
	    .master = r->master,
	    .is_child = true,
	    .replace = r->replace,
	};
	struct proc_ids ids;
	int rc;

	r->master = -1; /* the manager's from here on */
	rc = proc_read_ids(pid, &ids, err);
	if (rc == 0) {
		o.uid = ids.uid[0];
		o.gid = ids.gid[0];
		rc = job_manager_adopt(api->jm, &o, ret_job, err);
	} else if (o.master >= 0) {
		close(o.master);
	}
	if (rc < 0)
		proc_signal_tree(pid, SIGKILL);
	return rc;
}

static int busy_hint(cd_err *err)
{
	char msg[CD_ERR_MSG_MAX];

	if (strstr(err->msg, "by a zombie")) /* the engine said who holds it */
		return -EBUSY;
	snprintf(msg, sizeof(msg), "%s", err->msg);
	return cd_err_set(err, EBUSY, "%.900s (is the original process still running?)", msg);
}

/* Written before the worker starts: if the daemon dies, its next start
 * removes the scratch directory and an output file nobody uses (recover.c). */
static int journal(struct api *api, struct restore_req *r, cd_err *err)
{
	struct db_inflight op = {.kind = "restore",
	                         .scratch = r->scratch,
	                         .log_path = r->log_created ? r->log_path : NULL,
	                         .created_at = time(NULL)};
	int rc;

	snprintf(op.jid, sizeof(op.jid), "%s", r->jid);
	rc = job_manager_journal_begin(api->jm, &op, err);
	r->journal_id = op.id;
	return rc;
}

/* Forks the worker, adopts what it restored, lets it go and waits for it. */
static int run_restore(struct api *api, struct restore_req *r, json_t **ret_job, cd_err *err)
{
	int rc, arc = 0;
	pid_t worker;
	char c;

	if (pipe2(r->ready, O_CLOEXEC) < 0 || pipe2(r->ack, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "restore: pipe");
	int keep[] = {r->stdio[0], r->stdio[1], r->stdio[2], r->ready[1], r->ack[0]};

	rc = job_manager_fork_worker(api->jm, restore_worker, r, keep, ARRAY_SIZE(keep), &worker,
	                             err);
	if (rc < 0)
		return cd_err_wrap(err, "restore");
	close_fd(&r->ready[1]);
	close_fd(&r->ack[0]);
	cr_wait_worker_pipe(r->ready[0], r->client_fd, worker, "restore");
	if (read(r->ready[0], &c, 1) == 1)
		arc = adopt(api, r, r->op->pid, ret_job, err);
	close_fd(&r->ack[1]);
	rc = cr_wait_worker(api, worker, r->op, "restore", err);
	if (rc == 0 && arc < 0)
		return arc;
	if (rc == -EBUSY)
		return busy_hint(err);
	return rc;
}

int cr_restore(struct api *api, const struct job_caller *caller, int client_fd, json_t *body,
               json_t **ret, cd_err *err)
{
	struct restore_req r = {.master = -1,
	                        .stdio = {-1, -1, -1},
	                        .ready = {-1, -1},
	                        .ack = {-1, -1},
	                        .client_fd = client_fd};
	json_t *job = NULL;
	int rc;

	rc = parse(api, caller, body, &r, err);
	if (rc == 0)
		rc = check_image(&r, err);
	if (rc == 0)
		rc = op_new(r.op_id, &r.op, err);
	if (rc == 0)
		rc = make_scratch(&r, err);
	if (rc == 0)
		rc = open_stdio(api, &r, err);
	if (rc == 0)
		rc = journal(api, &r, err);
	if (rc == 0)
		rc = run_restore(api, &r, &job, err);
	if (rc < 0 && r.log_created)
		unlink(r.log_path);
	if (rc < 0) /* as the API logs a failed dump: the daemon's log tells both */
		log_warn("restore of %s failed: %s", r.path ? r.path : "(no path)", err->msg);
	if (rc == 0) {
		log_info("restored %s as job %s (pid %d)", r.path, r.jid, (int)r.op->pid);
		*ret = json_pack("{s:o, s:o}", "job", job, "timings", op_timings_json(r.op));
	}
	restore_req_clear(&r);
	if (r.journal_id)
		job_manager_journal_end(api->jm, r.journal_id);
	return rc;
}
