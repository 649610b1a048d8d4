/* The gpu plugin driven through its hooks against a fake CUDA driver
 * (tests/plugins/fake-cuda.c, found as libcuda.so.1 on LD_LIBRARY_PATH):
 * which driver calls each hook makes, in which order, and what every
 * failure leaves behind. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "plugins/plugin.h"

#define PID 4242

static const struct cd_plugin *plugin;
static char dir[64], pids_path[128], log_path[128];
static char errbuf[512];
static int host_fail_run;

static void host_log(enum cd_plugin_log_level level, const char *name, const char *fmt, ...)
{
}

static void append_log(const char *what, pid_t tid)
{
	FILE *f = fopen(log_path, "ae");

	assert_non_null(f);
	fprintf(f, "%s %d\n", what, (int)tid);
	fclose(f);
}

static int host_thread_run(void *hctx, pid_t tid, char *err, size_t errlen)
{
	append_log("thread_run", tid);
	if (host_fail_run) {
		snprintf(err, errlen, "no such thread");
		return -3;
	}
	return 0;
}

static int host_thread_stop(void *hctx, pid_t tid, char *err, size_t errlen)
{
	append_log("thread_stop", tid);
	return 0;
}

static const struct cd_plugin_host host = {
    .abi_version = CD_PLUGIN_ABI_VERSION,
    .log = host_log,
    .thread_run = host_thread_run,
    .thread_stop = host_thread_stop,
};

static struct cd_plugin_ctx ctx_for(pid_t pid)
{
	return (struct cd_plugin_ctx){.size = sizeof(struct cd_plugin_ctx),
	                              .host = &host,
	                              .pid = pid,
	                              .image_dir = dir,
	                              .timeout_ms = 5000,
	                              .err = errbuf,
	                              .errlen = sizeof(errbuf)};
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *read_file(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "re");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void set_pids(const char *text)
{
	write_file(pids_path, text);
	unlink(log_path);
}

static int setup(void **state)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/plugin-gpu.json", dir);
	unlink(path);
	unsetenv("CEDANA_GPU_LIBCUDA");
	unsetenv("FAKE_CUDA_FAIL");
	host_fail_run = 0;
	errbuf[0] = '\0';
	set_pids("");
	plugin->fini();
	assert_int_equal(plugin->init(&host, errbuf, sizeof(errbuf)), 0);
	return 0;
}

static void status_no_driver(void **state)
{
	char detail[256];

	setenv("CEDANA_GPU_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
	assert_int_equal(plugin->status(detail, sizeof(detail)), CD_PLUGIN_UNAVAILABLE);
	assert_string_equal(detail, "no driver");
}

static void status_no_api(void **state)
{
	char detail[256];

	setenv("CEDANA_GPU_LIBCUDA", "libcuda-noapi.so", 1);
	assert_int_equal(plugin->status(detail, sizeof(detail)), CD_PLUGIN_UNAVAILABLE);
	assert_non_null(strstr(detail, "driver lacks the checkpoint API"));
	assert_non_null(strstr(detail, "cuCheckpointProcess"));
}

static void status_ready(void **state)
{
	char detail[256];

	assert_int_equal(plugin->status(detail, sizeof(detail)), CD_PLUGIN_READY);
	assert_string_equal(detail, "driver (CUDA 13.0)");
}

static void not_cuda_skipped(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("777 0\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_SKIP);
	assert_int_equal(plugin->resume_devices(&ctx), CD_PLUGIN_SKIP);
	assert_int_equal(plugin->restore_devices(&ctx), CD_PLUGIN_SKIP);
	assert_string_equal(read_file(log_path), "");
}

static void no_driver_skips(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	setenv("CEDANA_GPU_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
	set_pids("4242 0\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_SKIP);
	assert_string_equal(read_file(log_path), "");
}

static void pause_locks_and_checkpoints(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);
	char path[160];
	struct stat st;

	set_pids("4242 0\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_OK);
	assert_string_equal(read_file(log_path), "lock 4242 timeout=5000\ncheckpoint 4242\n");
	assert_string_equal(read_file(pids_path), "4242 2\n");
	/* Done before the freeze: nothing left for checkpoint_devices. */
	assert_int_equal(plugin->checkpoint_devices(&ctx), CD_PLUGIN_SKIP);

	snprintf(path, sizeof(path), "%s/plugin-gpu.json", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_non_null(strstr(read_file(path), "\"pid\": 4242"));
	assert_non_null(strstr(read_file(path), "\"cuda_driver_version\": 13000"));
	assert_non_null(strstr(read_file(path), "\"initial_state\": \"running\""));
}

