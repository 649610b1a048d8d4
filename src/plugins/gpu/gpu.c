/* The gpu plugin: checkpoint/restore of CUDA processes through the driver's
 * own checkpoint API (docs/gpu.md).
 *
 * Dump: pause_devices locks a CUDA task (no new CUDA work starts) and
 * checkpoints it, which moves its whole device state into its own host
 * memory and closes every /dev/nvidia* fd and mapping; the engine then
 * dumps a plain process. resume_devices undoes that when the task runs on
 * (--leave-running, or a failed dump). Restore: the engine brings the tree
 * back stopped; restore_devices lets the driver's restore thread run, has
 * the driver put the device state back, unlocks, and stops that thread
 * again before the engine releases the tree.
 *
 * State lives in this process between the hooks of one dump: the tasks we
 * paused and what we did to each, so that resume puts each back exactly as
 * we found it (a task someone else had locked stays locked). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/gpu/cuda.h"
#include "plugins/plugin.h"

#define GPU_JSON  "plugin-gpu.json"
#define MAX_TASKS 256

struct gpu_task {
	pid_t pid;
	int initial_state; /* enum cuda_proc_state at pause */
	bool locked;       /* we locked it: unlock at resume */
	bool checkpointed; /* we checkpointed it: restore at resume */
	int64_t device_bytes;
	const char *device_source; /* "nvml", "rss" or "none" */
};

static const struct cd_plugin_host *g_host;
static struct cuda_api g_api;
static enum cuda_open_result g_open = CUDA_OPEN_NO_DRIVER;
static bool g_opened;
static char g_why[256];
static struct gpu_task g_tasks[MAX_TASKS];
static size_t g_ntasks;

__attribute__((format(printf, 2, 3))) static void gpu_log(enum cd_plugin_log_level lvl,
                                                          const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (!g_host || !g_host->log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	g_host->log(lvl, "gpu", "%s", buf);
}

__attribute__((format(printf, 2, 3))) static int fail(const struct cd_plugin_ctx *ctx,
                                                      const char *fmt, ...)
{
	va_list ap;

	if (ctx->err && ctx->errlen) {
		va_start(ap, fmt);
		vsnprintf(ctx->err, ctx->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* libcuda is loaded once, on first need, and stays until fini. */
static enum cuda_open_result api_get(void)
{
	if (!g_opened) {
		g_open = cuda_api_open(&g_api, g_why, sizeof(g_why));
		g_opened = true;
	}
	return g_open;
}

static const char *res(int r)
{
	static char buf[96];

	return cuda_result_str(&g_api, r, buf, sizeof(buf));
}

static const char *state_name(int s)
{
	switch (s) {
	case CUDA_PROC_RUNNING:
		return "running";
	case CUDA_PROC_LOCKED:
		return "locked";
	case CUDA_PROC_CHECKPOINTED:
		return "checkpointed";
	case CUDA_PROC_FAILED:
		return "failed";
	}
	return "unknown";
}

static struct gpu_task *task_find(pid_t pid)
{
	for (size_t i = 0; i < g_ntasks; i++)
		if (g_tasks[i].pid == pid)
			return &g_tasks[i];
	return NULL;
}

static void task_forget(struct gpu_task *t)
{
	*t = g_tasks[--g_ntasks];
}

/* --- detection ---------------------------------------------------------- */

static bool fds_use_nvidia(pid_t pid)
{
	char dir[64], path[PATH_MAX + 64], link[PATH_MAX];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		found = strncmp(link, "/dev/nvidia", 11) == 0;
	}
	closedir(d);
	return found;
}

static bool maps_use_nvidia(pid_t pid)
{
	char path[64], line[PATH_MAX + 128];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, " /dev/nvidia") != NULL;
	fclose(f);
	return found;
}

/* A CUDA task holds /dev/nvidia* fds or mappings; a checkpointed one holds
 * neither, but the driver still knows it. */
static bool is_cuda_task(pid_t pid, int *state)
{
	bool uses = fds_use_nvidia(pid) || maps_use_nvidia(pid);

	*state = -1;
	if (api_get() == CUDA_OPEN_OK && g_api.get_state(pid, state) != 0)
		*state = -1;
	return uses || *state >= 0;
}

static int64_t rss_bytes(pid_t pid)
{
	char path[64], line[256];
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

/* --- plugin-gpu.json ----------------------------------------------------- */

static json_t *tasks_json(void)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < g_ntasks; i++) {
		const struct gpu_task *t = &g_tasks[i];

		json_array_append_new(
		    arr,
		    json_pack("{s:i, s:s, s:b, s:b, s:I, s:s}", "pid", (int)t->pid, "initial_state",
		              state_name(t->initial_state), "locked", t->locked, "checkpointed",
		              t->checkpointed, "device_memory_bytes", (json_int_t)t->device_bytes,
		              "device_memory_source", t->device_source));
	}
	return arr;
}

/* Rewritten whole after each task: what the image holds of the devices, for
 * `checkpoint inspect` and for restore to know which tasks had CUDA state. */
static int write_json(const struct cd_plugin_ctx *ctx)
{
	char path[PATH_MAX];
	int version = 0, fd, r;
	json_t *root;

	if (!ctx->image_dir)
		return 0;
	g_api.driver_get_version(&version);
	root = json_pack("{s:s, s:i, s:o}", "plugin", "gpu", "cuda_driver_version", version,
	                 "tasks", tasks_json());
	if (!root)
		return fail(ctx, "gpu: out of memory");
	snprintf(path, sizeof(path), "%s/%s", ctx->image_dir, GPU_JSON);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		json_decref(root);
		return fail(ctx, "gpu: %s: %s", path, strerror(errno));
	}
	/* An existing file keeps its mode through O_TRUNC: the image is
	 * private whatever was there. */
	r = fchmod(fd, 0600) < 0 || json_dumpfd(root, fd, JSON_INDENT(2)) < 0 ? -1 : 0;
	json_decref(root);
	if (close(fd) < 0 || r < 0)
		return fail(ctx, "gpu: writing %s failed", path);
	return 0;
}

