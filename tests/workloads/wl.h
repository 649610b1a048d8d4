/* The workload protocol, shared by every tests/workloads/wl-*.c program (see README.md there):
 * set up state, print READY, poll for the trigger file named by CEDANA_WL_TRIGGER, verify,
 * print PASS (exit 0) or "FAIL: reason" (exit 1). Header-only; links against libc alone. */
#pragma once

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WL_POLL_MS         10
#define WL_DEFAULT_TIMEOUT 60
#define WL_MAX_CHILDREN    16
#define WL_ARRAY_SIZE(a)   (sizeof(a) / sizeof((a)[0]))
#define WL_PAGE_SIZE       4096UL

static const char *wl_trigger_path;
static const char *wl_name = "wl";
/* Children that wl_fail() kills, so a failing workload leaves nothing behind; a negative entry
 * is a whole process group. */
static pid_t wl_children[WL_MAX_CHILDREN];
static unsigned wl_nr_children;

__attribute__((format(printf, 1, 2), noreturn)) static inline void wl_fail(const char *fmt, ...)
{
	va_list ap;

	for (unsigned i = 0; i < wl_nr_children; i++)
		if (wl_children[i])
			kill(wl_children[i], SIGKILL);
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

__attribute__((noreturn)) static inline void wl_pass(void)
{
	printf("PASS\n");
	fflush(stdout);
	exit(0);
}

/* A child explains itself on stderr and exits 1; its parent prints the one FAIL line. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void wl_child_fail(const char *fmt,
                                                                                 ...)
{
	va_list ap;

	fprintf(stderr, "%s[%d]: ", wl_name, (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	_exit(1);
}

/* Call first: reads the trigger path and makes stdout line-buffered, so READY reaches the
 * log at once and nothing buffered is duplicated by fork(). */
static inline void wl_init(const char *name)
{
	wl_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	wl_trigger_path = getenv("CEDANA_WL_TRIGGER");
	if (!wl_trigger_path || !*wl_trigger_path)
		wl_fail("CEDANA_WL_TRIGGER is not set");
	if (access(wl_trigger_path, F_OK) == 0)
		wl_fail("trigger %s exists already", wl_trigger_path);
}

static inline void wl_ready(void)
{
	printf("READY\n");
	fflush(stdout);
}

/* A side file next to the trigger ("<trigger><suffix>"), so each run has its own. */
static inline char *wl_side_path(const char *suffix)
{
	char *p;

	if (asprintf(&p, "%s%s", wl_trigger_path, suffix) < 0)
		wl_fail("out of memory");
	return p;
}

static inline bool wl_triggered(void)
{
	return access(wl_trigger_path, F_OK) == 0;
}

static inline unsigned wl_timeout_s(void)
{
	const char *t = getenv("CEDANA_WL_TIMEOUT");
	unsigned long v;
	char *end;

	if (!t || !*t)
		return WL_DEFAULT_TIMEOUT;
	v = strtoul(t, &end, 10);
	return (*end || v == 0) ? WL_DEFAULT_TIMEOUT : (unsigned)v;
}

static inline uint64_t wl_now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* One nap; an interruption by a signal handler just ends it early. */
static inline void wl_nap_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* How many WL_POLL_MS polls make the timeout. Counted, not clocked: time spent frozen, dumped
 * or waiting for a restore is not ours and must not use up the timeout. */
static inline unsigned long wl_max_polls(void)
{
	return wl_timeout_s() * (1000UL / WL_POLL_MS);
}

/* Polls the trigger every WL_POLL_MS; false after CEDANA_WL_TIMEOUT seconds (default 60) of
 * polling. */
static inline bool wl_wait_trigger(void)
{
	for (unsigned long polls = wl_max_polls(); !wl_triggered(); polls--) {
		if (!polls)
			return false;
		wl_nap_ms(WL_POLL_MS);
	}
	return true;
}

static inline void wl_await_trigger(void)
{
	if (!wl_wait_trigger())
		wl_fail("no trigger");
}

static inline void wl_child_await_trigger(void)
{
	if (!wl_wait_trigger())
		wl_child_fail("no trigger");
}

/* Whether task pid sleeps in syscall nr (or in nr2): /proc/PID/syscall where we may read it,
 * else just its state in /proc/PID/stat. */
static inline bool wl_blocked_in(pid_t pid, long nr, long nr2)
{
	char path[64], buf[512];
	const char *state;
	bool got, yes = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	f = fopen(path, "re");
	got = f && fgets(buf, sizeof(buf), f);
	if (f)
		fclose(f);
	if (got && !strncmp(buf, "running", 7))
		return false;
	if (got) {
		long cur = strtol(buf, NULL, 10);

		return cur == nr || cur == nr2;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f && fgets(buf, sizeof(buf), f) && (state = strrchr(buf, ')')))
		yes = state[1] == ' ' && state[2] == 'S';
	if (f)
		fclose(f);
	return yes;
}

/* Waits (up to the trigger timeout) until task pid is blocked in syscall nr or nr2. */
static inline bool wl_wait_blocked(pid_t pid, long nr, long nr2)
{
	for (unsigned long polls = wl_max_polls(); !wl_blocked_in(pid, nr, nr2); polls--) {
		if (!polls)
			return false;
		wl_nap_ms(WL_POLL_MS);
	}
	return true;
}

/* fork() that remembers the child for wl_fail(); the child runs fn and exits with its code. */
/* Moves fd to number at (the numbers a workload checks after restore), or
 * the run fails. */
static inline void wl_place_fd(int fd, int at)
{
	if (fd < 0 || (fd != at && (dup2(fd, at) < 0 || close(fd) < 0)))
		wl_fail("place fd %d: %s", at, strerror(errno));
}

/* A child that only waits for the trigger, so the tree has a second task. */
static inline pid_t wl_fork_idle_child(void)
{
	pid_t child = fork();

	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0) {
		wl_child_await_trigger();
		_exit(0);
	}
	wl_children[wl_nr_children++] = child;
	return child;
}

