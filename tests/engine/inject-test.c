/* Proves syscall injection on a live process: a child sleeping in a loop is
 * seized, runs getpid/mmap/munmap for us, then batches of calls in one
 * round trip each (cd_call_batch), one with a failing call in the middle,
 * and carries on afterwards. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h"

static int check(bool ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	return ok ? 0 : 1;
}

static bool mapped(pid_t pid, long addr)
{
	char path[64], line[512], want[32];
	FILE *f;
	bool found = false;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	snprintf(want, sizeof(want), "%lx-", addr);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		found |= !strncmp(line, want, strlen(want));
	if (f)
		fclose(f);
	return found;
}

static bool comm_is(pid_t pid, const char *want)
{
	char path[64], buf[32] = {0};
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return !strcmp(buf, want);
}

/* Whether SIGTRAP is in the child's signal set named key in its status
 * ("SigCgt:": it has its own handler; "SigIgn:": it ignores it). */
static bool trap_in(pid_t pid, const char *key)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen))
			mask = strtoull(line + klen, NULL, 16);
	if (f)
		fclose(f);
	return mask & (1ULL << (SIGTRAP - 1));
}

/* Batches in the page at area, with the runner in a code page mapped for it. */
static int run_batches(cd_inject *h, pid_t child, uint64_t area)
{
	const size_t len = (size_t)(cd_inject_batch_code_end - cd_inject_batch_code);
	struct cd_inject_counts c0, c1;
	struct cd_batch b;
	cd_err err = {0};
	long code, pid = 0, ppid = 0, ignored = 0;
	int fails = 0;

	if (cd_call_ok(h, "mmap", SYS_mmap, 0, 4096, PROT_READ | PROT_EXEC,
	               MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &code, &err) < 0 ||
	    cd_inject_write_mem(h, (uint64_t)code, cd_inject_batch_code, len, &err) < 0) {
		printf("FAIL map the runner: %s\n", err.msg);
		return 1;
	}
	/* a failure in the middle: named, and what follows does not run */
	cd_inject_counts_get(&c0);
	cd_batch_init(&b, h, (uint64_t)code, area);
	cd_batch_add(&b, "getpid", SYS_getpid, 0, 0, 0, 0, 0, 0, &pid);
	cd_batch_add(&b, "close(-1)", SYS_close, (uint64_t)-1, 0, 0, 0, 0, 0, NULL);
	cd_batch_add(&b, "prctl(PR_SET_NAME)", SYS_prctl, PR_SET_NAME,
	             cd_batch_buf(&b, "batched", 8), 0, 0, 0, 0, NULL);
	fails +=
	    check(cd_call_batch(&b, &err) < 0 && !strcmp(err.msg, "close(-1): Bad file descriptor"),
	          "a failing call in a batch is reported by its name");
	cd_inject_counts_get(&c1);
	fails += check(pid == child, "the calls before it ran");
	fails += check(!comm_is(child, "batched"), "the calls after it did not run");
	fails += check(c1.batches == c0.batches + 1 && c1.calls == c0.calls + 2,
	               "one round trip: the runner ran two calls");
	/* a whole batch, with memory in and out */
	pid = 0;
	err = (cd_err){0};
	cd_batch_init(&b, h, (uint64_t)code, area);
	uint64_t name_at = cd_batch_buf(&b, "batched", 8);
	uint64_t out_at = cd_batch_buf(&b, NULL, 16);
	cd_batch_add(&b, "getpid", SYS_getpid, 0, 0, 0, 0, 0, 0, &pid);
	cd_batch_add(&b, "prctl(PR_SET_NAME)", SYS_prctl, PR_SET_NAME, name_at, 0, 0, 0, 0, NULL);
	cd_batch_add(&b, "prctl(PR_GET_NAME)", SYS_prctl, PR_GET_NAME, out_at, 0, 0, 0, 0, NULL);
	cd_batch_add(&b, "getppid", SYS_getppid, 0, 0, 0, 0, 0, 0, &ppid);
	char name[16] = {0};
	int r = cd_call_batch(&b, &err);
	if (r >= 0)
		cd_batch_read(&b, out_at, name, sizeof(name));
	fails += check(r == 0 && pid == child && ppid == getpid() && !strcmp(name, "batched") &&
	                   comm_is(child, "batched"),
	               "a batch runs its calls in order, results and memory come back");
	fails += check(trap_in(child, "SigCgt:"), "the task's SIGTRAP handler is left alone");
	/* SIGTRAP ignored: the runner's trap would reset it, so one by one */
	const uint64_t ign[4] = {(uint64_t)SIG_IGN, 0, 0, 0};
	cd_inject_write_mem(h, area, ign, sizeof(ign), &err);
	cd_call(h, SYS_rt_sigaction, SIGTRAP, area, 0, 8, 0, 0, &ignored, &err);
	cd_inject_counts_get(&c0);
	cd_batch_init(&b, h, (uint64_t)code, area);
	cd_batch_add(&b, "getpid", SYS_getpid, 0, 0, 0, 0, 0, 0, &pid);
	cd_batch_add(&b, "getppid", SYS_getppid, 0, 0, 0, 0, 0, 0, &ppid);
	r = cd_call_batch(&b, &err);
	cd_inject_counts_get(&c1);
	fails += check(r == 0 && pid == child && c1.batches == c0.batches &&
	                   c1.calls == c0.calls + 2 && trap_in(child, "SigIgn:"),
	               "with SIGTRAP ignored the calls run one by one and it stays ignored");
	cd_call(h, SYS_munmap, (uint64_t)code, 4096, 0, 0, 0, 0, &ignored, &err);
	return fails;
}

