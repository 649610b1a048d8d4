/* daemon start, daemon check, check. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "daemon/daemon.h"
#include "shared/log.h"

static int daemon_start(struct cli_ctx *ctx)
{
	const char *db = cli_str(ctx, "db");
	cd_err err = {0};

	if (db && config_set(&ctx->cfg, "db.path", db, &err) < 0)
		return cli_fail(&err);
	if (cli_flag(ctx, "init-config")) {
		if (config_write_defaults(ctx->cfg.config_dir, &err) < 0)
			return cli_fail(&err);
		log_info("wrote the default config to %s/%s", ctx->cfg.config_dir,
		         CONFIG_FILE_NAME);
	}
	if (daemon_run(&ctx->cfg, &err) < 0)
		return cli_fail(&err);
	return 0;
}

static int print_checks(json_t *checks)
{
	int failed = 0;
	json_t *c;
	size_t i;

	json_array_foreach(checks, i, c)
	{
		bool ok = json_is_true(json_object_get(c, "ok"));

		printf("%-4s %-16s %s\n", ok ? "ok" : "FAIL",
		       json_string_value(json_object_get(c, "name")),
		       json_string_value(json_object_get(c, "detail")));
		failed += !ok;
	}
	return failed;
}

static int check(struct cli_ctx *ctx)
{
	const char *path = cli_flag(ctx, "full") ? "/v1/health?full=1" : "/v1/health";
	json_t *reply = NULL;
	cd_err err = {0};
	int failed;

	if (client_call(&ctx->cfg, "GET", path, NULL, &reply, &err) < 0) {
		printf("%-4s %-16s %s\n", "FAIL", "socket", err.msg);
		cli_check_plugins(ctx);
		return 1;
	}
	printf("%-4s %-16s %s answers: daemon %s, pid %d\n", "ok", "socket", ctx->cfg.address,
	       json_string_value(json_object_get(reply, "version")),
	       (int)json_integer_value(json_object_get(reply, "pid")));
	failed = print_checks(json_object_get(reply, "checks"));
	json_decref(reply);
	failed += cli_check_plugins(ctx);
	if (failed) {
		fflush(stdout);
		fprintf(stderr, "Error: %d check%s failed\n", failed, failed == 1 ? "" : "s");
		return 1;
	}
	return 0;
}

static const struct cli_opt start_opts[] = {
    {"db", 0, CLI_STRING, "PATH", "job database (default: db.path, else /tmp/cedana.db)"},
    {"init-config", 0, CLI_BOOL, NULL, "write the default config.json to the config dir first"},
    {0},
};

static const struct cli_opt check_opts[] = {
    {"full", 0, CLI_BOOL, NULL, "also check the job log and checkpoint directories"},
    {0},
};

static const struct cli_cmd cmd_daemon_start = {
    .name = "start",
    .summary = "Start the daemon in the foreground (SIGTERM or Ctrl-C stops it; jobs run on)",
    .max_args = 0,
    .opts = start_opts,
    .run = daemon_start,
};

static const struct cli_cmd cmd_daemon_check = {
    .name = "check",
    .summary = "Check the daemon's health: socket, DB and kernel features",
    .max_args = 0,
    .opts = check_opts,
    .run = check,
};

static const struct cli_cmd *const daemon_subs[] = {&cmd_daemon_start, &cmd_daemon_check, NULL};

const struct cli_cmd cmd_daemon = {
    .name = "daemon",
    .summary = "Run or check the cedana daemon",
    .subs = daemon_subs,
};

const struct cli_cmd cmd_check = {
    .name = "check",
    .summary = "Check the daemon's health: socket, DB and kernel features",
    .max_args = 0,
    .opts = check_opts,
    .run = check,
};
