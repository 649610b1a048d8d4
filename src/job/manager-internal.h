/* What the parts of the job manager share; not for other areas. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "db/db.h"
#include "job/io.h"
#include "job/manager.h"

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

/* The runtime entry of a job by jid, or by pid when jid is NULL. */
struct job_rt **rt_find(struct job_manager *jm, const char *jid, pid_t pid);
void rt_remove(struct job_manager *jm, const char *jid);
/* Registers a job started or adopted as a child; takes master (-1: none). */
int rt_add(struct job_manager *jm, const char *jid, pid_t pid, int master, cd_err *err);

bool job_is_live(const struct db_job *job);
json_t *job_json(struct job_manager *jm, const struct db_job *job);
int authorize_pid(const struct job_caller *c, pid_t pid, cd_err *err);
/* Fills buf with the requested jid after checking it is free, or a fresh one. */
int pick_jid(struct job_manager *jm, const char *want, char *buf, size_t len, cd_err *err);