static inline pid_t wl_spawn(int (*fn)(void *), void *arg)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		wl_nr_children = 0;
		_exit(fn(arg));
	}
	if (wl_nr_children < WL_MAX_CHILDREN)
		wl_children[wl_nr_children++] = pid;
	return pid;
}

/* Describes how a child ended unless it exited with want; NULL when it did. */
static inline const char *wl_reap(pid_t pid, int want, char *buf, size_t len)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			snprintf(buf, len, "waitpid %d: %s", (int)pid, strerror(errno));
			return buf;
		}
	}
	for (unsigned i = 0; i < wl_nr_children; i++)
		if (wl_children[i] == pid)
			wl_children[i] = 0;
	if (WIFSIGNALED(status))
		snprintf(buf, len, "child %d killed by signal %d", (int)pid, WTERMSIG(status));
	else if (WEXITSTATUS(status) != want)
		snprintf(buf, len, "child %d exited %d, want %d", (int)pid, WEXITSTATUS(status),
		         want);
	else
		return NULL;
	return buf;
}

static inline void wl_expect_exit(pid_t pid, int want)
{
	char buf[128];
	const char *why = wl_reap(pid, want, buf, sizeof(buf));

	if (why)
		wl_fail("%s", why);
}

/* Ends a child that waits (paused, or for the trigger) before the check:
 * killed, then reaped, and no longer one for wl_fail() to kill. */
static inline void wl_end_paused_child(pid_t child)
{
	kill(child, SIGKILL);
	if (waitpid(child, NULL, 0) != child)
		wl_fail("waitpid %d: %s", (int)child, strerror(errno));
	for (unsigned i = 0; i < wl_nr_children; i++)
		if (wl_children[i] == child)
			wl_children[i] = 0;
}

/* splitmix64: a seeded, deterministic stream of page contents. */
static inline uint64_t wl_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The state wl_rand() has after n more calls from seed, to check a stream from its middle. */
static inline uint64_t wl_rand_skip(uint64_t seed, uint64_t n)
{
	return seed + n * 0x9e3779b97f4a7c15ULL;
}

static inline uint64_t wl_hash(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t h = 0xcbf29ce484222325ULL;
	uint64_t w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* Fills len bytes with the stream of seed (len a multiple of 8). */
static inline void wl_fill(void *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = wl_rand(&seed);
		memcpy((char *)buf + i, &v, 8);
	}
}

/* The mapping of /proc/self/smaps that holds addr: its "start-end perms offset" into line
 * and, into flags, those of its VmFlags named in keep (space-separated two-letter names), in
 * smaps order. False when no mapping holds addr. */
static inline bool wl_mapping(const void *addr, const char *keep, char *line, size_t line_len,
                              char *flags, size_t flags_len)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char buf[4096];
	bool in = false, found = false;

	if (!f)
		wl_fail("open /proc/self/smaps: %s", strerror(errno));
	while (!found && fgets(buf, sizeof(buf), f)) {
		unsigned long lo, hi, off;
		char perms[8];
		if (sscanf(buf, "%lx-%lx %7s %lx", &lo, &hi, perms, &off) == 4 &&
		    strchr(buf, '-') < strchr(buf, ' ')) {
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			if (in)
				snprintf(line, line_len, "%lx-%lx %s %lx", lo, hi, perms, off);
			continue;
		}
		if (!in || strncmp(buf, "VmFlags:", 8))
			continue;
		size_t n = 0;
		flags[0] = 0;
		for (char *tok = strtok(buf + 8, " \n"); tok; tok = strtok(NULL, " \n"))
			if (strlen(tok) == 2 && strstr(keep, tok) && n + 4 < flags_len)
				n += (size_t)snprintf(flags + n, flags_len - n, "%s%s",
				                      n ? " " : "", tok);
		found = true;
	}
	fclose(f);
	return found;
}

/* A line of /proc/self/status ("VmLck:") as its number (kB); -1 when absent. */
static inline int wl_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of /proc/self/fdinfo/FD that start with prefix, each cut before
 * cut (when it holds it), sorted, into out: the kernel orders an epoll's or
 * inotify's watch lines by file, which a restore need not keep. */
static inline void wl_fdinfo_lines(int fd, const char *prefix, const char *cut, char *out,
                                   size_t len)
{
	char path[64], line[512], *lines[32];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (!(f = fopen(path, "r")))
		wl_fail("open %s: %s", path, strerror(errno));
	while (n < 32 && fgets(line, sizeof(line), f)) {
		char *at = strstr(line, cut);
		if (strncmp(line, prefix, strlen(prefix)))
			continue;
		if (at)
			*at = 0;
		lines[n++] = strdup(line);
	}
	fclose(f);
	qsort(lines, n, sizeof(*lines), wl_cmp_str);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		strncat(out, lines[i], len - strlen(out) - 2);
		strcat(out, "\n");
		free(lines[i]);
	}
}

static inline long wl_status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	char buf[256];
	long v = -1;

	if (!f)
		wl_fail("open /proc/self/status: %s", strerror(errno));
	while (fgets(buf, sizeof(buf), f))
		if (!strncmp(buf, key, strlen(key)))
			v = strtol(buf + strlen(key), NULL, 10);
	fclose(f);
	return v;
}
