/* A plugin for the tests (docs/plugins.md): provides the feature "test".
 * With CEDANA_TEST_PLUGIN_LOG set, every hook appends "HOOK PID" to that
 * file and takes part (CD_PLUGIN_OK); without it, it skips everything, so
 * images made with it in the directory do not need it. The hook named by
 * CEDANA_TEST_PLUGIN_FAIL fails (only for pid $CEDANA_TEST_PLUGIN_FAIL_PID
 * when that is set); fds and mappings whose path contains
 * CEDANA_TEST_PLUGIN_CLAIM are claimed. checkpoint_devices writes
 * plugin-test.json into the image.
 *
 * Variants for the loader's tests: TP_NAME, TP_ABI, TP_NO_ENTRY. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/plugin.h"

#ifndef TP_NAME
#define TP_NAME "test"
#endif
#ifndef TP_ABI
#define TP_ABI CD_PLUGIN_ABI_VERSION
#endif

static const struct cd_plugin_host *host;

static int hook(const struct cd_plugin_ctx *ctx, const char *name)
{
	const char *log = getenv("CEDANA_TEST_PLUGIN_LOG");
	const char *fail = getenv("CEDANA_TEST_PLUGIN_FAIL");

	if (!log || !log[0])
		return CD_PLUGIN_SKIP;
	int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dprintf(fd, "%s %d%s\n", name, (int)ctx->pid,
		        ctx->failed          ? " failed"
		        : ctx->leave_running ? " leave-running"
		                             : "");
		close(fd);
	}
	const char *fail_pid = getenv("CEDANA_TEST_PLUGIN_FAIL_PID");
	if (fail && strcmp(fail, name) == 0 && (!fail_pid || atoi(fail_pid) == ctx->pid)) {
		snprintf(ctx->err, ctx->errlen, "%s failed as asked", name);
		return -5; /* -EIO */
	}
	return CD_PLUGIN_OK;
}

static int tp_init(const struct cd_plugin_host *h, char *err, size_t errlen)
{
	const char *fail = getenv("CEDANA_TEST_PLUGIN_FAIL");

	host = h;
	if (fail && strcmp(fail, "init") == 0) {
		snprintf(err, errlen, "init failed as asked");
		return -1;
	}
	return 0;
}

static enum cd_plugin_status tp_status(char *detail, size_t len)
{
	snprintf(detail, len, "test plugin ready");
	return CD_PLUGIN_READY;
}

static int tp_pause(const struct cd_plugin_ctx *ctx)
{
	return hook(ctx, "pause_devices");
}

static int tp_checkpoint(const struct cd_plugin_ctx *ctx)
{
	char path[4096];
	int r = hook(ctx, "checkpoint_devices");

	if (r != CD_PLUGIN_OK)
		return r;
	snprintf(path, sizeof(path), "%s/plugin-test.json", ctx->image_dir);
	/* 0644: the engine makes it private like the rest of the image */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(ctx->err, ctx->errlen, "%s: cannot write", path);
		return -5;
	}
	dprintf(fd, "{\"test\": true, \"pid\": %d}\n", (int)ctx->pid);
	close(fd);
	return CD_PLUGIN_OK;
}

static int tp_resume(const struct cd_plugin_ctx *ctx)
{
	return hook(ctx, "resume_devices");
}

static int tp_prepare(const struct cd_plugin_ctx *ctx)
{
	return hook(ctx, "restore_prepare");
}

/* Lets the main thread run and stops it again, as the gpu plugin does with
 * the driver's restore thread. */
static int tp_restore(const struct cd_plugin_ctx *ctx)
{
	int r = hook(ctx, "restore_devices");

	if (r == CD_PLUGIN_OK && getenv("CEDANA_TEST_PLUGIN_THREAD_RUN")) {
		if (ctx->host->thread_run(ctx->host->host_ctx, ctx->pid, ctx->err, ctx->errlen) < 0)
			return -5;
		usleep(10000);
		if (ctx->host->thread_stop(ctx->host->host_ctx, ctx->pid, ctx->err, ctx->errlen) <
		    0)
			return -5;
	}
	return r;
}

static int tp_claim(const struct cd_plugin_ctx *ctx, const struct cd_plugin_object *obj)
{
	const char *claim = getenv("CEDANA_TEST_PLUGIN_CLAIM");

	if (!claim || !claim[0] || !strstr(obj->path, claim))
		return CD_PLUGIN_SKIP;
	return hook(ctx, obj->fd >= 0 ? "claim_fd" : "claim_mapping");
}

static const char *const tp_features[] = {"test", NULL};

static const struct cd_plugin tp = {
    .abi_version = TP_ABI,
    .name = TP_NAME,
    .version = "1.0.0",
    .description = "plugin for cedana's tests",
    .features = tp_features,
    .init = tp_init,
    .status = tp_status,
    .pause_devices = tp_pause,
    .checkpoint_devices = tp_checkpoint,
    .resume_devices = tp_resume,
    .restore_prepare = tp_prepare,
    .restore_devices = tp_restore,
    .claim_fd = tp_claim,
    .claim_mapping = tp_claim,
};

#ifndef TP_NO_ENTRY
const struct cd_plugin *cedana_plugin_entry(void);
const struct cd_plugin *cedana_plugin_entry(void)
{
	return &tp;
}
#else
const struct cd_plugin *tp_table(void);
const struct cd_plugin *tp_table(void)
{
	return &tp;
}
#endif
