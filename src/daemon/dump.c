/* POST /v1/dump: a process or a job, written by the engine into a scratch
 * directory beside the target and packed to DIR/NAME[.suffix] by storage
 * (atomic, 0600), in a worker running as root for the caller. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "daemon/cr.h"
#include "daemon/fields.h"
#include "daemon/incr.h"
#include "daemon/op.h"
#include "daemon/restore-run.h"
#include "daemon/worker.h"
#include "engine/engine.h"
#include "job/checkpoint.h"
#include "job/codec.h"
#include "plugins/plugins.h"
#include "shared/cleanup.h"
#include "shared/log.h"
#include "storage/storage.h"

/* Default names tried per dump: NAME, NAME-2 … NAME-<this>. */
#define DUMP_NAME_TRIES 1000

struct dump_req {
	struct job_dump_target target;
	const char *type; /* "process" or "job" */
	const char *dir;
	const char *op_id; /* for progress polls; NULL: none */
	char name[NAME_MAX + 1];
	storage_compression compression;
	/* --streams N (docs/engine.md, "Parallel streams"): the engine writes
	 * page data compressed per stream with page_codec (from --compression),
	 * and the checkpoint is the image directory as it is */
	json_int_t streams;
	unsigned page_codec;
	bool leave_running, shell_job;
	bool tcp_established, tcp_close; /* a connection to the outside: kept, or closed */
	bool external_stdio;             /* the caller gives up the root's fds 0-2 */
	bool default_name;               /* ours to make unique with a -N suffix */
	const char *plugins_dir;         /* config's plugins.dir ("": the default) */
	uid_t caller_uid;
	gid_t caller_gid;
	char *dest;  /* DIR/NAME + suffix */
	char *image; /* the worker's: the engine's image directory */
	struct op_shared *op;
	int client_fd; /* the request's socket, watched while the worker runs */
	int64_t journal_id;
	int packed[2]; /* worker → daemon: the checkpoint is at dest (a track_msg) */
	int ack[2];    /* daemon → worker: ACK_RECORDED or ACK_FAILED */
	/* --incremental (docs/engine.md, "Incremental checkpoints"): the job's
	 * trackers, given to the worker and, from it, this dump's back */
	bool incremental;
	const char *incr_note; /* why this one is full after all; NULL: none */
	struct cd_track track;
	char parent_id[DB_JID_MAX]; /* the checkpoint the trackers belong to */
	char *parent_path;
	bool made_incremental; /* the image names parent_id's */
};

/* What the worker tells the daemon once the checkpoint is at dest: with
 * --incremental, the trackers of this dump, their fds as SCM_RIGHTS. */
#define TRACK_MSG_MAX 64
struct track_msg {
	uint8_t incremental; /* the image names its parent */
	uint32_t n;
	uint64_t image_hash;
	struct {
		int32_t pid;
		uint64_t start_time;
	} t[TRACK_MSG_MAX];
};

#define ACK_RECORDED 'y'
#define ACK_FAILED   'n'

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void dump_req_clear(struct dump_req *d)
{
	int *fds[] = {&d->packed[0], &d->packed[1], &d->ack[0], &d->ack[1]};

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close_fd(fds[i]);
	cd_track_clear(&d->track);
	free(d->parent_path);
	free(d->dest);
	free(d->image);
	op_free(d->op);
}

/* A control character in a name or directory would break the one-line
 * output the CLI promises ("the path is the last word"). */
static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool name_valid(const char *name)
{
	return name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 200 &&
	       !has_control(name);
}

static int parse_target(struct api *api, const struct job_caller *c, json_t *body,
                        struct dump_req *d, cd_err *err)
{
	const char *jid = NULL;
	json_int_t pid = 0;
	int r;

