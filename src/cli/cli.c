#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "shared/cleanup.h"
#include "shared/log.h"

extern char **environ;

static const struct cli_cmd *const root_subs[] = {
    &cmd_daemon,  &cmd_check,      &cmd_run,         &cmd_exec,   &cmd_manage,   &cmd_ps,
    &cmd_jobs,    &cmd_job,        &cmd_kill,        &cmd_delete, &cmd_attach,   &cmd_dump,
    &cmd_restore, &cmd_checkpoint, &cmd_checkpoints, &cmd_plugin, &cmd_features, NULL,
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

static int pid_file_open_fd(const char *path, bool *ret_created)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

	*ret_created = fd >= 0;
	/* O_NONBLOCK: a FIFO planted there must not hang us before fstat refuses it */
	if (fd < 0 && errno == EEXIST)
		fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	return fd;
}

int cli_pid_file_open(struct cli_pid_file *pf, const char *path, cd_err *err)
{
	struct stat st;

	*pf = (struct cli_pid_file){.path = path, .fd = -1};
	if (!path)
		return 0;
	pf->fd = pid_file_open_fd(path, &pf->created);
	if (pf->fd < 0 && errno == ELOOP)
		return cd_err_set(err, ELOOP, "pid file %s is a symbolic link: refused", path);
	if (pf->fd < 0)
		return cd_err_sys(err, errno, "pid file %s", path);
	if (fstat(pf->fd, &st) < 0) {
		cd_err_sys(err, errno, "pid file %s", path);
	} else if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		cd_err_set(err, EINVAL, "pid file %s: not a regular file of one link: refused",
		           path);
	} else {
		return 0;
	}
	cli_pid_file_abandon(pf);
	return -err->code;
}

int cli_pid_file_write(struct cli_pid_file *pf, int pid, cd_err *err)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%d\n", pid), fd = TAKE_FD(pf->fd);

	if (!pf->path)
		return 0;
	errno = 0;
	if (ftruncate(fd, 0) < 0 || write(fd, line, (size_t)n) != n) {
		int e = errno ? errno : EIO;

		close(fd);
		return cd_err_sys(err, e, "pid file %s", pf->path);
	}
	if (close(fd) < 0)
		return cd_err_sys(err, errno, "pid file %s", pf->path);
	return 0;
}

void cli_pid_file_abandon(struct cli_pid_file *pf)
{
	if (pf->fd >= 0)
		close(TAKE_FD(pf->fd));
	if (pf->created)
		unlink(pf->path);
	pf->created = false;
}

void cli_undo_job(const struct cd_config *cfg, const char *jid, bool keep_record)
{
	_cleanup_free_ char *esc = client_escape(jid);
	char path[512];
	json_t *body;

	if (!esc)
		return;
	snprintf(path, sizeof(path), "/v1/jobs/%s%s", esc, keep_record ? "/kill" : "");
	body = keep_record ? json_pack("{s:i}", "signal", SIGKILL) : NULL;
	client_call(cfg, keep_record ? "POST" : "DELETE", path, body, NULL, &(cd_err){0});
	json_decref(body);
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
