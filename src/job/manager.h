/* The job manager: the whole lifecycle of jobs, called by the daemon's
 * request handlers and by its reaper. Every call is authorised against the
 * caller (from SO_PEERCRED): root acts on everything, another user only on
 * their own jobs and on processes they could ptrace. Thread-safe. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "db/db.h"
#include "job/io.h"
#include "shared/error.h"

struct job_manager;

struct job_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid; /* 0 when unknown (tcp) */
	/* supplementary groups from the socket (SO_PEERGROUPS), not the
	 * caller's /proc entry, whose PID may be another process by now */
	const gid_t *groups;
	int ngroups;
};

struct job_run_opts {
	const char *jid; /* NULL: generate one */
	char **argv;
	char **envp;
	const char *cwd;
	bool attachable;
	const char *out; /* NULL: the job log file */
	bool as_root;
	unsigned short rows, cols; /* initial terminal size of attachable jobs */
};

/* A process tree that already exists (restored by the engine) registered
 * as a job. master is a pty master to relay for attach (-1 when none, then
 * log_path says where its output goes); the manager owns it from the call
 * on, also when the call fails. Register the tree's root before it can
 * exit, or its exit code is lost (it is reaped as an unknown orphan). */
struct job_adopt_opts {
	const char *jid;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	const char *cmd_json; /* JSON array; NULL: read from /proc/PID/cmdline */
	const char *log_path;
	int master;
	bool is_child; /* a child of the daemon: its exit code will be recorded */
	bool replace;  /* jid names an ended job: point it at pid (restore of a job) */
};

int job_manager_new(const char *db_path, const char *log_dir, struct job_manager **ret_jm,
                    cd_err *err);
void job_manager_free(struct job_manager *jm);

/* Each returns the job as JSON (see docs/api.md) in *ret_job. */
int job_manager_run(struct job_manager *jm, const struct job_caller *caller,
                    const struct job_run_opts *opts, json_t **ret_job, cd_err *err);
int job_manager_manage(struct job_manager *jm, const struct job_caller *caller, pid_t pid,
                       const char *jid, json_t **ret_job, cd_err *err);
int job_manager_adopt(struct job_manager *jm, const struct job_adopt_opts *opts, json_t **ret_job,
                      cd_err *err);
int job_manager_get(struct job_manager *jm, const struct job_caller *caller, const char *jid,
                    json_t **ret_job, cd_err *err);
/* pid > 0 keeps only the job of that process. */
int job_manager_list(struct job_manager *jm, const struct job_caller *caller, pid_t pid,
                     json_t **ret_jobs, cd_err *err);
int job_manager_kill(struct job_manager *jm, const struct job_caller *caller, const char *jid,
                     int sig, json_t **ret_job, cd_err *err);
int job_manager_delete(struct job_manager *jm, const struct job_caller *caller, const char *jid,
                       cd_err *err);

/* The journal of operations in flight (db_inflight): begin fills op->id. */
int job_manager_journal_begin(struct job_manager *jm, struct db_inflight *op, cd_err *err);
void job_manager_journal_end(struct job_manager *jm, int64_t id);
int job_manager_journal_list(struct job_manager *jm, struct db_inflight **ret, size_t *ret_n,
                             cd_err *err);
/* Records cp unless its job already has a checkpoint at cp->path (a dump
 * finished by a daemon that died before it forgot the journal entry);
 * *ret_added says which. */
int job_manager_add_checkpoint_once(struct job_manager *jm, const struct db_checkpoint *cp,
                                    bool *ret_added, cd_err *err);

/* Whether a job's output goes to path (its log, or --out). */
bool job_manager_log_in_use(struct job_manager *jm, const char *path);

/* Records a checkpoint of a job (cp->jid), shown in ps and job inspect. */
int job_manager_add_checkpoint(struct job_manager *jm, const struct db_checkpoint *cp, cd_err *err);

/* Checks that the caller may attach to jid (-EINVAL when it is not
 * attachable) without handing anything over. */
int job_manager_attach_check(struct job_manager *jm, const struct job_caller *caller,
                             const char *jid, cd_err *err);
/* Hands an upgraded client socket to the job's relay, which closes it
 * with close_fn (see job_io_attach), also on failure. */
int job_manager_attach(struct job_manager *jm, const char *jid, int sock, const void *extra,
                       size_t extra_len, job_io_close_fn close_fn, void *close_arg, cd_err *err);

/* Hangs up every attached client and stops the relays, before the HTTP
 * server stops. Jobs keep running. */
void job_manager_detach_all(struct job_manager *jm);

/* Forks a worker (engine work runs in one, so that a crash fails one
 * request, never the daemon). The child runs fn(arg) with signals
 * unblocked and exits with its return value. It is a fork of a threaded
 * process: fn may make only async-signal-safe calls, then exec
 * (cr_worker_spawn's does). It keeps fds 0-2 and the n_keep
 * fds of keep (negative ones are skipped), nothing else: a worker holding
 * another request's pipe end would keep that request from ever seeing EOF.
 * The daemon's reaper collects it; job_manager_wait_worker blocks until it
 * has, never call waitpid on it yourself. */
int job_manager_fork_worker(struct job_manager *jm, int (*fn)(void *), void *arg, const int *keep,
                            size_t n_keep, pid_t *ret_pid, cd_err *err);
/* Sends sig to every worker still running (at shutdown: SIGTERM cancels
 * their work, SIGKILL ends them); how many. Their waiters see them die once
 * job_manager_reap has collected them. */
size_t job_manager_kill_workers(struct job_manager *jm, int sig);
/* The wait status of a worker; -ECHILD when pid is not one. Needs
 * job_manager_reap to run (the daemon calls it on SIGCHLD). */
int job_manager_wait_worker(struct job_manager *jm, pid_t pid, int *ret_status);

/* Reaps every exited child (the daemon is a subreaper) and records the exit
 * codes of jobs; call on SIGCHLD. */
void job_manager_reap(struct job_manager *jm);

/* A quick self-test of the DB for the health check. */
int job_manager_db_check(struct job_manager *jm, cd_err *err);
