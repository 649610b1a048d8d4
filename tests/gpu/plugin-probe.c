/* Drives the gpu plugin's dump hooks on a live CUDA process with no engine
 * around them, for scripts/gpu-check.sh: the plugin against the real
 * driver, apart from the engine's hook calls, with the time each takes.
 *
 *   plugin-probe PLUGIN.so PID IMAGE_DIR
 *
 * Prints the plugin's status, then pause_devices (lock + checkpoint), the
 * /dev/nvidia* fds and mappings left, and resume_devices (restore +
 * unlock), as "pause 0.98 s", "nvidia-left 0", "resume 0.44 s". Exit 0 when
 * both hooks succeeded and the checkpoint left no device file open. */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plugins/plugin.h"

__attribute__((format(printf, 3, 4))) static void host_log(enum cd_plugin_log_level level,
                                                           const char *plugin, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[%s] ", plugin);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* /dev/nvidia* fds plus mappings of pid. */
static int nvidia_files(pid_t pid)
{
	char path[PATH_MAX + 64], link[PATH_MAX], line[PATH_MAX + 128];
	struct dirent *de;
	int n = 0;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			ssize_t len;

			snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid, de->d_name);
			len = readlink(path, link, sizeof(link) - 1);
			if (len > 0) {
				link[len] = '\0';
				n += strncmp(link, "/dev/nvidia", 11) == 0;
			}
		}
		closedir(d);
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if ((f = fopen(path, "re"))) {
		while (fgets(line, sizeof(line), f))
			n += strstr(line, " /dev/nvidia") != NULL;
		fclose(f);
	}
	return n;
}

int main(int argc, char **argv)
{
	struct cd_plugin_host host = {.abi_version = CD_PLUGIN_ABI_VERSION, .log = host_log};
	const struct cd_plugin *(*entry)(void);
	const struct cd_plugin *p;
	struct cd_plugin_ctx ctx;
	char err[512] = "", detail[256] = "";
	int r, left, rc = 0;
	double t0;
	void *h;

	if (argc != 4) {
		fprintf(stderr, "usage: plugin-probe PLUGIN.so PID IMAGE_DIR\n");
		return 2;
	}
	if (!(h = dlopen(argv[1], RTLD_NOW))) {
		printf("FAIL: %s\n", dlerror());
		return 1;
	}
	entry = (const struct cd_plugin *(*)(void))dlsym(h, CD_PLUGIN_ENTRY);
	if (!entry || !(p = entry()) || p->init(&host, err, sizeof(err)) < 0) {
		printf("FAIL: the plugin does not load: %s\n", err);
		return 1;
	}
	r = p->status(detail, sizeof(detail));
	printf("status %d %s\n", r, detail);
	ctx = (struct cd_plugin_ctx){.size = sizeof(ctx),
	                             .host = &host,
	                             .pid = atoi(argv[2]),
	                             .image_dir = argv[3],
	                             .timeout_ms = 10000,
	                             .leave_running = true,
	                             .err = err,
	                             .errlen = sizeof(err)};
	printf("nvidia-before %d\n", nvidia_files(ctx.pid));
	t0 = now();
	r = p->pause_devices(&ctx);
	printf("pause %.2f s (%d)\n", now() - t0, r);
	if (r != CD_PLUGIN_OK) {
		printf("FAIL: pause_devices: %s\n", r < 0 ? err : "skipped: not a CUDA task");
		return 1;
	}
	left = nvidia_files(ctx.pid);
	printf("nvidia-left %d\n", left);
	if (left) {
		printf("FAIL: %d /dev/nvidia* fds or mappings left after the checkpoint\n", left);
		rc = 1;
	}
	t0 = now();
	r = p->resume_devices(&ctx);
	printf("resume %.2f s (%d)\n", now() - t0, r);
	if (r != CD_PLUGIN_OK) {
		printf("FAIL: resume_devices: %s\n", err);
		rc = 1;
	}
	p->fini();
	return rc;
}
