/* manage process PID: adopt a running process as a job. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/client.h"
#include "cli/commands.h"

static int manage_process(struct cli_ctx *ctx)
{
	const char *jid = cli_str(ctx, "jid");
	json_t *body, *job = NULL;
	cd_err err = {0};
	char *end;
	long pid;
	int r;

	if (cli_flag(ctx, "upcoming")) {
		cd_err_set(&err, EINVAL,
		           "--upcoming is for containers that do not exist yet; a process must "
		           "already run: give its PID");
		return cli_fail(&err);
	}
	/* no min_args in the table: --upcoming without a PID deserves the hint above */
	if (ctx->nargs < 1)
		return cli_usage_fail(ctx, "manage process needs the PID of a running process");
	pid = strtol(ctx->args[0], &end, 10);
	if (*end || pid <= 0 || pid > 0x7fffffff) {
		cd_err_set(&err, EINVAL, "invalid PID \"%s\"", ctx->args[0]);
		return cli_fail(&err);
	}
	body = json_pack("{s:i}", "pid", (int)pid);
	if (jid)
		json_object_set_new(body, "jid", json_string(jid));
	r = client_call(&ctx->cfg, "POST", "/v1/manage", body, &job, &err);
	json_decref(body);
	if (r < 0)
		return cli_fail(&err);
	printf("%s\n", json_string_value(json_object_get(job, "jid")));
	json_decref(job);
	return 0;
}

static const struct cli_opt manage_opts[] = {
    {"jid", 'j', CLI_STRING, "JID", "job id (default: a generated adjective_surnameN)"},
    {"upcoming", 0, CLI_BOOL, NULL, "wait for an upcoming container (refused for processes)"},
    {0},
};

static const struct cli_cmd cmd_manage_process = {
    .name = "process",
    .summary = "Manage a running process as a job",
    .args_usage = "PID",
    .min_args = 0,
    .max_args = 1,
    .opts = manage_opts,
    .run = manage_process,
};

static const struct cli_cmd *const manage_subs[] = {&cmd_manage_process, NULL};

const struct cli_cmd cmd_manage = {
    .name = "manage",
    .summary = "Manage an existing process as a job",
    .subs = manage_subs,
};
