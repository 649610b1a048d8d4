#include "db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/cleanup.h"

struct db {
	sqlite3 *conn;
	char *path;
};

/* Migration N takes the schema from version N to N+1. Never edit one that
 * has shipped: append a new one. */
static const char *const migrations[] = {
    "CREATE TABLE jobs ("
    "  jid TEXT PRIMARY KEY,"
    "  type TEXT NOT NULL,"
    "  pid INTEGER NOT NULL,"
    "  start_time INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  gid INTEGER NOT NULL,"
    "  cmd TEXT NOT NULL,"
    "  log_path TEXT,"
    "  attachable INTEGER NOT NULL DEFAULT 0,"
    "  exit_code INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  gpu INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE checkpoints ("
    "  id TEXT PRIMARY KEY,"
    "  jid TEXT NOT NULL REFERENCES jobs(jid) ON DELETE CASCADE,"
    "  time INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  path TEXT NOT NULL,"
    "  compression TEXT NOT NULL"
    ");"
    "CREATE INDEX checkpoints_by_job ON checkpoints(jid, time);",
    /* operations in flight, to finish or roll back after a daemon crash */
    "CREATE TABLE inflight ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL,"
    "  jid TEXT NOT NULL,"
    "  dest TEXT NOT NULL,"
    "  scratch TEXT NOT NULL,"
    "  log_path TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");",
    /* what plugins wrote into the image (docs/plugins.md), for inspect */
    "ALTER TABLE checkpoints ADD COLUMN plugins TEXT;",
    /* an incremental checkpoint's parent, by id (docs/engine.md) */
    "ALTER TABLE checkpoints ADD COLUMN parent TEXT;",
};

static int db_fail(struct db *db, int code, const char *what, cd_err *err)
{
	return cd_err_set(err, code, "db %s: %s: %s", db->path, what, sqlite3_errmsg(db->conn));
}