static void on_trap(int sig)
{
	(void)sig;
}

static int run(pid_t child, int rd)
{
	const uint64_t none[6] = {0};
	const uint64_t map_args[6] = {
	    0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0};
	cd_inject *h;
	cd_err err = {0};
	long ret, addr;
	char buf[16] = {0}, c;
	int fails = 0;

	if (cd_inject_seize(child, &h, &err) < 0 || cd_inject_find_vdso_site(h, &err) < 0) {
		printf("FAIL seize: %s\n", err.msg);
		return 1;
	}
	fails += check(cd_inject_syscall(h, SYS_getpid, none, &ret, &err) == 0 && ret == child,
	               "getpid returns the child's pid");
	fails += check(cd_inject_syscall(h, SYS_mmap, map_args, &addr, &err) == 0 && addr > 0,
	               "mmap returns an address");
	fails += check(mapped(child, addr), "mapping visible in /proc/PID/maps");
	fails += check(cd_inject_write_mem(h, (uint64_t)addr, "hello", 6, &err) == 0 &&
	                   cd_inject_read_mem(h, (uint64_t)addr, buf, 6, &err) == 0 &&
	                   !strcmp(buf, "hello"),
	               "memory written and read back");
	fails += run_batches(h, child, (uint64_t)addr);
	const uint64_t unmap_args[6] = {(uint64_t)addr, 4096};
	fails += check(cd_inject_syscall(h, SYS_munmap, unmap_args, &ret, &err) == 0 && ret == 0,
	               "munmap returns 0");
	fails += check(!mapped(child, addr), "mapping gone");
	fails += check(cd_inject_release(h, &err) == 0, "release");
	cd_inject_free(h);
	/* the child keeps ticking: drain, then expect a fresh byte */
	while (read(rd, &c, 1) == 1 && 0)
		;
	fails += check(read(rd, &c, 1) == 1, "child runs on after release");
	return fails;
}

int main(void)
{
	int p[2];
	pid_t child;

	if (pipe(p) < 0)
		return 1;
	child = fork();
	if (child == 0) {
		signal(SIGTRAP, on_trap);
		close(p[0]);
		for (;;) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
			if (write(p[1], "x", 1) != 1)
				_exit(1);
		}
	}
	close(p[1]);
	/* its first tick: its SIGTRAP handler is in place */
	char c;
	if (read(p[0], &c, 1) != 1)
		return 1;
	int fails = run(child, p[0]);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return fails ? 1 : 0;
}
