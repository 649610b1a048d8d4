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
#include "daemon/incr.h"
#include "daemon/op.h"
#include "daemon/restore-run.h"
#include "daemon/worker.h"
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
	bool tcp_established, tcp_close; /* connections to the outside: back, or closed */
	bool lazy;                       /* memory loaded while the tree runs */
	const char *out;
	const char *op_id; /* for progress polls; NULL: none */
	unsigned short rows, cols;
	int master;
	int stdio[3];
	struct cr_stdio stdio_ask; /* what replaces the root's stdio (restore-run.h) */
	char log_path[PATH_MAX];   /* the output file: job log or --out */
	bool log_created;
	char *scratch; /* where an archive is unpacked, or a user's image copied */
	int client_fd; /* the request's socket, watched while the worker runs */
	int64_t journal_id;
	int ready[2]; /* worker → daemon: the tree runs (op->pid) */
	int ack[2];   /* daemon → worker: registered, you may exit (closed) */
	struct op_shared *op;
	const char *plugins_dir; /* config's plugins.dir */
	double fork_at_ms;       /* op_now_ms() right before the worker's fork */
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
		rc = field_bool(body, "tcp_established", &r->tcp_established, err);
	if (rc == 0)
		rc = field_bool(body, "tcp_close", &r->tcp_close, err);
	if (rc == 0)
		rc = field_bool(body, "lazy", &r->lazy, err);
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
		/* the job's trackers were of a process that has ended */
		incr_drop(jid);
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

/* A user's checkpoint lies in a directory that user controls: it is
 * copied (or unpacked) into a private scratch directory and restored from
 * there (cr_restore_scratch). Made here, before the worker, so the journal
 * names it. */
static int make_scratch(struct restore_req *r, cd_err *err)
{
	struct cr_owner user = {r->target.uid, r->target.gid};

	return cr_restore_scratch(r->path, r->format, users_image(r) ? &user : NULL, &r->scratch,
	                          err);
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
		r->stdio_ask = (struct cr_stdio){CR_STDIO_TERMINAL, -1, slave};
		return 0;
	}
	if (r->out) {
		rc = open_output(r, r->out, err);
		r->stdio_ask = (struct cr_stdio){CR_STDIO_OUT, r->stdio[0], r->stdio[1]};
		return rc;
	}
	if (r->replace && r->target.log_path)
		snprintf(path, sizeof(path), "%s", r->target.log_path);
	else
		snprintf(path, sizeof(path), "%s/cedana-output-%s.log",
		         job_manager_log_dir(api->jm), r->jid);
	rc = open_output(r, path, err);
	r->stdio_ask = (struct cr_stdio){CR_STDIO_LOG, r->stdio[0], r->stdio[1]};
	return rc;
}

static int restore_image(struct restore_req *r, struct image_trust *trust, pid_t *ret_pid,
                         struct cd_lazy **lazy)
{
	struct cr_restore_run run = {.path = r->path,
	                             .format = r->format,
	                             .scratch = r->scratch,
	                             .trust = trust,
	                             .stdio = r->stdio_ask,
	                             .leave_stopped = r->leave_stopped,
	                             .tcp_established = r->tcp_established,
	                             .tcp_close = r->tcp_close,
	                             .unpack_progress = op_progress_cb,
	                             .engine_progress = op_engine_progress_cb,
	                             .userdata = r->op,
	                             .op = r->op,
	                             .plugins_dir = r->plugins_dir,
	                             .lazy = r->lazy ? lazy : NULL};

	return cr_restore_run(&run, ret_pid, &r->op->err) < 0 ? -1 : 0;
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