static int exec_sql(struct db *db, const char *sql, const char *what, cd_err *err)
{
	if (sqlite3_exec(db->conn, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, EIO, what, err);
	return 0;
}

/* The integer value of PRAGMA NAME on the connection, or -1. NAME is one of
 * ours, never a caller's text. */
static int pragma_int(struct db *db, const char *name)
{
	sqlite3_stmt *st;
	char sql[64];
	int v = -1;

	snprintf(sql, sizeof(sql), "PRAGMA %s", name);
	if (sqlite3_prepare_v2(db->conn, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int db_schema_version(struct db *db)
{
	return pragma_int(db, "user_version");
}

static int migrate(struct db *db, cd_err *err)
{
	int version = db_schema_version(db);
	int latest = (int)ARRAY_SIZE(migrations);
	char sql[64];

	if (version < 0)
		return db_fail(db, EIO, "read schema version", err);
	if (version > latest)
		return cd_err_set(err, EPROTO,
		                  "db %s: schema version %d is newer than this cedana (%d)",
		                  db->path, version, latest);
	for (int v = version; v < latest; v++) {
		if (exec_sql(db, "BEGIN IMMEDIATE", "begin migration", err) < 0)
			return -err->code;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (exec_sql(db, migrations[v], "migration", err) < 0 ||
		    exec_sql(db, sql, "set schema version", err) < 0) {
			sqlite3_exec(db->conn, "ROLLBACK", NULL, NULL, NULL);
			return cd_err_wrap(err, "migrate to version %d", v + 1);
		}
		if (exec_sql(db, "COMMIT", "commit migration", err) < 0)
			return -err->code;
	}
	return 0;
}

/* The database decides who may kill which process and delete which file,
 * and its default path is in /tmp: a file another user planted there (or a
 * -wal/-shm beside it) would hand them root's jobs. So each of the three is
 * created here, 0600 and without following a link, or must already be a
 * regular file of the daemon's user that no one else may write. The fds stay
 * open until SQLite has opened the same files. */
static int db_file_check(const char *path, int fd, cd_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "db %s", path);
	if (!S_ISREG(st.st_mode))
		return cd_err_set(err, EPERM, "db %s: not a regular file, refused", path);
	if (st.st_uid != geteuid())
		return cd_err_set(err, EPERM,
		                  "db %s: owned by uid %u, not by the daemon's uid %u: refused "
		                  "(another user could have planted it; remove it)",
		                  path, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return cd_err_set(err, EPERM,
		                  "db %s: writable by group or others (mode %03o): refused", path,
		                  (unsigned)(st.st_mode & 07777));
	return 0;
}

static int db_file_open(const char *path, cd_err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);

	if (fd < 0 && errno == ELOOP)
		return cd_err_set(err, ELOOP, "db %s: a symbolic link, refused", path);
	if (fd < 0)
		return cd_err_sys(err, errno, "db %s", path);
	if (db_file_check(path, fd, err) < 0) {
		close(fd);
		return -err->code;
	}
	return fd;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* fds[0..2]: the database, its -wal and its -shm. */
static int db_files_claim(const char *path, int fds[3], cd_err *err)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char name[PATH_MAX];

	for (size_t i = 0; i < 3; i++)
		fds[i] = -1;
	for (size_t i = 0; i < 3; i++) {
		if (snprintf(name, sizeof(name), "%s%s", path, suffixes[i]) >= (int)sizeof(name)) {
			close_fds(fds, i);
			return cd_err_set(err, ENAMETOOLONG, "db %s: path too long", path);
		}
		fds[i] = db_file_open(name, err);
		if (fds[i] < 0) {
			int r = fds[i];

			close_fds(fds, i);
			return r;
		}
	}
	return 0;
}

int db_open(const char *path, struct db **ret_db, cd_err *err)
{
	struct db *db = calloc(1, sizeof(*db));
	int fds[3], r;

	if (!db || !(db->path = strdup(path))) {
		free(db);
		return cd_err_sys(err, ENOMEM, "db %s", path);
	}
	r = db_files_claim(path, fds, err);
	if (r < 0) {
		db_close(db);
		return r;
	}
	r = sqlite3_open_v2(path, &db->conn,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
	                        SQLITE_OPEN_NOFOLLOW,
	                    NULL);
	close_fds(fds, 3);
	if (r != SQLITE_OK) {
		r = db_fail(db, EIO, "open", err);
		db_close(db);
		return r;
	}
	sqlite3_busy_timeout(db->conn, 5000);
	r = exec_sql(db, "PRAGMA journal_mode=WAL", "enable WAL", err);
	if (r == 0)
		r = exec_sql(db, "PRAGMA foreign_keys=ON", "enable foreign keys", err);
	if (r == 0)
		r = migrate(db, err);
	if (r < 0) {
		db_close(db);
		return r;
	}
	*ret_db = db;
	return 0;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	sqlite3_close(db->conn);
	free(db->path);
	free(db);
}

static int prepare(struct db *db, const char *sql, sqlite3_stmt **st, cd_err *err)
{
	if (sqlite3_prepare_v2(db->conn, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(db, EIO, "prepare", err);
	return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int idx, const char *s)
{
	if (s)
		sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, idx);
}

/* Runs a statement that returns no rows; -ENOENT when it changed nothing. */
static int step_done(struct db *db, sqlite3_stmt *st, const char *what, bool need_change,
                     cd_err *err)
{
	int rc = sqlite3_step(st);
	int r = 0;

	if (rc == SQLITE_CONSTRAINT)
		r = cd_err_set(err, EEXIST, "%s: already exists", what);
	else if (rc != SQLITE_DONE)
		r = db_fail(db, EIO, what, err);
	else if (need_change && sqlite3_changes(db->conn) == 0)
		r = cd_err_set(err, ENOENT, "%s: not found", what);
	sqlite3_finalize(st);
	return r;
}

int db_job_insert(struct db *db, const struct db_job *job, cd_err *err)
{
	sqlite3_stmt *st;
	int r;

	r = prepare(db,
	            "INSERT INTO jobs (jid, type, pid, start_time, uid, gid, cmd, log_path,"
	            " attachable, exit_code, created_at, gpu)"
	            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	            &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, job->jid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, job->type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, job->pid);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)job->start_time);
	sqlite3_bind_int64(st, 5, job->uid);
	sqlite3_bind_int64(st, 6, job->gid);
	sqlite3_bind_text(st, 7, job->cmd ? job->cmd : "[]", -1, SQLITE_TRANSIENT);
	bind_text_or_null(st, 8, job->log_path);
	sqlite3_bind_int(st, 9, job->attachable);
	if (job->has_exit_code)
		sqlite3_bind_int(st, 10, job->exit_code);
	else
		sqlite3_bind_null(st, 10);
	sqlite3_bind_int64(st, 11, job->created_at);
	sqlite3_bind_int(st, 12, job->gpu);
	return step_done(db, st, "insert job", false, err);
}

static char *column_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	return s ? strdup((const char *)s) : NULL;
}

static void row_to_job(sqlite3_stmt *st, struct db_job *job)
{
	memset(job, 0, sizeof(*job));
	snprintf(job->jid, sizeof(job->jid), "%s", sqlite3_column_text(st, 0));
	snprintf(job->type, sizeof(job->type), "%s", sqlite3_column_text(st, 1));
	job->pid = (pid_t)sqlite3_column_int64(st, 2);
	job->start_time = (uint64_t)sqlite3_column_int64(st, 3);
	job->uid = (uid_t)sqlite3_column_int64(st, 4);
	job->gid = (gid_t)sqlite3_column_int64(st, 5);
	job->cmd = column_strdup(st, 6);
	job->log_path = column_strdup(st, 7);
	job->attachable = sqlite3_column_int(st, 8);
	job->has_exit_code = sqlite3_column_type(st, 9) != SQLITE_NULL;
	job->exit_code = sqlite3_column_int(st, 9);
	job->created_at = sqlite3_column_int64(st, 10);
	job->gpu = sqlite3_column_int(st, 11);
}

#define JOB_COLUMNS                                                                                \
	"jid, type, pid, start_time, uid, gid, cmd, log_path, attachable, exit_code,"              \
	" created_at, gpu"

int db_job_get(struct db *db, const char *jid, struct db_job *ret_job, cd_err *err)
{
	sqlite3_stmt *st;
	int rc, r;

	r = prepare(db, "SELECT " JOB_COLUMNS " FROM jobs WHERE jid = ?", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, jid, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_to_job(st, ret_job);
	else if (rc == SQLITE_DONE)
		r = cd_err_set(err, ENOENT, "job %s not found", jid);
	else
		r = db_fail(db, EIO, "get job", err);
	sqlite3_finalize(st);
	return r;
}

int db_job_list(struct db *db, struct db_job **ret_jobs, size_t *ret_n, cd_err *err)
{
	struct db_job *jobs = NULL;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc, r;

	r = prepare(db, "SELECT " JOB_COLUMNS " FROM jobs ORDER BY created_at, rowid", &st, err);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_job *grown = realloc(jobs, (n + 1) * sizeof(*jobs));

		if (!grown) {
			r = cd_err_sys(err, ENOMEM, "list jobs");
			break;
		}
		jobs = grown;
		row_to_job(st, &jobs[n++]);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, EIO, "list jobs", err);
	sqlite3_finalize(st);
	if (r < 0) {
		db_job_list_free(jobs, n);
		return r;
	}
	*ret_jobs = jobs;
	*ret_n = n;
	return 0;
}

int db_job_set_exit(struct db *db, const char *jid, int exit_code, cd_err *err)
{
	sqlite3_stmt *st;
	int r = prepare(db, "UPDATE jobs SET exit_code = ? WHERE jid = ?", &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_int(st, 1, exit_code);
	sqlite3_bind_text(st, 2, jid, -1, SQLITE_TRANSIENT);
	return step_done(db, st, "set exit code", true, err);
}

int db_job_set_process(struct db *db, const char *jid, pid_t pid, uint64_t start_time,
                       const char *log_path, bool attachable, cd_err *err)
{
	sqlite3_stmt *st;
	int r = prepare(db,
	                "UPDATE jobs SET pid = ?, start_time = ?, log_path = ?, attachable = ?,"
	                " exit_code = NULL WHERE jid = ?",
	                &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, pid);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)start_time);
	bind_text_or_null(st, 3, log_path);
	sqlite3_bind_int(st, 4, attachable);
	sqlite3_bind_text(st, 5, jid, -1, SQLITE_TRANSIENT);
	return step_done(db, st, "set job process", true, err);
}