	d->type = NULL;
	r = field_string(body, "jid", &jid, err);
	if (r == 0)
		r = field_string(body, "type", &d->type, err);
	if (r < 0)
		return r;
	if (!d->type)
		d->type = jid ? "job" : "process";
	if (strcmp(d->type, "job") == 0) {
		if (!jid)
			return cd_err_set(err, EINVAL, "\"jid\" must be a string");
		return job_manager_dump_target(api->jm, c, jid, 0, &d->target, err);
	}
	if (strcmp(d->type, "process") != 0)
		return cd_err_set(err, EINVAL, "\"type\" must be \"process\" or \"job\"");
	r = field_int_required(body, "pid", 1, INT_MAX, &pid, err);
	if (r < 0)
		return r;
	return job_manager_dump_target(api->jm, c, NULL, (pid_t)pid, &d->target, err);
}

static int parse_fields(json_t *body, struct dump_req *d, const char **ret_comp,
                        const char **ret_name, cd_err *err)
{
	int r;

	r = field_string(body, "compression", ret_comp, err);
	if (r == 0)
		r = field_string(body, "name", ret_name, err);
	if (r == 0)
		r = field_string(body, "dir", &d->dir, err);
	if (r == 0)
		r = field_string(body, "op", &d->op_id, err);
	if (r == 0)
		r = field_bool(body, "leave_running", &d->leave_running, err);
	if (r == 0)
		r = field_bool(body, "shell_job", &d->shell_job, err);
	if (r == 0)
		r = field_bool(body, "external_stdio", &d->external_stdio, err);
	if (r == 0)
		r = field_bool(body, "tcp_established", &d->tcp_established, err);
	if (r == 0)
		r = field_bool(body, "tcp_close", &d->tcp_close, err);
	if (r == 0 && d->tcp_established && d->tcp_close)
		r = cd_err_set(err, EINVAL, "\"tcp_established\" and \"tcp_close\" together");
	if (r == 0)
		r = field_bool(body, "incremental", &d->incremental, err);
	if (r == 0)
		r = field_int(body, "streams", 1, 16, &d->streams, err);
	return r;
}

/* --streams: the compression becomes the streams' codec (lz4, zstd or
 * none), and nothing is packed after the dump (the page files are
 * compressed already; docs/engine.md, "Parallel streams"). */
static int stream_options(struct api *api, json_t *body, struct dump_req *d, cd_err *err)
{
	const char *cfg = api->cfg->checkpoint_streams;

	if (!json_object_get(body, "streams"))
		d->streams = cfg && cfg[0] ? strtol(cfg, NULL, 10) : 1;
	if (d->streams <= 1)
		return 0;
	switch (d->compression) {
	case STORAGE_NONE:
		d->page_codec = 0;
		break;
	case STORAGE_LZ4:
		d->page_codec = 1;
		break;
	case STORAGE_ZSTD:
		d->page_codec = 2;
		break;
	default:
		return cd_err_set(err, EINVAL,
		                  "--streams %lld compresses page data itself, with lz4 or zstd: "
		                  "--compression %s is not one of its codecs (none, lz4, zstd)",
		                  (long long)d->streams, storage_compression_name(d->compression));
	}
	d->compression = STORAGE_NONE;
	return 0;
}

static int parse_options(struct api *api, json_t *body, struct dump_req *d, cd_err *err)
{
	const char *comp = NULL, *name = NULL;
	const char *cfg_comp = api->cfg->checkpoint_compression;
	int r;

	r = parse_fields(body, d, &comp, &name, err);
	if (r < 0)
		return r;
	d->plugins_dir = api->cfg->plugins_dir;
	if (!d->dir)
		d->dir = api->cfg->checkpoint_dir && api->cfg->checkpoint_dir[0]
		             ? api->cfg->checkpoint_dir
		             : "/tmp";
	if (d->dir[0] != '/')
		return cd_err_set(err, EINVAL, "\"dir\" must be an absolute path");
	if (has_control(d->dir))
		return cd_err_set(err, EINVAL, "\"dir\" must not contain control characters");
	if (!comp)
		comp = cfg_comp && cfg_comp[0] ? cfg_comp : "none";
	r = storage_compression_parse(comp, &d->compression, err);
	if (r < 0 || (r = stream_options(api, body, d, err)) < 0)
		return r;
	if (d->incremental && (!d->target.jid[0] || !d->leave_running))
		return cd_err_set(
		    err, EINVAL,
		    "--incremental is for repeated dumps of a job with --leave-running");
	d->default_name = !name;
	if (!name && d->target.jid[0])
		snprintf(d->name, sizeof(d->name), "dump-job-%s-%lld", d->target.jid,
		         (long long)time(NULL));
	else if (!name)
		snprintf(d->name, sizeof(d->name), "dump-process-%d-%lld", (int)d->target.pid,
		         (long long)time(NULL));
	else if (!name_valid(name)) {
		return cd_err_set(err, EINVAL,
		                  "invalid name \"%s\": a file name, not starting with '.', "
		                  "without control characters",
		                  name);
	} else {
		snprintf(d->name, sizeof(d->name), "%s", name);
	}
	return 0;
}

