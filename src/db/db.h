/* The job database: SQLite in WAL mode, schema versioned by PRAGMA
 * user_version and upgraded by an ordered list of migrations. Not
 * thread-safe by itself; the job manager serialises access. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/error.h"

#define DB_JID_MAX 64

struct db;

struct db_job {
	char jid[DB_JID_MAX];
	char type[16]; /* "process" */
	pid_t pid;
	uint64_t start_time; /* field 22 of /proc/PID/stat, to tell a reused PID apart */
	uid_t uid;
	gid_t gid;
	char *cmd;      /* JSON array of argv */
	char *log_path; /* NULL for attachable jobs */
	bool attachable;
	bool has_exit_code;
	int exit_code;
	int64_t created_at; /* unix seconds */
	bool gpu;
};

struct db_checkpoint {
	char id[DB_JID_MAX];
	char jid[DB_JID_MAX];
	int64_t time; /* unix seconds */
	int64_t size; /* bytes */
	char *path;
	char compression[16];
	char *plugins; /* JSON object: each plugin's plugin-NAME.json of the image; NULL: none */
	char parent[DB_JID_MAX]; /* an incremental checkpoint's parent checkpoint id; "": none */
};

int db_open(const char *path, struct db **ret_db, cd_err *err);
void db_close(struct db *db);
int db_schema_version(struct db *db);

/* -EEXIST when the jid is taken. */
int db_job_insert(struct db *db, const struct db_job *job, cd_err *err);
/* -ENOENT when there is no such job. */
int db_job_get(struct db *db, const char *jid, struct db_job *ret_job, cd_err *err);
/* All jobs, oldest first; free with db_job_list_free. */
int db_job_list(struct db *db, struct db_job **ret_jobs, size_t *ret_n, cd_err *err);
int db_job_set_exit(struct db *db, const char *jid, int exit_code, cd_err *err);
/* Points an existing job at a new process (a restore), clearing its exit code. */
int db_job_set_process(struct db *db, const char *jid, pid_t pid, uint64_t start_time,
                       const char *log_path, bool attachable, cd_err *err);
/* Also removes the job's checkpoint records. -ENOENT when absent. */
int db_job_delete(struct db *db, const char *jid, cd_err *err);
void db_job_clear(struct db_job *job);
void db_job_list_free(struct db_job *jobs, size_t n);

int db_checkpoint_insert(struct db *db, const struct db_checkpoint *cp, cd_err *err);

/* The journal of dumps and restores in flight: written before a worker
 * starts, removed once its outcome is handled, so that the next start of a
 * daemon killed meanwhile finishes or rolls back what was left. Empty
 * strings for what does not apply. */
struct db_inflight {
	int64_t id;
	char kind[16]; /* "dump" or "restore" */
	char jid[DB_JID_MAX];
	char *dest;     /* dump: the checkpoint's final path */
	char *scratch;  /* dump: DIR/.NAME. prefix of its scratch; restore: the directory */
	char *log_path; /* restore: an output file it created */
	int64_t created_at;
};
int db_inflight_insert(struct db *db, struct db_inflight *op, cd_err *err);
int db_inflight_delete(struct db *db, int64_t id, cd_err *err);
/* All entries, oldest first; free with db_inflight_list_free. */
int db_inflight_list(struct db *db, struct db_inflight **ret, size_t *ret_n, cd_err *err);
void db_inflight_list_free(struct db_inflight *ops, size_t n);
/* The newest checkpoint of a job; -ENOENT when it has none. */
int db_checkpoint_latest(struct db *db, const char *jid, struct db_checkpoint *ret_cp, cd_err *err);
/* -ENOENT "checkpoint ID not found". */
int db_checkpoint_get(struct db *db, const char *id, struct db_checkpoint *ret_cp, cd_err *err);
/* A job's checkpoints, newest first; free with db_checkpoint_list_free. */
int db_checkpoint_list(struct db *db, const char *jid, struct db_checkpoint **ret_cps,
                       size_t *ret_n, cd_err *err);
/* Removes the record only (the files are the caller's). -ENOENT when absent. */
int db_checkpoint_delete(struct db *db, const char *id, cd_err *err);
void db_checkpoint_clear(struct db_checkpoint *cp);
void db_checkpoint_list_free(struct db_checkpoint *cps, size_t n);
