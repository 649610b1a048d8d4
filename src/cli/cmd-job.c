/* ps, jobs, job list|inspect|kill|delete|attach, kill, delete, attach PID. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/table.h"
#include "shared/cleanup.h"

static int job_path(char *buf, size_t len, const char *jid, const char *action)
{
	_cleanup_free_ char *esc = client_escape(jid);

	if (!esc)
		return -ENOMEM;
	snprintf(buf, len, "/v1/jobs/%s%s%s", esc, action ? "/" : "", action ? action : "");
	return 0;
}

static int list(struct cli_ctx *ctx)
{
	json_t *reply = NULL;
	cd_err err = {0};

	if (client_call(&ctx->cfg, "GET", "/v1/jobs", NULL, &reply, &err) < 0)
		return cli_fail(&err);
	table_print_jobs(stdout, json_object_get(reply, "jobs"), time(NULL));
	json_decref(reply);
	return 0;
}

static int inspect(struct cli_ctx *ctx)
{
	json_t *job = NULL;
	cd_err err = {0};
	char path[512];

	job_path(path, sizeof(path), ctx->args[0], NULL);
	if (client_call(&ctx->cfg, "GET", path, NULL, &job, &err) < 0)
		return cli_fail(&err);
	json_dumpf(job, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(job);
	return 0;
}

/* SIGTERM, TERM, term or 15. */
static int parse_signal(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && *end == '\0')
		return n > 0 && n < NSIG ? (int)n : -1;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (int i = 1; i < NSIG; i++) {
		const char *abbrev = sigabbrev_np(i);

		if (abbrev && strcasecmp(abbrev, s) == 0)
			return i;
	}
	return -1;
}

static int kill_jobs(struct cli_ctx *ctx)
{
	const char *sig_name = cli_str(ctx, "signal");
	int sig = sig_name ? parse_signal(sig_name) : SIGKILL;
	cd_err err = {0};
	int rc = 0;

	if (sig < 0) {
		cd_err_set(&err, EINVAL, "unknown signal \"%s\"", sig_name);
		return cli_fail(&err);
	}
	for (int i = 0; i < ctx->nargs; i++) {
		json_t *body = json_pack("{s:i}", "signal", sig);
		char path[512];

		job_path(path, sizeof(path), ctx->args[i], "kill");
		if (client_call(&ctx->cfg, "POST", path, body, NULL, &err) < 0)
			rc = cli_fail(&err);
		else
			printf("killed %s (%s)\n", ctx->args[i], sigabbrev_np(sig));
		json_decref(body);
	}
	return rc;
}

static int delete_jobs(struct cli_ctx *ctx)
{
	cd_err err = {0};
	int rc = 0;

	for (int i = 0; i < ctx->nargs; i++) {
		char path[512];

		job_path(path, sizeof(path), ctx->args[i], NULL);
		if (client_call(&ctx->cfg, "DELETE", path, NULL, NULL, &err) < 0)
			rc = cli_fail(&err);
		else
			printf("deleted %s\n", ctx->args[i]);
	}
	return rc;
}

static int attach_jid(struct cli_ctx *ctx, const char *jid)
{
	cd_err err = {0};
	bool detached;
	int code;

	if (client_attach(&ctx->cfg, jid, &code, &detached, &err) < 0)
		return cli_fail(&err);
	return detached ? 0 : code;
}

static int attach_job(struct cli_ctx *ctx)
{
	return attach_jid(ctx, ctx->args[0]);
}

/* attach PID: the job whose process that is. */
static int attach_pid(struct cli_ctx *ctx)
{
	char *end, path[64], jid[128];
	long pid = strtol(ctx->args[0], &end, 10);
	json_t *reply = NULL, *job;
	cd_err err = {0};

	if (*end || pid <= 0) {
		cd_err_set(&err, EINVAL, "invalid PID \"%s\"", ctx->args[0]);
		return cli_fail(&err);
	}
	snprintf(path, sizeof(path), "/v1/jobs?pid=%ld", pid);
	if (client_call(&ctx->cfg, "GET", path, NULL, &reply, &err) < 0)
		return cli_fail(&err);
	job = json_array_get(json_object_get(reply, "jobs"), 0);
	if (!job) {
		json_decref(reply);
		cd_err_set(&err, ENOENT, "no job with PID %ld", pid);
		return cli_fail(&err);
	}
	snprintf(jid, sizeof(jid), "%s", json_string_value(json_object_get(job, "jid")));
	json_decref(reply);
	return attach_jid(ctx, jid);
}

static const struct cli_opt kill_opts[] = {
    {"signal", 's', CLI_STRING, "SIG", "signal to send (name or number; default KILL)"},
    {0},
};

static const struct cli_cmd cmd_job_list = {
    .name = "list",
    .summary = "List jobs",
    .max_args = 0,
    .run = list,
};

static const struct cli_cmd cmd_job_inspect = {
    .name = "inspect",
    .summary = "Print a job as JSON",
    .args_usage = "JID",
    .min_args = 1,
    .max_args = 1,
    .run = inspect,
};

static const struct cli_cmd cmd_job_kill = {
    .name = "kill",
    .summary = "Send a signal to jobs (default KILL)",
    .args_usage = "JID...",
    .min_args = 1,
    .max_args = -1,
    .opts = kill_opts,
    .run = kill_jobs,
};

static const struct cli_cmd cmd_job_delete = {
    .name = "delete",
    .summary = "Delete jobs, killing live ones first",
    .args_usage = "JID...",
    .min_args = 1,
    .max_args = -1,
    .run = delete_jobs,
};

static const struct cli_cmd cmd_job_attach = {
    .name = "attach",
    .summary = "Attach the terminal to an attachable job (Ctrl-C detaches)",
    .args_usage = "JID",
    .min_args = 1,
    .max_args = 1,
    .run = attach_job,
};

static const struct cli_cmd *const job_subs[] = {
    &cmd_job_list,   &cmd_job_inspect,     &cmd_job_kill, &cmd_job_delete,
    &cmd_job_attach, &cmd_job_checkpoints, NULL,
};

const struct cli_cmd cmd_job = {
    .name = "job",
    .summary = "Manage jobs",
    .subs = job_subs,
};

const struct cli_cmd cmd_ps = {
    .name = "ps",
    .summary = "List jobs (same as job list)",
    .max_args = 0,
    .run = list,
};

const struct cli_cmd cmd_jobs = {
    .name = "jobs",
    .summary = "List jobs (same as job list)",
    .max_args = 0,
    .run = list,
};

const struct cli_cmd cmd_kill = {
    .name = "kill",
    .summary = "Send a signal to jobs (same as job kill)",
    .args_usage = "JID...",
    .min_args = 1,
    .max_args = -1,
    .opts = kill_opts,
    .run = kill_jobs,
};

const struct cli_cmd cmd_delete = {
    .name = "delete",
    .summary = "Delete jobs (same as job delete)",
    .args_usage = "JID...",
    .min_args = 1,
    .max_args = -1,
    .run = delete_jobs,
};

const struct cli_cmd cmd_attach = {
    .name = "attach",
    .summary = "Attach the terminal to the job of a process (Ctrl-C detaches)",
    .args_usage = "PID",
    .min_args = 1,
    .max_args = 1,
    .run = attach_pid,
};