/* 1 when something (even a dangling link) is at path, else 0. */
static int dest_taken(const char *path, cd_err *err)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		return 1;
	if (errno != ENOENT)
		return cd_err_sys(err, errno, "%s", path);
	return 0;
}

/* d->dest from d->name, or for a default name the first free of NAME,
 * NAME-2, NAME-3, …: dumps within one second get names of their own. The
 * caller's right to write there is checked in the worker. */
static int prepare_dest(struct dump_req *d, cd_err *err)
{
	char base[sizeof(d->name)];
	int r;

	snprintf(base, sizeof(base), "%s", d->name);
	for (int n = 1; n <= DUMP_NAME_TRIES; n++) {
		if (n > 1 &&
		    snprintf(d->name, sizeof(d->name), "%s-%d", base, n) >= (int)sizeof(d->name))
			return cd_err_set(err, ENAMETOOLONG, "%s: name too long", base);
		free(d->dest);
		d->dest = storage_dest_path(d->dir, d->name, d->compression, err);
		if (!d->dest)
			return -ENOMEM;
		r = dest_taken(d->dest, err);
		if (r <= 0)
			return r;
		if (!d->default_name)
			return cd_err_set(err, EEXIST, "%s already exists", d->dest);
	}
	return cd_err_set(err, EEXIST, "%s and %d more names like it already exist", base,
	                  DUMP_NAME_TRIES - 1);
}

/* In the worker (storage_check_writable forks and waits, which the daemon's
 * reaper would spoil): the caller may write to dir; the scratch directory. */
static int make_scratch(struct dump_req *d, cd_err *err)
{
	struct op_shared *op = d->op;

	if (storage_check_writable(d->dir, d->caller_uid, d->caller_gid, err) < 0)
		return cd_err_wrap(err, "dump");
	if (snprintf(op->scratch, sizeof(op->scratch), "%s/.%s.dump-XXXXXX", d->dir, d->name) >=
	    (int)sizeof(op->scratch))
		return cd_err_set(err, ENAMETOOLONG, "dump: %s: name too long", d->dir);
	if (!mkdtemp(op->scratch)) {
		int e = errno;

		op->scratch[0] = '\0';
		return cd_err_sys(err, e, "dump: scratch directory in %s", d->dir);
	}
	return 0;
}

/* Files are created with the caller's fsuid/fsgid: the scratch directory
 * sits in a directory the caller owns, where root following a planted link
 * would write wherever the caller pointed it. The worker keeps its
 * capabilities for ptrace and /proc (the fs ones drop with the fsuid). */
static int act_as_caller(const struct dump_req *d, cd_err *err)
{
	if (d->caller_uid == 0)
		return 0;
	setfsgid(d->caller_gid);
	setfsuid(d->caller_uid);
	if ((uid_t)setfsuid((uid_t)-1) != d->caller_uid)
		return cd_err_set(err, EPERM, "dump: cannot act as uid %u",
		                  (unsigned)d->caller_uid);
	return 0;
}

/* The worker's message: this dump's trackers go with it (when there are
 * too many to pass, none: the next dump is full). */
