/* The command tree. Each cmd-*.c file parses its flags and makes one call
 * to the daemon (or, for "daemon start", runs it). */
#pragma once

#include "cli/args.h"

extern const struct cli_cmd cli_root;

extern const struct cli_cmd cmd_daemon;
extern const struct cli_cmd cmd_check;
extern const struct cli_cmd cmd_run;
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

/* Prints "Error: <msg>" to stderr and returns the exit code 1. */
int cli_fail(const cd_err *err);

/* A usage error found after parsing (flags that do not go together): prints
 * "Error: <msg>" and the command's --help hint, and returns the exit code 2. */
int cli_usage_fail(const struct cli_ctx *ctx, const char *msg);

/* path made absolute against the CLI's working directory, for the daemon
 * (which has its own); NULL when out of memory or the cwd is unreadable. */
char *cli_absolute_path(const char *path);

/* Writes "<pid>\n" to path (--pid-file). */
int cli_write_pid_file(const char *path, int pid, cd_err *err);