int db_job_delete(struct db *db, const char *jid, cd_err *err)
{
	sqlite3_stmt *st;
	int r = prepare(db, "DELETE FROM jobs WHERE jid = ?", &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, jid, -1, SQLITE_TRANSIENT);
	r = step_done(db, st, "delete job", true, err);
	if (r == -ENOENT)
		return cd_err_set(err, ENOENT, "job %s not found", jid);
	return r;
}

void db_job_clear(struct db_job *job)
{
	if (!job)
		return;
	free(job->cmd);
	free(job->log_path);
	job->cmd = job->log_path = NULL;
}

void db_job_list_free(struct db_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		db_job_clear(&jobs[i]);
	free(jobs);
}

int db_checkpoint_insert(struct db *db, const struct db_checkpoint *cp, cd_err *err)
{
	sqlite3_stmt *st;
	int r = prepare(db,
	                "INSERT INTO checkpoints (id, jid, time, size, path, compression, plugins,"
	                " parent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	                &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, cp->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, cp->jid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, cp->time);
	sqlite3_bind_int64(st, 4, cp->size);
	sqlite3_bind_text(st, 5, cp->path ? cp->path : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, cp->compression, -1, SQLITE_TRANSIENT);
	if (cp->plugins)
		sqlite3_bind_text(st, 7, cp->plugins, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 7);
	if (cp->parent[0])
		sqlite3_bind_text(st, 8, cp->parent, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 8);
	r = step_done(db, st, "insert checkpoint", false, err);
	if (r == -EEXIST && sqlite3_extended_errcode(db->conn) == SQLITE_CONSTRAINT_FOREIGNKEY)
		return cd_err_set(err, ENOENT, "insert checkpoint: job %s not found", cp->jid);
	return r;
}

#define CHECKPOINT_COLUMNS "id, jid, time, size, path, compression, plugins, parent"

static void row_to_checkpoint(sqlite3_stmt *st, struct db_checkpoint *cp)
{
	memset(cp, 0, sizeof(*cp));
	snprintf(cp->id, sizeof(cp->id), "%s", sqlite3_column_text(st, 0));
	snprintf(cp->jid, sizeof(cp->jid), "%s", sqlite3_column_text(st, 1));
	cp->time = sqlite3_column_int64(st, 2);
	cp->size = sqlite3_column_int64(st, 3);
	cp->path = column_strdup(st, 4);
	snprintf(cp->compression, sizeof(cp->compression), "%s", sqlite3_column_text(st, 5));
	cp->plugins = column_strdup(st, 6);
	if (sqlite3_column_text(st, 7))
		snprintf(cp->parent, sizeof(cp->parent), "%s", sqlite3_column_text(st, 7));
}

/* Runs a query bound to one text key that returns at most one checkpoint. */
static int checkpoint_one(struct db *db, const char *sql, const char *key, bool by_job,
                          struct db_checkpoint *ret_cp, cd_err *err)
{
	sqlite3_stmt *st;
	int rc, r;

	r = prepare(db, sql, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		row_to_checkpoint(st, ret_cp);
	else if (rc == SQLITE_DONE)
		r = by_job ? cd_err_set(err, ENOENT, "job %s has no checkpoint", key)
		           : cd_err_set(err, ENOENT, "checkpoint %s not found", key);
	else
		r = db_fail(db, EIO, "get checkpoint", err);
	sqlite3_finalize(st);
	return r;
}

int db_checkpoint_latest(struct db *db, const char *jid, struct db_checkpoint *ret_cp, cd_err *err)
{
	return checkpoint_one(db,
	                      "SELECT " CHECKPOINT_COLUMNS " FROM checkpoints"
	                      " WHERE jid = ? ORDER BY time DESC, rowid DESC LIMIT 1",
	                      jid, true, ret_cp, err);
}

int db_checkpoint_get(struct db *db, const char *id, struct db_checkpoint *ret_cp, cd_err *err)
{
	return checkpoint_one(db, "SELECT " CHECKPOINT_COLUMNS " FROM checkpoints WHERE id = ?", id,
	                      false, ret_cp, err);
}

int db_checkpoint_list(struct db *db, const char *jid, struct db_checkpoint **ret_cps,
                       size_t *ret_n, cd_err *err)
{
	struct db_checkpoint *cps = NULL;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc, r;

	r = prepare(db,
	            "SELECT " CHECKPOINT_COLUMNS " FROM checkpoints"
	            " WHERE jid = ? ORDER BY time DESC, rowid DESC",
	            &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, jid, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_checkpoint *grown = realloc(cps, (n + 1) * sizeof(*cps));

		if (!grown) {
			r = cd_err_sys(err, ENOMEM, "list checkpoints");
			break;
		}
		cps = grown;
		row_to_checkpoint(st, &cps[n++]);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, EIO, "list checkpoints", err);
	sqlite3_finalize(st);
	if (r < 0) {
		db_checkpoint_list_free(cps, n);
		return r;
	}
	*ret_cps = cps;
	*ret_n = n;
	return 0;
}

int db_checkpoint_delete(struct db *db, const char *id, cd_err *err)
{
	sqlite3_stmt *st;
	int r = prepare(db, "DELETE FROM checkpoints WHERE id = ?", &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	r = step_done(db, st, "delete checkpoint", true, err);
	if (r == -ENOENT)
		return cd_err_set(err, ENOENT, "checkpoint %s not found", id);
	return r;
}

void db_checkpoint_list_free(struct db_checkpoint *cps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		db_checkpoint_clear(&cps[i]);
	free(cps);
}

void db_checkpoint_clear(struct db_checkpoint *cp)
{
	if (cp) {
		free(cp->plugins);
		cp->plugins = NULL;
		free(cp->path);
		cp->path = NULL;
	}
}

static void set_synchronous(struct db *db, int level)
{
	char sql[40];

	snprintf(sql, sizeof(sql), "PRAGMA synchronous=%d", level);
	sqlite3_exec(db->conn, sql, NULL, NULL, NULL);
}

static int inflight_insert(struct db *db, struct db_inflight *op, cd_err *err);

/* A restore's journal entry is written before its worker starts, so it lies
 * on the way of every restore (lazy restore's 50 ms included): it is
 * committed without the WAL's fdatasync (13-570 ms on a loaded disk). In WAL
 * mode that commit still outlives the daemon's crash, which is what the
 * journal is for (recover.c); only a power loss may drop it, and that takes
 * the worker and the restored tree with it, and the unsynced scratch
 * directory and output file it names may be gone as well. The next synced
 * commit (the job's record) syncs it. A dump's entry stays synced: after
 * a power loss it is what records a checkpoint that reached its path. */
int db_inflight_insert(struct db *db, struct db_inflight *op, cd_err *err)
{
	/* a restore: the connection's PRAGMA synchronous (0-3), or -1 */
	int level = strcmp(op->kind, "restore") == 0 ? pragma_int(db, "synchronous") : -1;
	int r;

	if (level > 1)
		set_synchronous(db, 1); /* NORMAL */
	r = inflight_insert(db, op, err);
	if (level > 1)
		set_synchronous(db, level);
	return r;
}

static int inflight_insert(struct db *db, struct db_inflight *op, cd_err *err)
{
	sqlite3_stmt *st;
	int r = prepare(db,
	                "INSERT INTO inflight (kind, jid, dest, scratch, log_path, created_at)"
	                " VALUES (?, ?, ?, ?, ?, ?)",
	                &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, op->kind, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, op->jid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, op->dest ? op->dest : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, op->scratch ? op->scratch : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, op->log_path ? op->log_path : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, op->created_at);
	r = step_done(db, st, "journal an operation", false, err);
	if (r == 0)
		op->id = sqlite3_last_insert_rowid(db->conn);
	return r;
}

int db_inflight_delete(struct db *db, int64_t id, cd_err *err)
{
	sqlite3_stmt *st;
	int r = prepare(db, "DELETE FROM inflight WHERE id = ?", &st, err);

	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	return step_done(db, st, "end a journaled operation", false, err);
}

static void row_to_inflight(sqlite3_stmt *st, struct db_inflight *op)
{
	memset(op, 0, sizeof(*op));
	op->id = sqlite3_column_int64(st, 0);
	snprintf(op->kind, sizeof(op->kind), "%s", sqlite3_column_text(st, 1));
	snprintf(op->jid, sizeof(op->jid), "%s", sqlite3_column_text(st, 2));
	op->dest = column_strdup(st, 3);
	op->scratch = column_strdup(st, 4);
	op->log_path = column_strdup(st, 5);
	op->created_at = sqlite3_column_int64(st, 6);
}

int db_inflight_list(struct db *db, struct db_inflight **ret, size_t *ret_n, cd_err *err)
{
	struct db_inflight *ops = NULL;
	sqlite3_stmt *st;
	size_t n = 0;
	int rc, r;

	r = prepare(db,
	            "SELECT id, kind, jid, dest, scratch, log_path, created_at FROM inflight"
	            " ORDER BY id",
	            &st, err);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct db_inflight *grown = realloc(ops, (n + 1) * sizeof(*ops));

		if (!grown) {
			r = cd_err_sys(err, ENOMEM, "list the journal");
			break;
		}
		ops = grown;
		row_to_inflight(st, &ops[n++]);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_fail(db, EIO, "list the journal", err);
	sqlite3_finalize(st);
	if (r < 0) {
		db_inflight_list_free(ops, n);
		return r;
	}
	*ret = ops;
	*ret_n = n;
	return 0;
}

void db_inflight_list_free(struct db_inflight *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ops[i].dest);
		free(ops[i].scratch);
		free(ops[i].log_path);
	}
	free(ops);
}