static int send_trackers(struct dump_req *d)
{
	struct track_msg m = {.incremental = d->track.incremental,
	                      .image_hash = d->track.image_hash};
	union {
		char buf[CMSG_SPACE(sizeof(int) * TRACK_MSG_MAX)];
		struct cmsghdr align;
	} u = {0};
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (d->incremental && d->track.n <= TRACK_MSG_MAX)
		m.n = (uint32_t)d->track.n;
	if (m.n) {
		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * m.n);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * m.n);
		int *fds = (int *)(void *)CMSG_DATA(cm);
		for (uint32_t i = 0; i < m.n; i++) {
			m.t[i].pid = d->track.tasks[i].pid;
			m.t[i].start_time = d->track.tasks[i].start_time;
			fds[i] = d->track.tasks[i].uffd;
		}
	}
	return sendmsg(d->packed[1], &mh, MSG_NOSIGNAL) == (ssize_t)sizeof(m) ? 0 : -1;
}

/* In the daemon: the worker's message, its trackers into *tr. */
static int recv_trackers(int fd, struct cd_track *tr)
{
	struct track_msg m;
	union {
		char buf[CMSG_SPACE(sizeof(int) * TRACK_MSG_MAX)];
		struct cmsghdr align;
	} u;
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = u.buf,
	                    .msg_controllen = sizeof(u.buf)};
	ssize_t n;

	while ((n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(m))
		return -1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	size_t nfds = cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS
	                  ? (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int)
	                  : 0;
	const int *fds = nfds ? (const int *)(const void *)CMSG_DATA(cm) : NULL;
	if (nfds && (nfds != m.n || m.n > TRACK_MSG_MAX ||
	             !(tr->tasks = calloc(nfds, sizeof(*tr->tasks))))) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		nfds = 0;
	}
	for (size_t i = 0; i < nfds; i++)
		tr->tasks[i] = (struct cd_track_task){
		    .pid = m.t[i].pid, .start_time = m.t[i].start_time, .uffd = fds[i]};
	tr->n = nfds;
	tr->image_hash = m.image_hash;
	tr->incremental = m.incremental;
	return 0;
}

/* In the worker, once the checkpoint is at dest: the daemon records it
 * while the tree is still stopped. An answer other than ACK_RECORDED fails
 * the dump and the tree runs on; when the daemon is gone (no answer at
 * all) the file stays for its next start to record (check.c). */