	op_time(r->op, "start the worker (fork, exec)", t0 - r->fork_at_ms);
	cr_worker_cancellable();
	close_fd(&r->ready[0]);
	close_fd(&r->ack[1]);
	if (users_image(r) && image_trust_init(&trust, r->target.uid, r->target.gid, err) < 0)
		return 1;
	struct cd_lazy *lazy = NULL;
	rc = restore_image(r, users_image(r) ? &trust : NULL, &pid, &lazy);
	image_trust_clear(&trust);
	if (rc < 0)
		return 1;
	/* the server outlives this worker (the daemon, a subreaper, reaps it);
	 * what goes wrong in its pass goes to the job's output (stderr slot),
	 * the daemon's log, and kills the tree, which the job then shows */
	const int drop[] = {r->ready[1], r->ack[0], r->stdio[0], r->stdio[1]};
	if (lazy && cr_lazy_spawn(lazy, pid, r->stdio[2], drop, ARRAY_SIZE(drop), err) < 0)
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

/* What the worker needs of r (cr_worker_main), its fds by number. */
static json_t *restore_args(const struct restore_req *r)
{
	return json_pack("{s:s, s:i, s:s*, s:b, s:i, s:i, s:i, s:i, s:i, s:[i, i, i], s:b, s:b, "
	                 "s:b, s:b, s:s*, s:f, s:i, s:i}",
	                 "path", r->path, "format", (int)r->format, "scratch", r->scratch,
	                 "replace", r->replace, "uid", (int)r->target.uid, "gid",
	                 (int)r->target.gid, "stdio_kind", (int)r->stdio_ask.kind, "stdio_in",
	                 r->stdio_ask.in, "stdio_out", r->stdio_ask.out, "stdio", r->stdio[0],
	                 r->stdio[1], r->stdio[2], "leave_stopped", r->leave_stopped,
	                 "tcp_established", r->tcp_established, "tcp_close", r->tcp_close, "lazy",
	                 r->lazy, "plugins_dir", r->plugins_dir, "fork_at_ms", r->fork_at_ms,
	                 "ready", r->ready[1], "ack", r->ack[0]);
}

/* Worker side: r from restore_args, then the restore. */
int cr_restore_worker_main(json_t *args, struct op_shared *op)
{
	struct restore_req r = {.master = -1, .ready = {-1, -1}, .ack = {-1, -1}, .op = op};
	int format, uid, gid, kind, replace, leave_stopped, tcp_established, tcp_close, lazy;
	const char *scratch = NULL;

	if (json_unpack(args,
	                "{s:s, s:i, s?s, s:b, s:i, s:i, s:i, s:i, s:i, s:[i, i, i], s:b, s:b, s:b, "
	                "s:b, s?s, s:f, s:i, s:i}",
	                "path", &r.path, "format", &format, "scratch", &scratch, "replace",
	                &replace, "uid", &uid, "gid", &gid, "stdio_kind", &kind, "stdio_in",
	                &r.stdio_ask.in, "stdio_out", &r.stdio_ask.out, "stdio", &r.stdio[0],
	                &r.stdio[1], &r.stdio[2], "leave_stopped", &leave_stopped,
	                "tcp_established", &tcp_established, "tcp_close", &tcp_close, "lazy", &lazy,
	                "plugins_dir", &r.plugins_dir, "fork_at_ms", &r.fork_at_ms, "ready",
	                &r.ready[1], "ack", &r.ack[0]) < 0) {
		cd_err_set(&op->err, EINVAL, "restore: the worker's arguments");
		return 1;
	}
	r.format = (storage_compression)format;
	r.scratch = (char *)scratch;
	r.replace = replace;
	r.target.uid = (uid_t)uid;
	r.target.gid = (gid_t)gid;
	r.stdio_ask.kind = (enum cr_stdio_kind)kind;
	r.leave_stopped = leave_stopped;
	r.tcp_established = tcp_established;
	r.tcp_close = tcp_close;
	r.lazy = lazy;
	return restore_worker(&r);
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

	r->fork_at_ms = op_now_ms();
	json_t *args = restore_args(r);
	rc = args ? cr_worker_spawn(api, "restore", args, r->op, keep, ARRAY_SIZE(keep), &worker,
	                            err)
	          : cd_err_sys(err, ENOMEM, "restore: the worker's arguments");
	json_decref(args);
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
	                        .client_fd = client_fd,
	                        .plugins_dir = api->cfg->plugins_dir};
	double t0 = op_now_ms();
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
	/* what the daemon does before the worker: on the way of a lazy restore */
	if (rc == 0)
		op_time(r.op, "request (parse, image check, output file, journal)",
		        op_now_ms() - t0);
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
