/* job checkpoints JID (also checkpoints JID), checkpoint inspect|delete ID. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/table.h"
#include "shared/cleanup.h"

static int id_path(char *buf, size_t len, const char *prefix, const char *id, const char *suffix)
{
	_cleanup_free_ char *esc = client_escape(id);

	if (!esc)
		return -ENOMEM;
	snprintf(buf, len, "%s%s%s", prefix, esc, suffix);
	return 0;
}

static void print_checkpoints(json_t *list)
{
	size_t n = json_array_size(list), wid = 2, wtime = 4, wsize = 4, wparent = 6;
	char(*cells)[4][64] = calloc(n + 1, sizeof(*cells));

	if (!cells)
		return;
	for (size_t i = 0; i < n; i++) {
		json_t *cp = json_array_get(list, i);
		time_t t = (time_t)json_integer_value(json_object_get(cp, "time"));
		struct tm tm;

		snprintf(cells[i][0], 64, "%s", json_string_value(json_object_get(cp, "id")));
		strftime(cells[i][1], 64, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
		table_size(cells[i][2], 64, json_integer_value(json_object_get(cp, "size")));
		/* an incremental checkpoint holds the changes since its parent */
		const char *parent = json_string_value(json_object_get(cp, "parent"));
		snprintf(cells[i][3], 64, "%s", parent ? parent : "-");
		wparent = strlen(cells[i][3]) > wparent ? strlen(cells[i][3]) : wparent;
		wid = strlen(cells[i][0]) > wid ? strlen(cells[i][0]) : wid;
		wtime = strlen(cells[i][1]) > wtime ? strlen(cells[i][1]) : wtime;
		wsize = strlen(cells[i][2]) > wsize ? strlen(cells[i][2]) : wsize;
	}
	printf("%-*s  %-*s  %*s  %-*s  %s\n", (int)wid, "ID", (int)wtime, "TIME", (int)wsize,
	       "SIZE", (int)wparent, "PARENT", "PATH");
	for (size_t i = 0; i < n; i++)
		printf("%-*s  %-*s  %*s  %-*s  %s\n", (int)wid, cells[i][0], (int)wtime,
		       cells[i][1], (int)wsize, cells[i][2], (int)wparent, cells[i][3],
		       json_string_value(json_object_get(json_array_get(list, i), "path")));
	free(cells);
}

static int list_checkpoints(struct cli_ctx *ctx)
{
	json_t *reply = NULL;
	cd_err err = {0};
	char path[512];

	id_path(path, sizeof(path), "/v1/jobs/", ctx->args[0], "/checkpoints");
	if (client_call(&ctx->cfg, "GET", path, NULL, &reply, &err) < 0)
		return cli_fail(&err);
	print_checkpoints(json_object_get(reply, "checkpoints"));
	json_decref(reply);
	return 0;
}

static int inspect_checkpoint(struct cli_ctx *ctx)
{
	json_t *cp = NULL;
	cd_err err = {0};
	char path[512];

	id_path(path, sizeof(path), "/v1/checkpoints/", ctx->args[0], "");
	if (client_call(&ctx->cfg, "GET", path, NULL, &cp, &err) < 0)
		return cli_fail(&err);
	json_dumpf(cp, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(cp);
	return 0;
}

static int delete_checkpoints(struct cli_ctx *ctx)
{
	cd_err err = {0};
	int rc = 0;

	for (int i = 0; i < ctx->nargs; i++) {
		char path[512];

		id_path(path, sizeof(path), "/v1/checkpoints/", ctx->args[i], "");
		if (client_call(&ctx->cfg, "DELETE", path, NULL, NULL, &err) < 0)
			rc = cli_fail(&err);
		else
			printf("deleted checkpoint %s\n", ctx->args[i]);
	}
	return rc;
}

const struct cli_cmd cmd_job_checkpoints = {
    .name = "checkpoints",
    .summary = "List a job's checkpoints, newest first",
    .args_usage = "JID",
    .min_args = 1,
    .max_args = 1,
    .run = list_checkpoints,
};

const struct cli_cmd cmd_checkpoints = {
    .name = "checkpoints",
    .summary = "List a job's checkpoints (same as job checkpoints)",
    .args_usage = "JID",
    .min_args = 1,
    .max_args = 1,
    .run = list_checkpoints,
};

static const struct cli_cmd cmd_checkpoint_inspect = {
    .name = "inspect",
    .summary = "Print a checkpoint record as JSON",
    .args_usage = "ID",
    .min_args = 1,
    .max_args = 1,
    .run = inspect_checkpoint,
};

static const struct cli_cmd cmd_checkpoint_delete = {
    .name = "delete",
    .summary = "Delete checkpoints: their files and records",
    .args_usage = "ID...",
    .min_args = 1,
    .max_args = -1,
    .run = delete_checkpoints,
};

static const struct cli_cmd *const checkpoint_subs[] = {&cmd_checkpoint_inspect,
                                                        &cmd_checkpoint_delete, NULL};

const struct cli_cmd cmd_checkpoint = {
    .name = "checkpoint",
    .summary = "Inspect or delete checkpoints",
    .subs = checkpoint_subs,
};