static int confirm(struct dump_req *d, cd_err *err)
{
	ssize_t n;
	char c = 1;

	if (send_trackers(d) < 0)
		return cd_err_sys(err, errno, "dump: tell the daemon");
	while ((n = read(d->ack[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (n == 1 && c == ACK_RECORDED)
		return 0;
	if (n == 1)
		storage_remove(d->dest, &(cd_err){0});
	return cd_err_set(err, EIO, "dump: the daemon did not record the checkpoint");
}

/* The plugin-NAME.json files the plugins wrote into the image, as one JSON
 * object by NAME, for `checkpoint inspect` (what does not fit, or is not
 * JSON, is left out: the image keeps the files either way). */
static void collect_plugin_files(struct dump_req *d)
{
	_cleanup_closedir_ DIR *dir = opendir(d->image);
	json_t *all = json_object();
	struct dirent *de;
	char path[PATH_MAX];

	while (dir && all && (de = readdir(dir))) {
		size_t n = strlen(de->d_name);
		if (strncmp(de->d_name, "plugin-", 7) != 0 || n <= 12 ||
		    strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->image, de->d_name);
		json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
		char name[NAME_MAX + 1];
		snprintf(name, sizeof(name), "%.*s", (int)(n - 12), de->d_name + 7);
		if (v)
			json_object_set_new(all, name, v);
	}
	char *text = all && json_object_size(all) ? json_dumps(all, JSON_COMPACT) : NULL;
	if (text && strlen(text) < sizeof(d->op->plugins))
		snprintf(d->op->plugins, sizeof(d->op->plugins), "%s", text);
	else if (text)
		log_warn("dump: the plugins' files are too large to record for inspect");
	free(text);
	json_decref(all);
}

/* The engine's commit: called while the tree is still stopped, so a full
 * disk or any other failure here lets the tree run on. */
static int commit(void *arg, cd_err *err)
{
	struct dump_req *d = arg;
	/* the result is the caller's, who asked for it */
	storage_opts so = {.remove_source = true,
	                   .set_owner = d->caller_uid != 0,
	                   .owner_uid = d->caller_uid,
	                   .owner_gid = d->caller_gid,
	                   .progress = op_progress_cb,
	                   .userdata = d->op};
	storage_stats stats = {0};
	double t0 = op_now_ms();

	collect_plugin_files(d);
	op_phase(d->op, d->compression == STORAGE_NONE ? "write" : "compress");
	if (storage_pack(d->image, d->dest, d->compression, &so, &stats, err) < 0)
		return -(err->code ? err->code : EIO);
	op_time(d->op,
	        d->compression == STORAGE_NONE ? "store (fsync, rename)"
	                                       : "compress (write, fsync)",
	        op_now_ms() - t0);
	d->op->size = stats.stored_bytes;
	return confirm(d, err);
}

/* A pty slave: the attach terminal the daemon gave an attachable job
 * (Unix98 ptys, majors 136-143). */
static bool is_pty_slave(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) >= 136 && major(st->st_rdev) <= 143;
}

/* The root's fds 0-2 that are the daemon's own objects for a managed job,
 * which the dump records as external stdio and restore job re-creates: its
 * log file, or its attach terminal. What the job put there itself (a FIFO,
 * a file of its own) is recorded as what it is. */
static unsigned job_external_stdio(const struct job_dump_target *t)
{
	struct stat log, st;
	unsigned mask = 0;
	char path[64];

	if (!t->jid[0])
		return 0;
	bool have_log = t->log_path[0] && stat(t->log_path, &log) == 0;
	for (int n = 0; n < 3; n++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)t->pid, n);
		if (stat(path, &st) < 0)
			continue;
		if ((have_log && st.st_dev == log.st_dev && st.st_ino == log.st_ino) ||
		    (t->attachable && is_pty_slave(&st)))
			mask |= 1u << n;
	}
	return mask;
}

/* In the worker: the engine dumps into the scratch directory and, through
 * commit, the result is packed and recorded before the tree is let go. */
static int dump_worker(void *arg)
{
	struct dump_req *d = arg;
	struct cd_dump_stats st = {0};
	struct cd_dump_opts o = {.version = CD_ENGINE_OPTS_VERSION,
	                         .pid = d->target.pid,
	                         .leave_running = d->leave_running,
	                         .shell_job = d->shell_job,
	                         .tcp_established = d->tcp_established,
	                         .tcp_close = d->tcp_close,
	                         .stats = &st,
	                         .progress = op_engine_progress_cb,
	                         .userdata = d->op,
	                         .commit = commit,
	                         .commit_userdata = d,
	                         .external_stdio =
	                             d->external_stdio ? 7 : job_external_stdio(&d->target),
	                         .parent = d->parent_path,
	                         .track = d->incremental ? &d->track : NULL,
	                         .streams = (unsigned)d->streams,
	                         .page_codec = d->page_codec};
	double t0 = op_now_ms();
	cd_err *err = &d->op->err;

	cr_worker_cancellable();
	close_fd(&d->packed[0]);
	close_fd(&d->ack[1]);
	/* loaded here, in the worker, as root: a plugin (and a driver library
	 * it loads) starts fresh in each dump and never in the daemon itself */
	if (cr_plugins_load(d->plugins_dir, &o.plugins, err) < 0)
		return 1;
	if (act_as_caller(d, err) < 0 || make_scratch(d, err) < 0)
		return 1;
	if (asprintf(&d->image, "%s/image", d->op->scratch) < 0) {
		cd_err_sys(err, ENOMEM, "dump");
		return 1;
	}
	o.dir = d->image;
	op_phase(d->op, "dump");
	int r = cd_engine_dump(&o, err);
	cd_plugins_free(o.plugins);
	if (r < 0)
		return 1;
	cr_dump_timings(d->op, &st, d->leave_running);
	op_time(d->op, "total", op_now_ms() - t0);
	return 0;
}

/* What the worker needs of d (cr_worker_main), its fds by number. */
static json_t *dump_args(const struct dump_req *d)
{
	json_t *tasks = json_array();

	for (size_t i = 0; tasks && i < d->track.n; i++)
		json_array_append_new(tasks, json_pack("[i, I, i]", (int)d->track.tasks[i].pid,
		                                       (json_int_t)d->track.tasks[i].start_time,
		                                       d->track.tasks[i].uffd));
	return json_pack(
	    "{s:i, s:s, s:s, s:b, s:s, s:s, s:s, s:i, s:I, s:i, s:b, s:b, s:b, s:b, s:b, s:s*, "
	    "s:i, s:i, s:i, s:i, s:b, s:s*, s:o, s:I}",
	    "pid", (int)d->target.pid, "jid", d->target.jid, "log_path", d->target.log_path,
	    "attachable", d->target.attachable, "dir", d->dir, "name", d->name, "dest", d->dest,
	    "compression", (int)d->compression, "streams", d->streams, "page_codec",
	    (int)d->page_codec, "leave_running", d->leave_running, "shell_job", d->shell_job,
	    "tcp_established", d->tcp_established, "tcp_close", d->tcp_close, "external_stdio",
	    d->external_stdio, "plugins_dir", d->plugins_dir, "caller_uid", (int)d->caller_uid,
	    "caller_gid", (int)d->caller_gid, "packed", d->packed[1], "ack", d->ack[0],
	    "incremental", d->incremental, "parent_path", d->parent_path, "track", tasks,
	    "image_hash", (json_int_t)d->track.image_hash);
}

static int track_from_args(json_t *tasks, struct cd_track *tr)
{
	size_t i;
	json_t *t;

	tr->tasks = calloc(json_array_size(tasks) + 1, sizeof(*tr->tasks));
	if (!tr->tasks)
		return -1;
	json_array_foreach(tasks, i, t)
	{
		int pid, uffd;
		json_int_t start;

		if (json_unpack(t, "[i, I, i]", &pid, &start, &uffd) < 0)
			return -1;
		tr->tasks[i] =
		    (struct cd_track_task){.pid = pid, .start_time = (uint64_t)start, .uffd = uffd};
		tr->n = i + 1;
	}
	return 0;
}

/* Worker side: d from dump_args, then the dump. */
int cr_dump_worker_main(json_t *args, struct op_shared *op)
{
	struct dump_req d = {.op = op, .packed = {-1, -1}, .ack = {-1, -1}};
	int pid, compression, page_codec, uid, gid, attachable, leave_running, shell_job,
	    tcp_established, tcp_close, external_stdio, incremental;
	const char *jid, *log_path, *name, *dest, *parent_path = NULL;
	json_int_t image_hash;
	json_t *tasks;

	if (json_unpack(args,
	                "{s:i, s:s, s:s, s:b, s:s, s:s, s:s, s:i, s:I, s:i, s:b, s:b, s:b, s:b, "
	                "s:b, s?s, s:i, s:i, s:i, s:i, s:b, s?s, s:o, s:I}",
	                "pid", &pid, "jid", &jid, "log_path", &log_path, "attachable", &attachable,
	                "dir", &d.dir, "name", &name, "dest", &dest, "compression", &compression,
	                "streams", &d.streams, "page_codec", &page_codec, "leave_running",
	                &leave_running, "shell_job", &shell_job, "tcp_established",
	                &tcp_established, "tcp_close", &tcp_close, "external_stdio",
	                &external_stdio, "plugins_dir", &d.plugins_dir, "caller_uid", &uid,
	                "caller_gid", &gid, "packed", &d.packed[1], "ack", &d.ack[0], "incremental",
	                &incremental, "parent_path", &parent_path, "track", &tasks, "image_hash",
	                &image_hash) < 0 ||
	    track_from_args(tasks, &d.track) < 0) {
		cd_err_set(&op->err, EINVAL, "dump: the worker's arguments");
		return 1;
	}
	d.target.pid = pid;
	snprintf(d.target.jid, sizeof(d.target.jid), "%s", jid);
	snprintf(d.target.log_path, sizeof(d.target.log_path), "%s", log_path);
	d.target.attachable = attachable;
	snprintf(d.name, sizeof(d.name), "%s", name);
	d.dest = (char *)dest;
	d.compression = (storage_compression)compression;
	d.page_codec = (unsigned)page_codec;
	d.leave_running = leave_running;
	d.shell_job = shell_job;
	d.tcp_established = tcp_established;
	d.tcp_close = tcp_close;
	d.external_stdio = external_stdio;
	d.caller_uid = (uid_t)uid;
	d.caller_gid = (gid_t)gid;
	d.incremental = incremental;
	d.parent_path = (char *)parent_path;
	d.track.image_hash = (uint64_t)image_hash;
	return dump_worker(&d);
}

static int record_checkpoint(struct api *api, const struct dump_req *d, json_t **ret_cp,
                             char id[DB_JID_MAX], cd_err *err)
{
	struct db_checkpoint cp = {.time = time(NULL), .size = (int64_t)d->op->size};
	int r;

	job_checkpoint_new_id(cp.id, sizeof(cp.id));
	snprintf(cp.jid, sizeof(cp.jid), "%s", d->target.jid);
	snprintf(cp.compression, sizeof(cp.compression), "%s",
	         storage_compression_name(d->compression));
	if (d->made_incremental)
		snprintf(cp.parent, sizeof(cp.parent), "%s", d->parent_id);
	cp.path = d->dest;
	cp.plugins = d->op->plugins[0] ? d->op->plugins : NULL;
	r = job_manager_add_checkpoint(api->jm, &cp, err);
	if (r == 0)
		*ret_cp = job_checkpoint_to_json(&cp);
	snprintf(id, DB_JID_MAX, "%s", cp.id);
	return r;
}

/* In the daemon: records what the worker packed (a job's checkpoint) and
 * answers it. */
static int record_packed(struct api *api, struct dump_req *d, pid_t worker, json_t **ret_cp,
                         cd_err *err)
{
	char ack = ACK_RECORDED, id[DB_JID_MAX] = "";
	struct cd_track tr = {0};
	bool gone;
	int r = 0;

	close_fd(&d->packed[1]);
	close_fd(&d->ack[0]);
	gone = cr_wait_worker_pipe(d->packed[0], d->client_fd, worker, "dump");
	if (recv_trackers(d->packed[0], &tr) < 0)
		return 0; /* the worker failed before: its error says why */
	d->made_incremental = tr.incremental;
	/* nobody is there to be told of a checkpoint: the tree runs on */
	if (gone || (d->target.jid[0] && (r = record_checkpoint(api, d, ret_cp, id, err)) < 0))
		ack = ACK_FAILED;
	/* kept for the next dump of the job, tied to this checkpoint */
	if (ack == ACK_RECORDED && d->incremental)
		incr_put(d->target.jid, id, d->dest, &tr);
	cd_track_clear(&tr);
	if (write(d->ack[1], &ack, 1) != 1 && r == 0)
		r = cd_err_sys(err, errno, "dump: answer the worker");
	close_fd(&d->ack[1]);
	return r;
}

/* Written before the worker starts: if the daemon dies, its next start
 * records the checkpoint or removes the partial files (recover.c). */
static int journal(struct api *api, struct dump_req *d, cd_err *err)
{
	_cleanup_free_ char *scratch = NULL;
	struct db_inflight op = {.kind = "dump", .dest = d->dest, .created_at = time(NULL)};
	int r;

	if (asprintf(&scratch, "%s/.%s.dump-", d->dir, d->name) < 0)
		return cd_err_sys(err, ENOMEM, "dump");
	op.scratch = scratch;
	snprintf(op.jid, sizeof(op.jid), "%s", d->target.jid);
	r = job_manager_journal_begin(api->jm, &op, err);
	d->journal_id = op.id;
	return r;
}

/* --incremental: the job's trackers from its last dump, for the worker;
 * none (a full dump, tracked from here on) after a daemon restart, a
 * dump without --incremental, or a compressed checkpoint. */
static void take_trackers(struct dump_req *d)
{
	if (!d->target.jid[0])
		return;
	bool had = incr_take(d->target.jid, &d->track, d->parent_id, &d->parent_path);
	if (!d->incremental) {
		cd_track_clear(&d->track);
		return;
	}
	/* the chain is read in place: an archive's parent would be unpacked
	 * whole each time, and its path is not an image directory */
	if (d->compression != STORAGE_NONE) {
		cd_track_clear(&d->track);
		d->incremental = false;
		d->incr_note = "incremental dumps need compression \"none\": dumped in full";
		return;
	}
	if (!had)
		d->incr_note = "no earlier incremental dump of this job to build on (first, or "
		               "the daemon restarted): dumped in full, tracked from now on";
}

/* Forks the worker and records its checkpoint while the tree is stopped. */
static int run_dump(struct api *api, struct dump_req *d, json_t **ret_cp, cd_err *err)
{
	int r, rec;
	pid_t worker;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, d->packed) < 0 ||
	    pipe2(d->ack, O_CLOEXEC) < 0)
		return cd_err_sys(err, errno, "dump: pipe");
	if ((r = journal(api, d, err)) < 0)
		return r;
	int keep[2 + TRACK_MSG_MAX] = {d->packed[1], d->ack[0]};
	size_t nkeep = 2;
	for (size_t i = 0; i < d->track.n && nkeep < ARRAY_SIZE(keep); i++)
		keep[nkeep++] = d->track.tasks[i].uffd;

	json_t *args = dump_args(d);
	r = args ? cr_worker_spawn(api, "dump", args, d->op, keep, nkeep, &worker, err)
	         : cd_err_sys(err, ENOMEM, "dump: the worker's arguments");
	json_decref(args);
	/* the worker has them now: released with it, unless it hands them back */
	cd_track_clear(&d->track);
	if (r < 0)
		return cd_err_wrap(err, "dump");
	rec = record_packed(api, d, worker, ret_cp, err);
	r = cr_wait_worker(api, worker, d->op, "dump", rec < 0 ? &(cd_err){0} : err);
	/* a worker that failed after the record still left a whole checkpoint */
	return rec < 0 ? rec : r;
}

