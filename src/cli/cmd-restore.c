/* restore process --path P | restore job JID: through the daemon, which
 * makes the restored tree a job; or, with --no-server, as a child of the
 * CLI, whose exit code becomes the CLI's. Both run the one restore path of
 * daemon/restore-run.h; this file only parses flags and draws progress. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "daemon/cr.h"
#include "daemon/op.h"
#include "daemon/restore-run.h"
#include "engine/engine.h"
#include "job/codec.h"
#include "job/proc.h"
#include "job/spawn.h"
#include "shared/cleanup.h"
#include "storage/storage.h"

/* ---- --no-server ---- */

struct local_progress {
	const char *phase;
	double start;
	bool shown;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void local_progress(uint64_t done, uint64_t total, void *userdata)
{
	struct local_progress *p = userdata;
	double t = now_s() - p->start;

	if (t < 1.0 || !isatty(STDERR_FILENO))
		return;
	progress_draw(p->phase, done, total, t);
	p->shown = true;
}

/* The engine's stages each start a line of their own. */
static void local_engine_progress(const char *stage, uint64_t done, uint64_t total, void *userdata)
{
	struct local_progress *p = userdata;

	if (strcmp(p->phase, stage)) {
		p->phase = stage;
		p->start = now_s();
	}
	local_progress(done, total, p);
}

/* What replaces the root's stdio: --out takes stdout and stderr; the rest
 * comes back as it was, and external stdio (a job's log) gets ours. */
static int local_stdio(struct cli_ctx *ctx, struct cr_stdio *ret, cd_err *err)
{
	const char *out = cli_str(ctx, "out");

	*ret = (struct cr_stdio){CR_STDIO_KEEP, -1, -1};
	if (!out)
		return 0;
	ret->out = spawn_open_out(out);
	if (ret->out < 0)
		return spawn_out_error(out, errno, err);
	ret->kind = CR_STDIO_OUT;
	return 0;
}

static int wait_child(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return job_exit_code(status);
}

static void print_local_timings(struct op_shared *op, double total_ms)
{
	json_t *timings;

	op_time(op, "total", total_ms);
	timings = op_timings_json(op);
	/* stdout is the restored tree's */
	progress_print_timings(stderr, timings);
	json_decref(timings);
}

/* The shared restore path (restore-run.h), with progress drawn here. */
static int engine_restore_local(struct cli_ctx *ctx, struct cr_restore_run *run, pid_t *ret_pid,
                                cd_err *err)
{
	struct local_progress p = {.phase = "unpack", .start = now_s()};
	int r;

	run->unpack_progress = local_progress;
	run->engine_progress = local_engine_progress;
	run->userdata = &p;
	run->leave_stopped = cli_flag(ctx, "leave-stopped");
	run->tcp_established = cli_flag(ctx, "tcp-established");
	run->tcp_close = cli_flag(ctx, "tcp-close");
	r = local_stdio(ctx, &run->stdio, err);
	if (r == 0)
		r = cr_restore_run(run, ret_pid, err);
	if (p.shown)
		progress_clear();
	if (run->stdio.out >= 0)
		close(run->stdio.out);
	run->userdata = NULL; /* p goes with this frame */
	return r;
}

static int local_fail(int r, const cd_err *err)
{
	if (r == -EBUSY) {
		fprintf(stderr, "Error: %.900s (is the original process still running?)\n",
		        err->msg);
		return 1;
	}
	return cli_fail(err);
}

static int restore_local(struct cli_ctx *ctx, const char *path)
{
	struct cr_restore_run run = {.path = path, .plugins_dir = ctx->cfg.plugins_dir};
	struct cd_lazy *lazy = NULL;
	_cleanup_free_ char *scratch = NULL;
	struct op_shared *op = NULL;
	struct cli_pid_file pf;
	double t0 = now_s();
	cd_err err = {0};
	pid_t pid;
	int r;

	if (cli_pid_file_open(&pf, cli_str(ctx, "pid-file"), &err) < 0)
		return cli_fail(&err);
	r = op_new(NULL, &op, &err);
	if (r == 0)
		r = cr_image_format(path, &run.format, &err);
	if (r == 0)
		r = cr_restore_scratch(path, run.format, NULL, &scratch, &err);
	if (r == 0) {
		run.scratch = scratch;
		run.op = op;
		run.lazy = cli_flag(ctx, "lazy") ? &lazy : NULL;
		r = engine_restore_local(ctx, &run, &pid, &err);
	}
	if (scratch)
		storage_remove(scratch, &(cd_err){0});
	/* the page files stay open in the server: the scratch may go */
	if (r == 0 && lazy)
		r = cr_lazy_spawn(TAKE_PTR(lazy), pid, STDERR_FILENO, NULL, 0, &err);
	if (r == 0 && (r = cli_pid_file_write(&pf, pid, &err)) < 0) {
		proc_signal_tree(pid, SIGKILL);
		wait_child(pid);
	}
	if (r < 0) {
		op_free(op);
		cli_pid_file_abandon(&pf);
		return local_fail(r, &err);
	}
	if (cli_flag(ctx, "profiling"))
		print_local_timings(op, (now_s() - t0) * 1e3);
	op_free(op);
	return wait_child(pid);
}

/* ---- through the daemon ---- */

/* attachable and --out were checked not to go together */
static json_t *restore_body(struct cli_ctx *ctx, bool attachable, cd_err *err)
{
	const char *out = cli_str(ctx, "out");
	_cleanup_free_ char *out_abs = NULL;
	struct winsize ws = {0};
	json_t *body;

	if (out && !(out_abs = cli_absolute_path(out))) {
		cd_err_sys(err, ENOMEM, "--out");
		return NULL;
	}
	ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
	body = json_pack("{s:b, s:b, s:i, s:i}", "attachable", attachable, "leave_stopped",
	                 cli_flag(ctx, "leave-stopped"), "rows", ws.ws_row, "cols", ws.ws_col);
	if (body && out_abs)
		json_object_set_new(body, "out", json_string(out_abs));
	if (body && cli_flag(ctx, "tcp-established"))
		json_object_set_new(body, "tcp_established", json_true());
	if (body && cli_flag(ctx, "tcp-close"))
		json_object_set_new(body, "tcp_close", json_true());
	if (body && cli_flag(ctx, "lazy"))
		json_object_set_new(body, "lazy", json_true());
	return body;
}

/* POST /v1/restore with the pid file opened first; the reply in *ret. */
static int restore_call(struct cli_ctx *ctx, json_t *body, json_t **ret, cd_err *err)
{
	bool restore_job = json_object_get(body, "jid") != NULL;
	struct cli_pid_file pf;
	const char *jid;
	json_t *job;
	int r;

	r = cli_pid_file_open(&pf, cli_str(ctx, "pid-file"), err);
	if (r == 0)
		r = progress_call(&ctx->cfg, "/v1/restore", body, ret, err);
	if (r < 0) {
		cli_pid_file_abandon(&pf);
		return r;
	}
	job = json_object_get(*ret, "job");
	jid = json_string_value(json_object_get(job, "jid"));
	r = cli_pid_file_write(&pf, (int)json_integer_value(json_object_get(job, "pid")), err);
	if (r < 0) {
		/* restore job keeps the job's record and checkpoints; a new job goes */
		cli_undo_job(&ctx->cfg, jid, restore_job);
		cli_pid_file_abandon(&pf);
		json_decref(*ret);
		*ret = NULL;
	}
	return r;
}

static int restore_daemon(struct cli_ctx *ctx, json_t *target)
{
	bool attach = cli_flag(ctx, "attach");
	bool attachable = attach || cli_flag(ctx, "attachable");
	json_t *body, *reply = NULL, *job;
	char jid[DB_JID_MAX];
	cd_err err = {0};
	bool detached;
	int code, r;

	if (attachable && cli_str(ctx, "out")) {
		json_decref(target);
		return cli_usage_fail(ctx,
		                      "--out cannot be combined with --attach or --attachable");
	}
	body = restore_body(ctx, attachable, &err);
	if (!body) {
		json_decref(target);
		return cli_fail(&err);
	}
	json_object_update(body, target);
	json_decref(target);
	r = restore_call(ctx, body, &reply, &err);
	json_decref(body);
	if (r < 0)
		return cli_fail(&err);
	job = json_object_get(reply, "job");
	snprintf(jid, sizeof(jid), "%s", json_string_value(json_object_get(job, "jid")));
	if (cli_flag(ctx, "profiling"))
		progress_print_timings(stdout, json_object_get(reply, "timings"));
	if (!attach)
		printf("Restored job %s (pid %d)\n", jid,
		       (int)json_integer_value(json_object_get(job, "pid")));
	json_decref(reply);
	if (!attach)
		return 0;
	if (client_attach(&ctx->cfg, jid, &code, &detached, &err) < 0)
		return cli_fail(&err);
	return detached ? 0 : code;
}

static int restore_process(struct cli_ctx *ctx)
{
	const char *path = cli_str(ctx, "path"), *jid = cli_str(ctx, "jid");
	_cleanup_free_ char *abs = NULL;
	cd_err err = {0};
	json_t *target;

	if (path && ctx->nargs == 1)
		return cli_usage_fail(ctx, "give the checkpoint once: --path PATH or PATH");
	if (!path && ctx->nargs == 1)
		path = ctx->args[0];
	if (!path)
		return cli_usage_fail(ctx, "restore process needs --path PATH of a checkpoint");
	abs = cli_absolute_path(path);
	if (!abs) {
		cd_err_sys(&err, ENOMEM, "--path");
		return cli_fail(&err);
	}
	if (cli_flag(ctx, "no-server")) {
		if (cli_flag(ctx, "attach") || cli_flag(ctx, "attachable"))
			return cli_usage_fail(
			    ctx,
			    "--no-server restores on this terminal: drop --attach/--attachable");
		if (jid)
			return cli_usage_fail(ctx, "--no-server makes no job: drop --jid");
		return restore_local(ctx, abs);
	}
	target = json_pack("{s:s}", "path", abs);
	if (jid)
		json_object_set_new(target, "new_jid", json_string(jid));
	return restore_daemon(ctx, target);
}

static int restore_job(struct cli_ctx *ctx)
{
	return restore_daemon(ctx, json_pack("{s:s}", "jid", ctx->args[0]));
}

#define RESTORE_COMMON_OPTS                                                                        \
	{"attach", 'a', CLI_BOOL, NULL, "attach the terminal; Ctrl-C detaches"},                   \
	    {"attachable", 0, CLI_BOOL, NULL, "keep the job's terminal for a later attach"},       \
	    {"out", 'o', CLI_STRING, "FILE", "write the job's output to FILE instead of the log"}, \
	    {"pid-file", 0, CLI_STRING, "FILE", "write the restored PID to FILE"},                 \
	    {"leave-stopped", 0, CLI_BOOL, NULL, "leave the tree stopped (SIGCONT resumes it)"},   \
	    {"tcp-established", 0, CLI_BOOL, NULL,                                                 \
	     "bring back TCP connections to peers outside the checkpoint"},                        \
	    {"tcp-close", 0, CLI_BOOL, NULL,                                                       \
	     "restore TCP connections to peers outside the checkpoint closed"},                    \
	    {"lazy", 0, CLI_BOOL, NULL, "run at once, memory loaded while it runs"},               \
	{                                                                                          \
		"profiling", 0, CLI_BOOL, NULL, "print where the time went"                        \
	}

static const struct cli_opt restore_process_opts[] = {
    {"path", 'p', CLI_STRING, "PATH", "the checkpoint (directory or archive, any compression)"},
    {"jid", 'j', CLI_STRING, "JID", "id of the new job (default: generated; not with --no-server)"},
    {"no-server", 0, CLI_BOOL, NULL,
     "restore as a child of the CLI on its stdio; its exit code is ours"},
    RESTORE_COMMON_OPTS,
    {0},
};

static const struct cli_opt restore_job_opts[] = {
    RESTORE_COMMON_OPTS,
    {0},
};

static const struct cli_cmd cmd_restore_process = {
    .name = "process",
    .summary = "Restore a checkpoint as a new job (or with --no-server, as our child)",
    .args_usage = "--path PATH | PATH",
    .min_args = 0,
    .max_args = 1,
    .opts = restore_process_opts,
    .run = restore_process,
};

static const struct cli_cmd cmd_restore_job = {
    .name = "job",
    .summary = "Restore an ended job from its newest checkpoint, keeping its id",
    .args_usage = "JID",
    .min_args = 1,
    .max_args = 1,
    .opts = restore_job_opts,
    .run = restore_job,
};

static const struct cli_cmd *const restore_subs[] = {&cmd_restore_process, &cmd_restore_job, NULL};

const struct cli_cmd cmd_restore = {
    .name = "restore",
    .summary = "Restore a process or a job from a checkpoint",
    .subs = restore_subs,
};
