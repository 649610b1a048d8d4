/* Engine test program for process attributes: sets umask, nice, rlimits,
 * comm, cwd, oom_score_adj, CPU affinity, personality and no_new_privs,
 * records them with its credentials, rseq, robust list and clear-tid
 * address and capabilities, prints READY, waits for the trigger ($CEDANA_WL_TRIGGER), and
 * prints PASS if all are the same (else FAIL: what). */
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

struct state {
	mode_t umask;
	int nice, oom, nnp, ngroups, dumpable;
	unsigned long persona;
	struct rlimit nofile, core;
	char comm[16], cwd[256];
	cpu_set_t cpus;
	uid_t uid[3];
	gid_t gid[3], groups[32];
	void *robust_head, *tid_addr;
	size_t robust_len;
	char caps[256]; /* the Cap* lines of /proc/self/status */
};

static int read_oom(void)
{
	char buf[32] = {0};
	int fd = open("/proc/self/oom_score_adj", O_RDONLY);

	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) < 0)
		return -9999;
	close(fd);
	return atoi(buf);
}

static void read_caps(char *out, size_t len)
{
	char line[128];
	FILE *f = fopen("/proc/self/status", "re");

	out[0] = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "Cap", 3) && strlen(out) + strlen(line) < len)
			strcat(out, line);
	if (f)
		fclose(f);
}

static void record(struct state *s)
{
	memset(s, 0, sizeof(*s));
	s->umask = umask(0);
	umask(s->umask);
	s->nice = getpriority(PRIO_PROCESS, 0);
	s->oom = read_oom();
	s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	s->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	s->persona = (unsigned long)personality(0xffffffff);
	getrlimit(RLIMIT_NOFILE, &s->nofile);
	getrlimit(RLIMIT_CORE, &s->core);
	prctl(PR_GET_NAME, s->comm, 0, 0, 0);
	if (!getcwd(s->cwd, sizeof(s->cwd)))
		strcpy(s->cwd, "?");
	sched_getaffinity(0, sizeof(s->cpus), &s->cpus);
	getresuid(&s->uid[0], &s->uid[1], &s->uid[2]);
	getresgid(&s->gid[0], &s->gid[1], &s->gid[2]);
	s->ngroups = getgroups(32, s->groups);
	syscall(SYS_get_robust_list, 0, &s->robust_head, &s->robust_len);
	prctl(PR_GET_TID_ADDRESS, &s->tid_addr, 0, 0, 0);
	read_caps(s->caps, sizeof(s->caps));
}

static int fail(const char *what)
{
	printf("FAIL: %s\n", what);
	return 1;
}

/* The kernel rewrites rseq's cpu_id on return to user after a context
 * switch only while the area is registered. */
static int rseq_registered(void)
{
	volatile int *cpu_id =
	    (volatile int *)((char *)__builtin_thread_pointer() + __rseq_offset + 4);

	if (!__rseq_size)
		return 1; /* glibc did not register one: nothing to check */
	for (int i = 0; i < 100; i++) {
		*cpu_id = -7;
		sched_yield();
		usleep(1000);
		if (*cpu_id >= 0)
			return 1;
	}
	return 0;
}

int main(void)
{
	const char *trigger = getenv("CEDANA_WL_TRIGGER");
	struct state before, after;
	struct rlimit nofile = {256, 512}, core = {0, 0};
	cpu_set_t one;
	char dir[256];
	int fd;

	if (!trigger)
		return fail("no CEDANA_WL_TRIGGER");
	snprintf(dir, sizeof(dir), "%s", trigger);
	*strrchr(dir, '/') = 0;
	umask(027);
	setpriority(PRIO_PROCESS, 0, 5);
	setrlimit(RLIMIT_NOFILE, &nofile);
	setrlimit(RLIMIT_CORE, &core);
	prctl(PR_SET_NAME, "attrs-test", 0, 0, 0);
	if (chdir(dir) < 0)
		return fail("chdir");
	fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0 || write(fd, "123", 3) != 3)
		return fail("oom_score_adj");
	close(fd);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	sched_setaffinity(0, sizeof(one), &one);
	personality(PER_LINUX | ADDR_NO_RANDOMIZE);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	record(&before);
	printf("READY\n");
	fflush(stdout);
	for (int i = 0; access(trigger, F_OK) != 0; i++) {
		if (i == 6000)
			return fail("no trigger");
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	record(&after);
#define SAME(field)                                                                                \
	if (memcmp(&before.field, &after.field, sizeof(before.field)))                             \
		return fail(#field);
	SAME(umask);
	SAME(nice);
	SAME(oom);
	SAME(nnp);
	SAME(dumpable);
	SAME(persona);
	SAME(nofile);
	SAME(core);
	SAME(comm);
	SAME(cwd);
	SAME(cpus);
	SAME(uid);
	SAME(gid);
	SAME(ngroups);
	SAME(groups);
	SAME(robust_head);
	SAME(robust_len);
	SAME(tid_addr);
	SAME(caps);
	if (before.oom != 123 || before.nice != 5 || before.umask != 027 || !before.nnp)
		return fail("setup did not take");
	if (!rseq_registered())
		return fail("rseq not registered");
	printf("PASS\n");
	return 0;
}