int cr_dump(struct api *api, const struct job_caller *caller, int client_fd, json_t *body,
            json_t **ret, cd_err *err)
{
	struct dump_req d = {.caller_uid = caller->uid,
	                     .caller_gid = caller->gid,
	                     .client_fd = client_fd,
	                     .packed = {-1, -1},
	                     .ack = {-1, -1}};
	json_t *cp = json_null();
	int r;

	r = parse_target(api, caller, body, &d, err);
	if (r == 0)
		r = parse_options(api, body, &d, err);
	if (r == 0)
		r = op_new(d.op_id, &d.op, err);
	if (r == 0)
		r = prepare_dest(&d, err);
	if (r == 0)
		take_trackers(&d);
	if (r == 0)
		r = run_dump(api, &d, &cp, err);
	if (d.op && d.op->scratch[0])
		storage_remove(d.op->scratch, &(cd_err){0});
	if (d.journal_id)
		job_manager_journal_end(api->jm, d.journal_id);
	if (r == 0) {
		log_info("dumped %s %s (pid %d) to %s", d.type,
		         d.target.jid[0] ? d.target.jid : "process", (int)d.target.pid, d.dest);
		*ret =
		    json_pack("{s:s, s:I, s:s, s:o, s:o, s:b}", "path", d.dest, "size",
		              (json_int_t)d.op->size, "compression",
		              storage_compression_name(d.compression), "checkpoint", cp, "timings",
		              op_timings_json(d.op), "incremental", d.made_incremental);
		if (*ret && d.streams > 1) {
			static const char *const codecs[] = {"none", "lz4", "zstd"};
			json_object_set_new(*ret, "streams", json_integer(d.streams));
			json_object_set_new(*ret, "page_codec", json_string(codecs[d.page_codec]));
		}
		if (*ret && d.incr_note)
			json_object_set_new(*ret, "note", json_string(d.incr_note));
	} else {
		json_decref(cp);
	}
	dump_req_clear(&d);
	return r;
}
