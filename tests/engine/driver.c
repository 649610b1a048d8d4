/* cedana-engine: a small driver over the public engine API, for tests and
 * benchmarks (see the usage text). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/inject/inject.h"
#include "engine/proc.h"
#include "plugins/plugins.h"

static int usage(void)
{
	fprintf(
	    stderr,
	    "usage: cedana-engine dump PID DIR [--leave-running] [--shell-job] [--stats|--timings]"
	    " [--external-stdio MASK] [--tcp-established|--tcp-close] [--then DIR2 ...]"
	    " [--streams N] [--codec none|lz4|zstd]\n"
	    "       cedana-engine restore DIR [--stdin F] [--stdout F] [--stderr F]"
	    " [--external-only] [--detach] [--pid-file F] [--leave-stopped] [--lazy]"
	    " [--stats|--timings] [--tcp-established|--tcp-close]\n"
	    "--stats prints the progress calls and the stats to stderr\n"
	    "--timings prints the stats alone (no progress: it costs a pass over the pages)\n"
	    "--external-stdio: bit N records the root's fd N as the caller's\n"
	    "--then DIR2: with --leave-running, tracks written pages; after each dump prints\n"
	    "  \"dumped DIR incremental N\" and reads a line from stdin, then dumps the\n"
	    "  changes since into DIR2 (its parent the previous one)\n"
	    "CEDANA_PLUGINS_DIR set: the plugins of that directory take part\n");
	return 2;
}

static int fail(const cd_err *err)
{
	fprintf(stderr, "cedana-engine: %s\n", err->msg);
	return 1;
}

static void print_progress(const char *stage, uint64_t done, uint64_t total, void *userdata)
{
	(void)userdata;
	fprintf(stderr, "progress %s %llu %llu\n", stage, (unsigned long long)done,
	        (unsigned long long)total);
}

static void print_stat(const char *name, uint64_t v)
{
	fprintf(stderr, "stat %s %llu\n", name, (unsigned long long)v);
}

/* The ptrace cost so far (this process runs one dump or one restore). */
static void print_inject_counts(void)
{
	struct cd_inject_counts c;

	cd_inject_counts_get(&c);
	print_stat("ptrace_stops", c.stops);
	print_stat("injected_calls", c.calls);
	print_stat("regs_transfers", c.regs);
}

static void print_dump_stats(const struct cd_dump_stats *st)
{
	print_stat("freeze_ns", st->freeze_ns);
	print_stat("state_ns", st->state_ns);
	print_stat("files_ns", st->files_ns);
	print_stat("mem_scan_ns", st->mem_scan_ns);
	print_stat("write_ns", st->write_ns);
	print_stat("fsync_ns", st->fsync_ns);
	print_stat("release_ns", st->release_ns);
	print_stat("total_ns", st->total_ns);
	print_stat("tasks", st->tasks);
	print_stat("pages_bytes", st->pages_bytes);
	print_inject_counts();
	/* the dump's smaps reads (proc.c) */
	uint64_t reads, hits;
	cd_proc_maps_cache_counts(&reads, &hits);
	print_stat("smaps_reads", reads);
	print_stat("smaps_hits", hits);
}

static void print_restore_stats(const struct cd_restore_stats *st)
{
	print_stat("validate_ns", st->validate_ns);
	print_stat("files_ns", st->files_ns);
	print_stat("create_ns", st->create_ns);
	print_stat("mem_ns", st->mem_ns);
	print_stat("state_ns", st->state_ns);
	print_stat("release_ns", st->release_ns);
	print_stat("total_ns", st->total_ns);
	print_stat("tasks", st->tasks);
	print_stat("pages_bytes", st->pages_bytes);
	print_inject_counts();
}

/* The plugins of $CEDANA_PLUGINS_DIR; none when it is not set. */
static int load_plugins(struct cd_plugins **ret)
{
	const char *dir = getenv("CEDANA_PLUGINS_DIR");
	cd_err err = {0};

	*ret = NULL;
	if (dir && cd_plugins_load(dir, ret, &err) < 0)
		return fail(&err);
	return 0;
}

/* One dump, then one into each of then[], each naming the previous. */
static int dump_chain(struct cd_dump_opts *o, struct cd_dump_stats *st, const char **then,
                      size_t nthen, cd_err *err)
{
	char parent[4096], line[64];

	for (size_t k = 0;; k++) {
		int r = cd_engine_dump(o, err);
		if (r < 0)
			return r;
		if (o->stats)
			print_dump_stats(st);
		if (o->track) {
			printf("dumped %s incremental %d\n", o->dir, o->track->incremental);
			fflush(stdout);
		}
		if (k == nthen)
			return 0;
		if (!realpath(o->dir, parent) || !fgets(line, sizeof(line), stdin))
			return cd_err_sys(err, errno ? errno : EIO, "before %s", then[k]);
		o->parent = parent;
		o->dir = then[k];
	}
}