static void json_private_over_existing(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);
	char path[160];
	struct stat st;

	snprintf(path, sizeof(path), "%s/plugin-gpu.json", dir);
	write_file(path, "{}");
	chmod(path, 0644);
	set_pids("4242 0\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
}

static void resume_restores_and_unlocks(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 0\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_OK);
	ctx.leave_running = true;
	assert_int_equal(plugin->resume_devices(&ctx), CD_PLUGIN_OK);
	assert_string_equal(read_file(log_path), "lock 4242 timeout=5000\ncheckpoint 4242\n"
	                                         "restore 4242\nunlock 4242\n");
	assert_string_equal(read_file(pids_path), "4242 0\n");
	/* Forgotten once resumed. */
	assert_int_equal(plugin->resume_devices(&ctx), CD_PLUGIN_SKIP);
}

static void failed_dump_resumes(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 0\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_OK);
	ctx.failed = true;
	assert_int_equal(plugin->resume_devices(&ctx), CD_PLUGIN_OK);
	assert_string_equal(read_file(pids_path), "4242 0\n");
}

static void failing_checkpoint_unlocks(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 0\n");
	setenv("FAKE_CUDA_FAIL", "checkpoint", 1);
	assert_true(plugin->pause_devices(&ctx) < 0);
	assert_non_null(strstr(errbuf, "cuCheckpointProcessCheckpoint"));
	assert_non_null(strstr(errbuf, "CUDA_ERROR_NOT_SUPPORTED (801)"));
	assert_non_null(strstr(errbuf, "4242"));
	assert_string_equal(read_file(log_path), "lock 4242 timeout=5000\ncheckpoint 4242\n"
	                                         "unlock 4242\n");
	assert_string_equal(read_file(pids_path), "4242 0\n");
	/* Nothing left for resume: pause undid itself. */
	assert_int_equal(plugin->resume_devices(&ctx), CD_PLUGIN_SKIP);
}

static void failing_lock_names_it(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 0\n");
	setenv("FAKE_CUDA_FAIL", "lock", 1);
	assert_true(plugin->pause_devices(&ctx) < 0);
	assert_non_null(strstr(errbuf, "cuCheckpointProcessLock"));
	assert_string_equal(read_file(pids_path), "4242 0\n");
}

static void failing_resume_restore_names_it(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 0\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_OK);
	setenv("FAKE_CUDA_FAIL", "restore", 1);
	assert_true(plugin->resume_devices(&ctx) < 0);
	assert_non_null(strstr(errbuf, "cuCheckpointProcessRestore"));
}

/* A task someone else locked is checkpointed for the dump, then left locked. */
static void locked_stays_locked(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 1\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_OK);
	assert_int_equal(plugin->resume_devices(&ctx), CD_PLUGIN_OK);
	assert_string_equal(read_file(log_path), "checkpoint 4242\nrestore 4242\n");
	assert_string_equal(read_file(pids_path), "4242 1\n");
}

static void checkpointed_stays_checkpointed(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 2\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_OK);
	assert_int_equal(plugin->resume_devices(&ctx), CD_PLUGIN_OK);
	assert_string_equal(read_file(log_path), "");
	assert_string_equal(read_file(pids_path), "4242 2\n");
}

/* Restore: the driver's restore thread alone runs around restore+unlock. */
static void restore_runs_restore_thread(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 2\n");
	assert_int_equal(plugin->restore_devices(&ctx), CD_PLUGIN_OK);
	assert_string_equal(read_file(log_path), "thread_run 4243\nrestore 4242\nunlock 4242\n"
	                                         "thread_stop 4243\n");
	assert_string_equal(read_file(pids_path), "4242 0\n");
}

