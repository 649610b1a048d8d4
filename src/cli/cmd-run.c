/* run process (and exec, the same with every flag): a new job through the
 * daemon, or a plain child of the CLI with --no-server. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "job/codec.h"
#include "job/spawn.h"
#include "shared/cleanup.h"

extern char **environ;

static json_t *string_array(char **v)
{
	json_t *arr = json_array();

	for (; v && *v; v++)
		json_array_append_new(arr, json_string(*v));
	return arr;
}

/* --no-server: the job is our own child; its exit code is ours. */
static int run_local(struct cli_ctx *ctx)
{
	struct spawn_req req = {
	    .argv = ctx->args, .envp = environ, .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2};
	const char *out = cli_str(ctx, "out");
	struct cli_pid_file pf;
	cd_err err = {0};
	int status;
	pid_t pid;

	if (out) {
		req.stdout_fd = req.stderr_fd = -1;
		req.out_path = out;
	}
	if (cli_pid_file_open(&pf, cli_str(ctx, "pid-file"), &err) < 0)
		return cli_fail(&err);
	if (spawn_process(&req, &pid, &err) < 0) {
		cli_pid_file_abandon(&pf);
		return cli_fail(&err);
	}
	if (cli_pid_file_write(&pf, pid, &err) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cli_pid_file_abandon(&pf);
		return cli_fail(&err);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return job_exit_code(status);
}

static json_t *run_request(struct cli_ctx *ctx, bool attachable, cd_err *err)
{
	const char *jid = cli_str(ctx, "jid"), *out = cli_str(ctx, "out");
	_cleanup_free_ char *out_abs = NULL;
	char cwd[PATH_MAX];
	struct winsize ws = {0};
	json_t *body;

	if (!getcwd(cwd, sizeof(cwd))) {
		cd_err_sys(err, errno, "current directory");
		return NULL;
	}
	if (out && !(out_abs = cli_absolute_path(out))) {
		cd_err_sys(err, ENOMEM, "--out");
		return NULL;
	}
	ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
	body = json_pack("{s:o, s:o, s:s, s:b, s:b, s:i, s:i}", "args", string_array(ctx->args),
	                 "env", string_array(environ), "cwd", cwd, "attachable", attachable,
	                 "as_root", cli_flag(ctx, "as-root"), "rows", ws.ws_row, "cols", ws.ws_col);
	if (body && jid)
		json_object_set_new(body, "jid", json_string(jid));
	if (body && out_abs)
		json_object_set_new(body, "out", json_string(out_abs));
	return body;
}

static int run_process(struct cli_ctx *ctx)
{
	bool attach = cli_flag(ctx, "attach");
	bool attachable = attach || cli_flag(ctx, "attachable");
	struct cli_pid_file pf;
	json_t *body, *job = NULL;
	const char *jid;
	cd_err err = {0};
	bool detached;
	int code, r;

	if (cli_flag(ctx, "no-server")) {
		if (attachable)
			return cli_usage_fail(
			    ctx, "--no-server runs on this terminal: drop --attach/--attachable");
		if (cli_str(ctx, "jid"))
			return cli_usage_fail(ctx, "--no-server makes no job: drop --jid");
		return run_local(ctx);
	}
	if (attachable && cli_str(ctx, "out"))
		return cli_usage_fail(ctx,
		                      "--out cannot be combined with --attach or --attachable");
	body = run_request(ctx, attachable, &err);
	if (!body)
		return cli_fail(&err);
	r = cli_pid_file_open(&pf, cli_str(ctx, "pid-file"), &err);
	if (r == 0)
		r = client_call(&ctx->cfg, "POST", "/v1/jobs", body, &job, &err);
	json_decref(body);
	if (r < 0) {
		cli_pid_file_abandon(&pf);
		return cli_fail(&err);
	}
	jid = json_string_value(json_object_get(job, "jid"));
	if (cli_pid_file_write(&pf, (int)json_integer_value(json_object_get(job, "pid")), &err) <
	    0) {
		cli_undo_job(&ctx->cfg, jid, false);
		cli_pid_file_abandon(&pf);
		json_decref(job);
		return cli_fail(&err);
	}
	if (!attach) {
		printf("%s\n", jid);
		json_decref(job);
		return 0;
	}
	r = client_attach(&ctx->cfg, jid, &code, &detached, &err);
	json_decref(job);
	if (r < 0)
		return cli_fail(&err);
	return detached ? 0 : code;
}

static const struct cli_opt run_opts[] = {
    {"jid", 'j', CLI_STRING, "JID", "job id (default: a generated adjective_surnameN)"},
    {"attach", 'a', CLI_BOOL, NULL, "attach the terminal; Ctrl-C detaches"},
    {"attachable", 0, CLI_BOOL, NULL, "keep the job's terminal for a later attach"},
    {"out", 'o', CLI_STRING, "FILE", "write the job's output to FILE instead of the log"},
    {"pid-file", 0, CLI_STRING, "FILE", "write the job's PID to FILE"},
    {"no-server", 0, CLI_BOOL, NULL,
     "run as a child of the CLI (no daemon); its exit code is ours"},
    {"as-root", 0, CLI_BOOL, NULL, "run as root instead of the caller (root only)"},
    /* cedana's GPU jobs had to be started with it; ours are found by their
     * /dev/nvidia* files, so it is accepted and changes nothing. */
    {"gpu-enabled", 0, CLI_BOOL, NULL, "accepted for cedana compatibility (GPU jobs need no flag)"},
    {0},
};

static const struct cli_cmd cmd_run_process = {
    .name = "process",
    .summary = "Run a command as a managed job",
    .args_usage = "CMD [ARGS...]",
    .min_args = 1,
    .max_args = -1,
    .opts = run_opts,
    .run = run_process,
};

static const struct cli_cmd *const run_subs[] = {&cmd_run_process, NULL};

const struct cli_cmd cmd_run = {
    .name = "run",
    .summary = "Run a new managed job",
    .subs = run_subs,
};

/* "exec CMD" is "run process CMD" with the same flags; "exec process CMD"
 * still works, as it did when exec was only an alias of run. */
const struct cli_cmd cmd_exec = {
    .name = "exec",
    .summary = "Run a command as a managed job (run process)",
    .args_usage = "CMD [ARGS...]",
    .min_args = 1,
    .max_args = -1,
    .opts = run_opts,
    .subs = run_subs,
    .run = run_process,
};
