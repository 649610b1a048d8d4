/* The command tree. Each cmd-*.c file parses its flags and makes one call
 * to the daemon (or, for "daemon start", runs it). */
#pragma once

#include "cli/args.h"

extern const struct cli_cmd cli_root;

extern const struct cli_cmd cmd_daemon;
extern const struct cli_cmd cmd_check;
extern const struct cli_cmd cmd_run;
extern const struct cli_cmd cmd_exec;
extern const struct cli_cmd cmd_manage;
extern const struct cli_cmd cmd_ps;
extern const struct cli_cmd cmd_jobs;
extern const struct cli_cmd cmd_job;
extern const struct cli_cmd cmd_kill;
extern const struct cli_cmd cmd_delete;
extern const struct cli_cmd cmd_attach;
extern const struct cli_cmd cmd_dump;
extern const struct cli_cmd cmd_restore;
extern const struct cli_cmd cmd_checkpoint;
extern const struct cli_cmd cmd_checkpoints;
extern const struct cli_cmd cmd_job_checkpoints;
extern const struct cli_cmd cmd_plugin;
extern const struct cli_cmd cmd_features;

/* check's plugin lines ("ok   gpu: no driver"), one per plugin of
 * plugins.dir; the number of broken ones. */
int cli_check_plugins(const struct cli_ctx *ctx);

/* Prints "Error: <msg>" to stderr and returns the exit code 1. */
int cli_fail(const cd_err *err);

/* A usage error found after parsing (flags that do not go together): prints
 * "Error: <msg>" and the command's --help hint, and returns the exit code 2. */
int cli_usage_fail(const struct cli_ctx *ctx, const char *msg);

/* path made absolute against the CLI's working directory, for the daemon
 * (which has its own); NULL when out of memory or the cwd is unreadable. */
char *cli_absolute_path(const char *path);

/* --pid-file, opened before the job starts, so that a file that cannot be
 * written fails the command before anything runs. */
struct cli_pid_file {
	const char *path; /* NULL: no --pid-file */
	int fd;
	bool created; /* by us: removed again when the command fails */
};

/* Opens path (NULL: nothing to do) for writing, creating it 0644. Refuses a
 * symbolic link (one a user planted would send root's write elsewhere),
 * anything but a regular file, and a file with other hard links. */
int cli_pid_file_open(struct cli_pid_file *pf, const char *path, cd_err *err);
/* Writes "<pid>\n" over the contents and closes the file. */
int cli_pid_file_write(struct cli_pid_file *pf, int pid, cd_err *err);
/* The command failed: closes the file and removes it if we created it. */
void cli_pid_file_abandon(struct cli_pid_file *pf);

/* The job the command started cannot be reported (its pid file failed):
 * ends it, through the daemon. A new job is deleted (killed, and no record
 * left); a restored job keeps its record, killed. */
void cli_undo_job(const struct cd_config *cfg, const char *jid, bool keep_record);
