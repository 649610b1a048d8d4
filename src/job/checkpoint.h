/* The job manager's side of checkpoint/restore (see job/checkpoint.c). */
#pragma once

#include <limits.h>
#include <stdbool.h>

#include <jansson.h>
#include <sys/types.h>

#include "db/db.h"
#include "job/manager.h"
#include "shared/error.h"

/* The process a dump checkpoints, checked against the caller. */
struct job_dump_target {
	pid_t pid;
	uid_t uid; /* the owner of the process */
	gid_t gid;
	char jid[DB_JID_MAX]; /* "" for a plain process */
	/* a job's own stdio, which its dump records as external: its log file
	 * ("" when none), or its attach terminal */
	char log_path[PATH_MAX];
	bool attachable;
};

/* jid != NULL: that job, which must be running; else the process pid. */
int job_manager_dump_target(struct job_manager *jm, const struct job_caller *caller,
                            const char *jid, pid_t pid, struct job_dump_target *ret, cd_err *err);

/* The checkpoints of a job as a JSON array, newest first. */
/* A fresh checkpoint id: "ck-" and 12 random hex digits. */
void job_checkpoint_new_id(char *buf, size_t len);

int job_manager_checkpoints(struct job_manager *jm, const struct job_caller *caller,
                            const char *jid, json_t **ret, cd_err *err);
/* One checkpoint record, if the caller may see its job. */
int job_manager_checkpoint_get(struct job_manager *jm, const struct job_caller *caller,
                               const char *id, struct db_checkpoint *ret_cp, cd_err *err);
/* Whether the record may go: not while an incremental checkpoint names it
 * as its parent (EBUSY, naming it). */
int job_manager_checkpoint_may_delete(struct job_manager *jm, const struct job_caller *caller,
                                      const char *id, cd_err *err);
/* Removes the record (the caller removes the files first). */
int job_manager_checkpoint_delete(struct job_manager *jm, const struct job_caller *caller,
                                  const char *id, cd_err *err);

/* What restoring a job needs: its newest checkpoint, checked to have ended. */
struct job_restore_target {
	char *path;
	char *log_path; /* NULL when it was attachable */
	char *cmd;
	uid_t uid;
	gid_t gid;
};

int job_manager_restore_target(struct job_manager *jm, const struct job_caller *caller,
                               const char *jid, struct job_restore_target *ret, cd_err *err);
void job_restore_target_clear(struct job_restore_target *t);

/* A free job id (want when valid and free, else generated). */
int job_manager_pick_jid(struct job_manager *jm, const char *want, char *buf, size_t len,
                         cd_err *err);

const char *job_manager_log_dir(const struct job_manager *jm);
