#include "daemon/check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "engine/engine.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static void add(json_t *arr, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void add(json_t *arr, const char *name, bool ok, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_array_append_new(
	    arr, json_pack("{s:s, s:b, s:s}", "name", name, "ok", ok, "detail", detail));
}

/* The kernel features the engine probed (once per process, engine/probe.c). */
static void check_kernel(json_t *arr)
{
	size_t n;
	const struct cd_probe *p = cd_engine_probe(&n);

	for (size_t i = 0; i < n; i++)
		add(arr, p[i].name, p[i].ok, "%s", p[i].detail);
}

static void check_freezer(json_t *arr)
{
	struct statfs fs;

	if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC) {
		if (access("/sys/fs/cgroup/cgroup.subtree_control", F_OK) == 0)
			add(arr, "cgroup freezer", true, "cgroup v2 (cgroup.freeze)");
		else
			add(arr, "cgroup freezer", false,
			    "cgroup v2 without cgroup.subtree_control");
		return;
	}
	if (access("/sys/fs/cgroup/freezer/freezer.state", F_OK) == 0 ||
	    access("/sys/fs/cgroup/freezer", F_OK) == 0)
		add(arr, "cgroup freezer", true, "cgroup v1 freezer");
	else
		add(arr, "cgroup freezer", false, "no cgroup freezer found under /sys/fs/cgroup");
}

static void check_dir_writable(json_t *arr, const char *name, const char *dir)
{
	if (access(dir, W_OK | X_OK) == 0)
		add(arr, name, true, "%s is writable", dir);
	else
		add(arr, name, false, "%s: %s", dir, strerror(errno));
}

static void check_recovered(json_t *arr, json_t *recovered)
{
	size_t n = json_array_size(recovered), i, len = 0;
	char detail[400] = "";
	json_t *v;

	if (n == 0) {
		add(arr, "recovery", true, "nothing was left in flight by an earlier daemon");
		return;
	}
	json_array_foreach(recovered, i, v)
	{
		int w = snprintf(detail + len, sizeof(detail) - len, "%s%s", i ? "; " : "",
		                 json_string_value(v));
		if (w < 0 || (size_t)w >= sizeof(detail) - len)
			break;
		len += (size_t)w;
	}
	add(arr, "recovery", true, "at start-up, %zu operation(s) an earlier daemon left: %s", n,
	    detail);
}

json_t *check_run(struct job_manager *jm, const struct cd_config *cfg, json_t *recovered, bool full)
{
	json_t *arr = json_array();
	cd_err err = {0};

	if (job_manager_db_check(jm, &err) < 0)
		add(arr, "db", false, "%s", err.msg);
	else
		add(arr, "db", true, "%s is readable", cfg->db_path);
	check_kernel(arr);
	check_freezer(arr);
	check_recovered(arr, recovered);
	if (full) {
		check_dir_writable(arr, "job log dir", cfg->job_log_dir);
		check_dir_writable(arr, "checkpoint dir", cfg->checkpoint_dir);
	}
	return arr;
}
