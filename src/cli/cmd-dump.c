/* dump process PID | dump job JID: a checkpoint through the daemon. The
 * last word of the last line printed is the checkpoint's path. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/table.h"
#include "shared/cleanup.h"
#include "storage/storage.h"

static char *absolute_dir(const char *dir)
{
	char cwd[PATH_MAX];
	char *out = NULL;

	if (dir[0] == '/')
		return strdup(dir);
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&out, "%s/%s", cwd, dir) < 0)
		return NULL;
	return out;
}

/* Flags into the request body; the config supplies the defaults. */
static json_t *dump_body(struct cli_ctx *ctx, cd_err *err)
{
	const char *dir = cli_str(ctx, "dir"), *name = cli_str(ctx, "name");
	const char *comp = cli_str(ctx, "compression");
	_cleanup_free_ char *abs = NULL;
	storage_compression c;
	json_t *body;

	if (!dir)
		dir = ctx->cfg.checkpoint_dir && ctx->cfg.checkpoint_dir[0]
		          ? ctx->cfg.checkpoint_dir
		          : "/tmp";
	if (!comp)
		comp = ctx->cfg.checkpoint_compression && ctx->cfg.checkpoint_compression[0]
		           ? ctx->cfg.checkpoint_compression
		           : "none";
	/* refused here too, so a typo costs no round trip and creates nothing */
	if (storage_compression_parse(comp, &c, err) < 0)
		return NULL;
	abs = absolute_dir(dir);
	if (!abs) {
		cd_err_sys(err, ENOMEM, "--dir");
		return NULL;
	}
	body =
	    json_pack("{s:s, s:s, s:b, s:b, s:b}", "dir", abs, "compression", comp, "leave_running",
	              cli_flag(ctx, "leave-running"), "shell_job", cli_flag(ctx, "shell-job"),
	              "external_stdio", cli_flag(ctx, "external-stdio"));
	if (body && cli_flag(ctx, "tcp-established"))
		json_object_set_new(body, "tcp_established", json_true());
	if (body && cli_flag(ctx, "tcp-close"))
		json_object_set_new(body, "tcp_close", json_true());
	if (body && name)
		json_object_set_new(body, "name", json_string(name));
	const char *streams = cli_str(ctx, "streams");
	if (!streams)
		streams = ctx->cfg.checkpoint_streams;
	if (body && streams && strcmp(streams, "1")) {
		char *end;
		long n = strtol(streams, &end, 10);
		if (*end || n < 1 || n > 16) {
			json_decref(body);
			cd_err_set(err, EINVAL, "--streams %s: expected 1..16", streams);
			return NULL;
		}
		json_object_set_new(body, "streams", json_integer(n));
	}
	if (body && cli_flag(ctx, "incremental"))
		json_object_set_new(body, "incremental", json_true());
	return body;
}

static int dump(struct cli_ctx *ctx, const char *type, json_t *target)
{
	json_t *body, *reply = NULL;
	cd_err err = {0};
	char size[32];
	int r;

	body = dump_body(ctx, &err);
	if (!body) {
		json_decref(target);
		return cli_fail(&err);
	}
	json_object_update(body, target);
	json_object_set_new(body, "type", json_string(type));
	json_decref(target);
	r = progress_call(&ctx->cfg, "/v1/dump", body, &reply, &err);
	json_decref(body);
	if (r < 0)
		return cli_fail(&err);
	if (cli_flag(ctx, "profiling"))
		progress_print_timings(stdout, json_object_get(reply, "timings"));
	table_size(size, sizeof(size), json_integer_value(json_object_get(reply, "size")));
	const char *note = json_string_value(json_object_get(reply, "note"));
	const char *parent =
	    json_string_value(json_object_get(json_object_get(reply, "checkpoint"), "parent"));
	if (note)
		fprintf(stderr, "note: %s\n", note);
	if (parent)
		printf("Incremental: the changes since checkpoint %s\n", parent);
	json_int_t streams = json_integer_value(json_object_get(reply, "streams"));
	if (streams > 1)
		printf("Dumped %s %s (%s, %s in %d streams) to %s\n", type, ctx->args[0], size,
		       json_string_value(json_object_get(reply, "page_codec")), (int)streams,
		       json_string_value(json_object_get(reply, "path")));
	else
		printf("Dumped %s %s (%s, %s) to %s\n", type, ctx->args[0], size,
		       json_string_value(json_object_get(reply, "compression")),
		       json_string_value(json_object_get(reply, "path")));
	json_decref(reply);
	return 0;
}

static int dump_process(struct cli_ctx *ctx)
{
	cd_err err = {0};
	char *end;
	long pid = strtol(ctx->args[0], &end, 10);

	if (*end || pid <= 0 || pid > 0x7fffffff) {
		cd_err_set(&err, EINVAL, "invalid PID \"%s\"", ctx->args[0]);
		return cli_fail(&err);
	}
	return dump(ctx, "process", json_pack("{s:i}", "pid", (int)pid));
}

static int dump_job(struct cli_ctx *ctx)
{
	return dump(ctx, "job", json_pack("{s:s}", "jid", ctx->args[0]));
}

static const struct cli_opt dump_opts[] = {
    {"dir", 'd', CLI_STRING, "DIR", "parent directory (default: checkpoint.dir, else /tmp)"},
    {"name", 0, CLI_STRING, "NAME",
     "file name in DIR, suffix added (default: dump-TYPE-ID-UNIXTIME)"},
    {"compression", 0, CLI_STRING, "C",
     "none|tar|gzip|lz4|zlib|zstd (default: checkpoint.compression, else none)"},
    {"streams", 0, CLI_STRING, "N",
     "page data over N files written and read in parallel, each compressed with lz4 or zstd "
     "(--compression); 1..16, default checkpoint.streams, else 1"},
    {"leave-running", 0, CLI_BOOL, NULL, "keep the tree running after the dump (default: kill it)"},
    {"shell-job", 0, CLI_BOOL, NULL, "a job on its shell's terminal: restored, it has none"},
    {"external-stdio", 0, CLI_BOOL, NULL,
     "stdin/stdout/stderr are not saved: the restore gives new ones (its own, a log, --out)"},
    {"tcp-established", 0, CLI_BOOL, NULL,
     "keep TCP connections to peers outside the tree (locked until the restore)"},
    {"tcp-close", 0, CLI_BOOL, NULL, "record TCP connections to peers outside the tree as closed"},
    {"profiling", 0, CLI_BOOL, NULL, "print where the time went"},
    {"incremental", 0, CLI_BOOL, NULL,
     "job, with --leave-running: write only the pages changed since the job's last "
     "--incremental dump (its parent); the first is full"},
    {0},
};

static const struct cli_cmd cmd_dump_process = {
    .name = "process",
    .summary = "Checkpoint a process and its descendants (killed unless --leave-running)",
    .args_usage = "PID",
    .min_args = 1,
    .max_args = 1,
    .opts = dump_opts,
    .run = dump_process,
};

static const struct cli_cmd cmd_dump_job = {
    .name = "job",
    .summary = "Checkpoint a running job and record it (halts it unless --leave-running)",
    .args_usage = "JID",
    .min_args = 1,
    .max_args = 1,
    .opts = dump_opts,
    .run = dump_job,
};

static const struct cli_cmd *const dump_subs[] = {&cmd_dump_process, &cmd_dump_job, NULL};

const struct cli_cmd cmd_dump = {
    .name = "dump",
    .summary = "Checkpoint a process or a job",
    .subs = dump_subs,
};