static void restore_failure_stops_thread(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 2\n");
	setenv("FAKE_CUDA_FAIL", "restore", 1);
	assert_true(plugin->restore_devices(&ctx) < 0);
	assert_non_null(strstr(errbuf, "cuCheckpointProcessRestore"));
	assert_non_null(strstr(errbuf, "(801)"));
	assert_string_equal(read_file(log_path), "thread_run 4243\nrestore 4242\n"
	                                         "thread_stop 4243\n");
}

static void restore_thread_run_failure(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 2\n");
	host_fail_run = 1;
	assert_true(plugin->restore_devices(&ctx) < 0);
	assert_non_null(strstr(errbuf, "restore thread 4243"));
	assert_string_equal(read_file(log_path), "thread_run 4243\n");
}

/* The image says the task had CUDA state, the driver knows none of it. */
static void restore_listed_but_unknown(void **state)
{
	struct cd_plugin_ctx ctx = ctx_for(PID);

	set_pids("4242 0\n");
	assert_int_equal(plugin->pause_devices(&ctx), CD_PLUGIN_OK);
	set_pids("");
	assert_true(plugin->restore_devices(&ctx) < 0);
	assert_non_null(strstr(errbuf, "cuCheckpointProcessGetRestoreThreadId"));
	assert_non_null(strstr(errbuf, "CUDA_ERROR_NOT_INITIALIZED (3)"));
}

int main(void)
{
	const char *path = getenv("GPU_PLUGIN");
	const struct cd_plugin *(*entry)(void);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(status_no_driver, setup),
	    cmocka_unit_test_setup(status_no_api, setup),
	    cmocka_unit_test_setup(status_ready, setup),
	    cmocka_unit_test_setup(not_cuda_skipped, setup),
	    cmocka_unit_test_setup(no_driver_skips, setup),
	    cmocka_unit_test_setup(pause_locks_and_checkpoints, setup),
	    cmocka_unit_test_setup(json_private_over_existing, setup),
	    cmocka_unit_test_setup(resume_restores_and_unlocks, setup),
	    cmocka_unit_test_setup(failed_dump_resumes, setup),
	    cmocka_unit_test_setup(failing_checkpoint_unlocks, setup),
	    cmocka_unit_test_setup(failing_lock_names_it, setup),
	    cmocka_unit_test_setup(failing_resume_restore_names_it, setup),
	    cmocka_unit_test_setup(locked_stays_locked, setup),
	    cmocka_unit_test_setup(checkpointed_stays_checkpointed, setup),
	    cmocka_unit_test_setup(restore_runs_restore_thread, setup),
	    cmocka_unit_test_setup(restore_failure_stops_thread, setup),
	    cmocka_unit_test_setup(restore_thread_run_failure, setup),
	    cmocka_unit_test_setup(restore_listed_but_unknown, setup),
	};
	void *h;
	int r;

	h = path ? dlopen(path, RTLD_NOW) : NULL;
	if (!h) {
		fprintf(stderr, "cannot load the gpu plugin (GPU_PLUGIN=%s): %s\n",
		        path ? path : "unset", path ? dlerror() : "");
		return 1;
	}
	entry = (const struct cd_plugin *(*)(void))dlsym(h, CD_PLUGIN_ENTRY);
	assert_non_null(entry);
	plugin = entry();
	assert_int_equal(plugin->abi_version, CD_PLUGIN_ABI_VERSION);
	assert_string_equal(plugin->name, "gpu");

	strcpy(dir, "/tmp/cedana-gpu-test.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(pids_path, sizeof(pids_path), "%s/pids", dir);
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	setenv("FAKE_CUDA_PIDS", pids_path, 1);
	setenv("FAKE_CUDA_LOG", log_path, 1);
	/* Device memory comes from the RSS growth, not from a real NVML. */
	setenv("CEDANA_GPU_LIBNVML", "/nonexistent/libnvidia-ml.so.1", 1);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	plugin->fini();
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			r = r ? r : 1;
	}
	return r;
}