static int cmd_dump(int argc, char **argv)
{
	struct cd_dump_opts o = {.version = CD_ENGINE_OPTS_VERSION};
	struct cd_dump_stats st = {0};
	struct cd_track track = {0};
	const char *then[16];
	size_t nthen = 0;
	cd_err err = {0};
	char *end;

	if (argc < 2)
		return usage();
	o.pid = (pid_t)strtol(argv[0], &end, 10);
	if (*end || o.pid <= 0) {
		fprintf(stderr, "cedana-engine: invalid pid \"%s\"\n", argv[0]);
		return 1;
	}
	o.dir = argv[1];
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--leave-running"))
			o.leave_running = true;
		else if (!strcmp(argv[i], "--shell-job"))
			o.shell_job = true;
		else if (!strcmp(argv[i], "--tcp-established"))
			o.tcp_established = true;
		else if (!strcmp(argv[i], "--tcp-close"))
			o.tcp_close = true;
		else if (!strcmp(argv[i], "--streams") && i + 1 < argc)
			o.streams = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--codec") && i + 1 < argc)
			o.page_codec = !strcmp(argv[++i], "lz4")  ? 1
			               : !strcmp(argv[i], "zstd") ? 2
			                                          : 0;
		else if (!strcmp(argv[i], "--external-stdio") && i + 1 < argc)
			o.external_stdio = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--stats")) {
			o.stats = &st;
			o.progress = print_progress;
		} else if (!strcmp(argv[i], "--timings"))
			o.stats = &st;
		else if (!strcmp(argv[i], "--then") && i + 1 < argc && nthen < 16)
			then[nthen++] = argv[++i];
		else
			return usage();
	}
	if (load_plugins(&o.plugins) != 0)
		return 1;
	if (nthen)
		o.track = &track;
	int r = dump_chain(&o, &st, then, nthen, &err);
	cd_plugins_free(o.plugins);
	cd_track_clear(&track);
	return r < 0 ? fail(&err) : 0;
}

static int open_stdio(const char *path, int i)
{
	int fd = i == 0 ? open(path, O_RDONLY | O_CLOEXEC)
	                : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		fprintf(stderr, "cedana-engine: open %s: %s\n", path, strerror(errno));
	return fd;
}

static int write_pid_file(const char *path, pid_t pid)
{
	FILE *f = fopen(path, "we");

	if (!f || fprintf(f, "%d\n", pid) < 0 || fclose(f) != 0) {
		fprintf(stderr, "cedana-engine: write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int wait_root(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* The server of a lazy restore: a child of ours that outlives the
 * command (with --detach), reporting on stderr; with timings, when its
 * pass ended. Our copies of its fds go, or a fault would wait on us. */
static int serve_lazy(struct cd_lazy *lz, pid_t root, bool timings)
{
	struct timespec t0;
	pid_t p;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((p = fork()) == 0) {
		cd_err err = {0};
		struct timespec t1;
		int r = cd_lazy_serve(lz, &err);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (r < 0)
			fprintf(stderr, "Error: %s\n", err.msg);
		else if (timings)
			fprintf(stderr, "lazy pass: %.1f ms\n",
			        (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			            (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
		_exit(r < 0 ? 1 : 0);
	}
	cd_lazy_free(lz);
	if (p < 0) {
		perror("fork the lazy restore's server");
		kill(root, SIGKILL);
		return -1;
	}
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	static const char *const names[3] = {"--stdin", "--stdout", "--stderr"};
	struct cd_restore_opts o = {.version = CD_ENGINE_OPTS_VERSION, .stdio_fd = {-1, -1, -1}};
	struct cd_restore_stats st = {0};
	const char *pid_file = NULL;
	struct cd_lazy *lazy = NULL;
	bool detach = false;
	cd_err err = {0};
	pid_t pid;

	if (argc < 1)
		return usage();
	o.dir = argv[0];
	for (int i = 1; i < argc; i++) {
		int k;
		for (k = 0; k < 3 && strcmp(argv[i], names[k]); k++)
			;
		if (k < 3 && i + 1 < argc) {
			o.stdio_fd[k] = open_stdio(argv[++i], k);
			if (o.stdio_fd[k] < 0)
				return 1;
		} else if (!strcmp(argv[i], "--external-only")) {
			o.stdio_external_only = 7;
		} else if (!strcmp(argv[i], "--detach")) {
			detach = true;
		} else if (!strcmp(argv[i], "--pid-file") && i + 1 < argc) {
			pid_file = argv[++i];
		} else if (!strcmp(argv[i], "--leave-stopped")) {
			o.leave_stopped = true;
		} else if (!strcmp(argv[i], "--lazy")) {
			o.lazy = &lazy;
		} else if (!strcmp(argv[i], "--tcp-established")) {
			o.tcp_established = true;
		} else if (!strcmp(argv[i], "--tcp-close")) {
			o.tcp_close = true;
		} else if (!strcmp(argv[i], "--stats")) {
			o.stats = &st;
			o.progress = print_progress;
		} else if (!strcmp(argv[i], "--timings")) {
			o.stats = &st;
		} else {
			return usage();
		}
	}
	if (load_plugins(&o.plugins) != 0)
		return 1;
	int r = cd_engine_restore(&o, &pid, &err);
	cd_plugins_free(o.plugins);
	if (r < 0)
		return fail(&err);
	if (lazy && serve_lazy(lazy, pid, o.stats != NULL) < 0)
		return 1;
	if (o.stats)
		print_restore_stats(&st);
	if (pid_file && write_pid_file(pid_file, pid) < 0) {
		kill(pid, SIGKILL);
		return 1;
	}
	return detach ? 0 : wait_root(pid);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "dump"))
		return cmd_dump(argc - 2, argv + 2);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 2, argv + 2);
	return usage();
}