/* Whether the image's plugin-gpu.json lists pid. */
static bool json_lists(const char *image_dir, pid_t pid)
{
	char path[PATH_MAX];
	json_t *root, *tasks, *t;
	bool found = false;
	size_t i;

	if (!image_dir)
		return false;
	snprintf(path, sizeof(path), "%s/%s", image_dir, GPU_JSON);
	root = json_load_file(path, 0, NULL);
	if (!root)
		return false;
	tasks = json_object_get(root, "tasks");
	json_array_foreach(tasks, i, t)
	{
		if (json_integer_value(json_object_get(t, "pid")) == pid)
			found = true;
	}
	json_decref(root);
	return found;
}

/* --- dump ---------------------------------------------------------------- */

/* Puts t back as pause found it; errors are logged, the first returned. */
static int undo(struct gpu_task *t, char *err, size_t errlen)
{
	struct cuda_ckpt_args args = {0};
	int r, ret = 0;

	if (t->checkpointed) {
		r = g_api.restore(t->pid, &args);
		if (r != 0) {
			snprintf(err, errlen, "gpu: pid %d: cuCheckpointProcessRestore: %s",
			         (int)t->pid, res(r));
			gpu_log(CD_PLUGIN_LOG_ERROR, "%s", err);
			return -1; /* still checkpointed: an unlock cannot succeed */
		}
		t->checkpointed = false;
	}
	if (t->locked) {
		r = g_api.unlock(t->pid, &args);
		if (r != 0) {
			snprintf(err, errlen, "gpu: pid %d: cuCheckpointProcessUnlock: %s",
			         (int)t->pid, res(r));
			gpu_log(CD_PLUGIN_LOG_ERROR, "%s", err);
			ret = -1;
		} else {
			t->locked = false;
		}
	}
	return ret;
}

static int pause_fail(const struct cd_plugin_ctx *ctx, struct gpu_task *t)
{
	char ignored[256];

	undo(t, ignored, sizeof(ignored));
	task_forget(t);
	return -1;
}

static void measure_before(struct gpu_task *t, int64_t *rss)
{
	t->device_bytes = nvml_process_memory(t->pid);
	t->device_source = t->device_bytes >= 0 ? "nvml" : "none";
	*rss = rss_bytes(t->pid);
}

/* Without NVML the device state that came into host memory is the best
 * measure of it. */
static void measure_after(struct gpu_task *t, int64_t rss_before)
{
	int64_t rss_after = rss_bytes(t->pid);

	if (t->device_bytes >= 0 || rss_before < 0 || rss_after < 0)
		return;
	t->device_bytes = rss_after > rss_before ? rss_after - rss_before : 0;
	t->device_source = "rss";
}

