#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "cli/commands.h"
#include "shared/log.h"

extern char **environ;

static const struct cli_cmd *const root_subs[] = {
    &cmd_daemon, &cmd_check,   &cmd_run,        &cmd_manage,      &cmd_ps,
    &cmd_jobs,   &cmd_job,     &cmd_kill,       &cmd_delete,      &cmd_attach,
    &cmd_dump,   &cmd_restore, &cmd_checkpoint, &cmd_checkpoints, NULL,
};

const struct cli_cmd cli_root = {
    .name = "cedana",
    .summary = "cedana: run processes as jobs, and checkpoint and restore them",
    .subs = root_subs,
};

int cli_fail(const cd_err *err)
{
	fflush(stdout); /* keep the order of what was printed before */
	fprintf(stderr, "Error: %s\n", err->msg[0] ? err->msg : "unknown error");
	return 1;
}

int cli_usage_fail(const struct cli_ctx *ctx, const char *msg)
{
	char path[256];

	cli_cmd_path(ctx, path, sizeof(path));
	fflush(stdout);
	fprintf(stderr, "Error: %s\nRun '%s --help' for usage.\n", msg, path);
	return 2;
}

char *cli_absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	char *out = NULL;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&out, "%s/%s", cwd, path) < 0)
		return NULL;
	return out;
}

int cli_write_pid_file(const char *path, int pid, cd_err *err)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return cd_err_sys(err, errno, "pid file %s", path);
	fprintf(f, "%d\n", pid);
	if (fclose(f) != 0)
		return cd_err_sys(err, errno, "pid file %s", path);
	return 0;
}

/* Config: defaults, file, CEDANA_* environment, --config, then the global flags. */
static int load_config(struct cli_ctx *ctx, cd_err *err)
{
	struct config_sources src = {
	    .config_dir = cli_str(ctx, "config-dir"),
	    .json = cli_str(ctx, "config"),
	    .envp = environ,
	};
	const char *v;
	int r;

	r = config_load(&ctx->cfg, &src, err);
	if (r < 0)
		return r;
	if ((v = cli_str(ctx, "address")) && (r = config_set(&ctx->cfg, "address", v, err)) < 0)
		return cd_err_wrap(err, "--address");
	if ((v = cli_str(ctx, "protocol")) && (r = config_set(&ctx->cfg, "protocol", v, err)) < 0)
		return cd_err_wrap(err, "--protocol");
	log_set_level(log_level_parse(ctx->cfg.log_level));
	return 0;
}

int cli_main(int argc, char **argv)
{
	struct cli_ctx ctx;
	cd_err err = {0};
	int rc;

	if (cli_parse(&cli_root, argc, argv, &ctx, &err) < 0) {
		char path[256];

		/* point at the help of the command as far as it was parsed */
		cli_cmd_path(&ctx, path, sizeof(path));
		fprintf(stderr, "Error: %s\nRun '%s --help' for usage.\n", err.msg, path);
		cli_ctx_free(&ctx);
		return 2;
	}
	if (cli_flag(&ctx, "version")) {
		printf("cedana version %s\n", CEDANA_VERSION);
		rc = 0;
	} else if (ctx.help) {
		cli_print_help(&ctx, stdout);
		rc = 0;
	} else if (!ctx.cmd->run) {
		cli_print_help(&ctx, stderr);
		rc = 2;
	} else if (load_config(&ctx, &err) < 0) {
		rc = cli_fail(&err);
	} else {
		rc = ctx.cmd->run(&ctx);
	}
	cli_ctx_free(&ctx);
	return rc;
}