static int lock_and_checkpoint(const struct cd_plugin_ctx *ctx, struct gpu_task *t)
{
	struct cuda_ckpt_args args = {.timeout_ms = ctx->timeout_ms};
	int64_t rss;
	int r;

	measure_before(t, &rss);
	if (t->initial_state == CUDA_PROC_RUNNING) {
		r = g_api.lock(t->pid, &args);
		if (r != 0) {
			/* A lock that timed out may have half happened. */
			int s = -1;
			if (g_api.get_state(t->pid, &s) == 0 && s == CUDA_PROC_LOCKED)
				t->locked = true;
			pause_fail(ctx, t);
			return fail(ctx, "gpu: pid %d: cuCheckpointProcessLock: %s", (int)ctx->pid,
			            res(r));
		}
		t->locked = true;
	}
	memset(&args, 0, sizeof(args));
	r = g_api.checkpoint(t->pid, &args);
	if (r != 0) {
		int s = -1;
		if (g_api.get_state(t->pid, &s) == 0 && s == CUDA_PROC_CHECKPOINTED)
			t->checkpointed = true;
		pause_fail(ctx, t);
		return fail(ctx, "gpu: pid %d: cuCheckpointProcessCheckpoint: %s", (int)ctx->pid,
		            res(r));
	}
	t->checkpointed = true;
	measure_after(t, rss);
	return 0;
}

static int pause_devices(const struct cd_plugin_ctx *ctx)
{
	struct gpu_task *t;
	int state;

	if (!is_cuda_task(ctx->pid, &state))
		return CD_PLUGIN_SKIP;
	if (api_get() != CUDA_OPEN_OK)
		return fail(ctx, "gpu: pid %d uses the GPU, but %s", (int)ctx->pid, g_why);
	if (state < 0) {
		/* /dev/nvidia* open, yet no CUDA context the driver can checkpoint
		 * (NVML only, or CUDA not initialised yet): the engine refuses the
		 * device fds by name. */
		gpu_log(CD_PLUGIN_LOG_WARN, "pid %d holds /dev/nvidia* but has no CUDA state",
		        (int)ctx->pid);
		return CD_PLUGIN_SKIP;
	}
	if (state == CUDA_PROC_FAILED)
		return fail(ctx, "gpu: pid %d: the driver reports a failed checkpoint state",
		            (int)ctx->pid);
	if (task_find(ctx->pid))
		return fail(ctx, "gpu: pid %d paused twice", (int)ctx->pid);
	if (g_ntasks == MAX_TASKS)
		return fail(ctx, "gpu: more than %d CUDA tasks in one dump", MAX_TASKS);
	t = &g_tasks[g_ntasks++];
	*t = (struct gpu_task){
	    .pid = ctx->pid, .initial_state = state, .device_bytes = -1, .device_source = "none"};
	/* Someone else's checkpoint stays theirs: the state is already in host
	 * memory and resume leaves it so. */
	if (state != CUDA_PROC_CHECKPOINTED && lock_and_checkpoint(ctx, t) < 0)
		return -1;
	if (write_json(ctx) < 0)
		return pause_fail(ctx, t);
	gpu_log(CD_PLUGIN_LOG_INFO, "pid %d: %s, device state checkpointed (%lld bytes, %s)",
	        (int)ctx->pid, state_name(state), (long long)t->device_bytes, t->device_source);
	return CD_PLUGIN_OK;
}

static int gpu_checkpoint_devices(const struct cd_plugin_ctx *ctx)
{
	return CD_PLUGIN_SKIP; /* pause_devices has done it before the freeze */
}

static int resume_devices(const struct cd_plugin_ctx *ctx)
{
	struct gpu_task *t = task_find(ctx->pid);
	int r;

	if (!t)
		return CD_PLUGIN_SKIP;
	r = undo(t, ctx->err, ctx->errlen);
	task_forget(t);
	return r < 0 ? -1 : CD_PLUGIN_OK;
}

/* --- restore ------------------------------------------------------------- */

static int restore_and_unlock(const struct cd_plugin_ctx *ctx)
{
	struct cuda_ckpt_args args = {0};
	int r;

	r = g_api.restore(ctx->pid, &args);
	if (r != 0)
		return fail(ctx, "gpu: pid %d: cuCheckpointProcessRestore: %s", (int)ctx->pid,
		            res(r));
	r = g_api.unlock(ctx->pid, &args);
	if (r != 0)
		return fail(ctx, "gpu: pid %d: cuCheckpointProcessUnlock: %s", (int)ctx->pid,
		            res(r));
	return 0;
}

/* The driver does the restore in a helper thread of the task itself (named
 * "cuda…"); the engine holds every thread stopped, so that one alone must
 * run while the program's threads stay stopped until the device state is
 * back, then stop again before the engine releases the tree. */
static int restore_devices(const struct cd_plugin_ctx *ctx)
{
	const struct cd_plugin_host *host = ctx->host ? ctx->host : g_host;
	char serr[256] = "";
	int state = -1, tid = 0, r, ret;

	/* The image says which tasks had CUDA state; a task it does not list
	 * is one only if the driver holds a checkpoint of it. */
	if (!json_lists(ctx->image_dir, ctx->pid)) {
		if (api_get() != CUDA_OPEN_OK || g_api.get_state(ctx->pid, &state) != 0 ||
		    state != CUDA_PROC_CHECKPOINTED)
			return CD_PLUGIN_SKIP;
	} else if (api_get() != CUDA_OPEN_OK) {
		return fail(ctx, "gpu: pid %d had CUDA state, but %s", (int)ctx->pid, g_why);
	}
	r = g_api.get_restore_tid(ctx->pid, &tid);
	if (r != 0)
		return fail(ctx, "gpu: pid %d: cuCheckpointProcessGetRestoreThreadId: %s",
		            (int)ctx->pid, res(r));
	if (!host || !host->thread_run || !host->thread_stop)
		return fail(ctx, "gpu: pid %d: the host cannot run the restore thread",
		            (int)ctx->pid);
	if (host->thread_run(host->host_ctx, tid, serr, sizeof(serr)) < 0)
		return fail(ctx, "gpu: pid %d: running restore thread %d: %s", (int)ctx->pid, tid,
		            serr);
	ret = restore_and_unlock(ctx);
	if (host->thread_stop(host->host_ctx, tid, serr, sizeof(serr)) < 0 && ret == 0)
		ret = fail(ctx, "gpu: pid %d: stopping restore thread %d: %s", (int)ctx->pid, tid,
		           serr);
	if (ret == 0)
		gpu_log(CD_PLUGIN_LOG_INFO, "pid %d: device state restored", (int)ctx->pid);
	return ret < 0 ? -1 : CD_PLUGIN_OK;
}

/* The hooks keep state between calls (the tasks paused): one at a time,
 * should a host ever call them from several threads. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

#define LOCKED(call)                                                                               \
	({                                                                                         \
		pthread_mutex_lock(&g_lock);                                                       \
		int _r = (call);                                                                   \
		pthread_mutex_unlock(&g_lock);                                                     \
		_r;                                                                                \
	})

static int gpu_pause_devices(const struct cd_plugin_ctx *ctx)
{
	return LOCKED(pause_devices(ctx));
}

static int gpu_resume_devices(const struct cd_plugin_ctx *ctx)
{
	return LOCKED(resume_devices(ctx));
}

static int gpu_restore_devices(const struct cd_plugin_ctx *ctx)
{
	return LOCKED(restore_devices(ctx));
}

/* --- entry --------------------------------------------------------------- */

static enum cd_plugin_status gpu_status(char *detail, size_t len)
{
	int version = 0;

	switch (LOCKED(api_get())) {
	case CUDA_OPEN_NO_DRIVER:
		snprintf(detail, len, "no driver");
		return CD_PLUGIN_UNAVAILABLE;
	case CUDA_OPEN_NO_API:
		snprintf(detail, len, "%s", g_why);
		return CD_PLUGIN_UNAVAILABLE;
	case CUDA_OPEN_OK:
		break;
	}
	if (g_api.driver_get_version(&version) != 0) {
		snprintf(detail, len, "cuDriverGetVersion failed");
		return CD_PLUGIN_BROKEN;
	}
	snprintf(detail, len, "driver (CUDA %d.%d)", version / 1000, version % 1000 / 10);
	return CD_PLUGIN_READY;
}

static int gpu_init(const struct cd_plugin_host *host, char *err, size_t errlen)
{
	g_host = host;
	return 0;
}

/* Also lets a test load the driver again under other settings. */
static void gpu_fini(void)
{
	if (g_opened)
		cuda_api_close(&g_api);
	g_opened = false;
	g_ntasks = 0;
	g_host = NULL;
}

static const char *const gpu_features[] = {"gpu", "cuda", NULL};

static const struct cd_plugin gpu_plugin = {
    .abi_version = CD_PLUGIN_ABI_VERSION,
    .name = "gpu",
    .version = "0.1.0",
    .description = "CUDA processes through the driver's checkpoint API",
    .features = gpu_features,
    .init = gpu_init,
    .fini = gpu_fini,
    .status = gpu_status,
    .pause_devices = gpu_pause_devices,
    .checkpoint_devices = gpu_checkpoint_devices,
    .resume_devices = gpu_resume_devices,
    .restore_devices = gpu_restore_devices,
};

__attribute__((visibility("default"))) const struct cd_plugin *cedana_plugin_entry(void);

const struct cd_plugin *cedana_plugin_entry(void)
{
	return &gpu_plugin;
}
