/* wl-madvise [sealed|pkey|mbind|merge-any]: the VMA flags madvise and mmap set, which a program can
 * see in /proc/self/smaps VmFlags and by their effects, survive a checkpoint.
 *
 * Before READY a 20-page anonymous region (seeded) gets, two pages each: MADV_DONTFORK (dc),
 * MADV_WIPEONFORK (wf), MADV_HUGEPAGE (hg), MADV_NOHUGEPAGE (nh), MADV_DONTDUMP (dd),
 * MADV_MERGEABLE (mg), MADV_RANDOM (rr), MADV_SEQUENTIAL (sr); the last four pages none. A
 * private mapping of `<trigger>.madv` (4 pages) gets MADV_RANDOM, and a 64-page
 * MAP_NORESERVE mapping (nr) is made. Advice the kernel refuses (EINVAL: no THP or KSM) is
 * left out and said on stderr. After the trigger every range has the same bounds and VmFlags
 * (of those above, plus lo/lf), the data is intact, and in a forked child the MADV_DONTFORK
 * range is not mapped and the MADV_WIPEONFORK range reads as zero while the parent's keeps its
 * data. Guard regions (MADV_GUARD_INSTALL, Linux 6.13; file mappings 6.15): page 1 of a
 * 4-page anonymous region and page 3 of the file mapping fault on a touch after the trigger
 * too, the other pages keep their data. With "sealed" one more page is sealed (mseal, Linux 6.10),
 * with "pkey" one more page gets a protection key (pkey_mprotect, x86 PKU), with "mbind" a
 * NUMA policy (MPOL_BIND to node 0),
 * with "merge-any" KSM is asked for all memory (PR_SET_MEMORY_MERGE): the engine refuses either
 * dump naming it, and the run goes on to PASS (with "merge-any" every range shows "mg" as well). */
#include <fcntl.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef SYS_mseal
#define SYS_mseal 462
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MPOL_BIND
#define MPOL_BIND 2
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

#include "wl.h"

#define PG    WL_PAGE_SIZE
#define NPG   20
#define SEED  0x6d61647669ULL
#define NAMES "dc wf hg nh dd mg rr sr nr lo lf"

struct range {
	const char *what;
	char *addr;
	int advice;
	bool skip;
	char line[128], flags[64];
};

static struct range ranges[] = {
    {"MADV_DONTFORK", NULL, MADV_DONTFORK, false, "", ""},
    {"MADV_WIPEONFORK", NULL, MADV_WIPEONFORK, false, "", ""},
    {"MADV_HUGEPAGE", NULL, MADV_HUGEPAGE, false, "", ""},
    {"MADV_NOHUGEPAGE", NULL, MADV_NOHUGEPAGE, false, "", ""},
    {"MADV_DONTDUMP", NULL, MADV_DONTDUMP, false, "", ""},
    {"MADV_MERGEABLE", NULL, MADV_MERGEABLE, false, "", ""},
    {"MADV_RANDOM", NULL, MADV_RANDOM, false, "", ""},
    {"MADV_SEQUENTIAL", NULL, MADV_SEQUENTIAL, false, "", ""},
    {"no advice", NULL, -1, false, "", ""},
    {"file MADV_RANDOM", NULL, MADV_RANDOM, false, "", ""},
    {"MAP_NORESERVE", NULL, -1, false, "", ""},
};

static char *map(size_t len, int flags, int fd)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);

	if (p == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	return p;
}

static int make_file(void)
{
	char *path = wl_side_path(".madv"), buf[4 * PG];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	wl_fill(buf, sizeof(buf), SEED + 1);
	if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		wl_fail("write %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

static void advise(struct range *r, size_t len)
{
	if (r->advice < 0 || madvise(r->addr, len, r->advice) == 0)
		return;
	if (errno != EINVAL)
		wl_fail("madvise(%s): %s", r->what, strerror(errno));
	fprintf(stderr, "wl-madvise: %s refused by this kernel, left out\n", r->what);
	r->skip = true;
}

static void look(const struct range *r, char *line, size_t line_len, char *flags, size_t flags_len)
{
	if (!wl_mapping(r->addr, NAMES, line, line_len, flags, flags_len))
		wl_fail("%s: not mapped", r->what);
}

static void check_child(const char *region)
{
	pid_t pid = fork();

	if (pid < 0)
		wl_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		/* msync on an address no mapping holds fails with ENOMEM */
		if (msync((void *)region, PG, MS_ASYNC) == 0 || errno != ENOMEM)
			wl_child_fail("the MADV_DONTFORK range is mapped in a child");
		for (size_t i = 0; i < 2 * PG; i++)
			if (region[2 * PG + i])
				wl_child_fail("the MADV_WIPEONFORK range is not zero in a child");
		_exit(0);
	}
	wl_expect_exit(pid, 0);
}

/* Guard regions: page 1 of G (anonymous) and page 3 of the file mapping fault on a touch. */
static sigjmp_buf fault_jmp;

static void on_segv(int sig)
{
	siglongjmp(fault_jmp, 1);
}

static bool faults(const volatile char *p)
{
	struct sigaction sa = {.sa_handler = on_segv}, old;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(fault_jmp, 1) == 0) {
		(void)*p;
		sigaction(SIGSEGV, &old, NULL);
		return false;
	}
	sigaction(SIGSEGV, &old, NULL);
	return true;
}

static bool guard(char *p, const char *what)
{
	if (madvise(p, PG, MADV_GUARD_INSTALL) == 0)
		return true;
	if (errno != EINVAL)
		wl_fail("MADV_GUARD_INSTALL (%s): %s", what, strerror(errno));
	fprintf(stderr, "wl-madvise: MADV_GUARD_INSTALL (%s) refused by this kernel, left out\n",
	        what);
	return false;
}

static void check_guards(const char *g, bool g_on, const char *file, bool file_on)
{
	char want[4 * PG];

	wl_fill(want, sizeof(want), SEED + 2);
	for (size_t i = 0; i < 4; i++) {
		bool guarded = i == 1 && g_on;
		if (faults(g + i * PG) != guarded)
			wl_fail("guard region: page %zu of G %s", i,
			        guarded ? "no longer faults" : "faults");
		if (!guarded && memcmp(g + i * PG, want + i * PG, PG))
			wl_fail("guard region: page %zu of G differs", i);
	}
	if (faults(file + 3 * PG) != file_on)
		wl_fail("guard region: page 3 of the file mapping %s",
		        file_on ? "no longer faults" : "faults");
}

/* What the engine refuses: a sealed page, or KSM for all new memory. */
static void refused_state(const char *mode)
{
	if (!strcmp(mode, "sealed")) {
		char *page = map(PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		if (syscall(SYS_mseal, page, PG, 0) < 0)
			wl_fail("mseal: %s", strerror(errno));
	} else if (!strcmp(mode, "pkey")) {
		char *page = map(PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		int key = pkey_alloc(0, 0);
		if (key < 0 || pkey_mprotect(page, PG, PROT_READ, key) < 0)
			wl_fail("pkey: %s", strerror(errno));
	} else if (!strcmp(mode, "mbind")) {
		char *page = map(PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		unsigned long node0 = 1;
		if (syscall(SYS_mbind, page, PG, MPOL_BIND, &node0, 2, 0) < 0)
			wl_fail("mbind: %s", strerror(errno));
	} else if (!strcmp(mode, "merge-any")) {
		if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) < 0)
			wl_fail("PR_SET_MEMORY_MERGE: %s", strerror(errno));
	} else {
		wl_fail("unknown mode %s", mode);
	}
}

int main(int argc, char **argv)
{
	char *region, *file, *nores, *g, line[128], flags[64];
	bool g_on, file_on;

	wl_init("wl-madvise");
	if (argc > 1)
		refused_state(argv[1]);
	region = map(NPG * PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	wl_fill(region, NPG * PG, SEED);
	for (size_t i = 0; i < 9; i++)
		ranges[i].addr = region + i * 2 * PG;
	file = map(4 * PG, MAP_PRIVATE, make_file());
	ranges[9].addr = file;
	nores = map(64 * PG, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);
	nores[0] = 1;
	ranges[10].addr = nores;
	for (size_t i = 0; i < WL_ARRAY_SIZE(ranges); i++)
		advise(&ranges[i], i < 8 ? 2 * PG : 4 * PG);
	for (size_t i = 0; i < WL_ARRAY_SIZE(ranges); i++)
		look(&ranges[i], ranges[i].line, sizeof(ranges[i].line), ranges[i].flags,
		     sizeof(ranges[i].flags));
	g = map(4 * PG, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	wl_fill(g, 4 * PG, SEED + 2);
	g_on = guard(g + PG, "anonymous");
	file_on = guard(file + 3 * PG, "file");
	check_guards(g, g_on, file, file_on);
	wl_ready();
	wl_await_trigger();

	for (size_t i = 0; i < WL_ARRAY_SIZE(ranges); i++) {
		look(&ranges[i], line, sizeof(line), flags, sizeof(flags));
		if (strcmp(line, ranges[i].line))
			wl_fail("%s: mapping \"%s\", was \"%s\"", ranges[i].what, line,
			        ranges[i].line);
		if (strcmp(flags, ranges[i].flags))
			wl_fail("%s: VmFlags \"%s\", was \"%s\"", ranges[i].what, flags,
			        ranges[i].flags);
	}
	char *want = malloc(NPG * PG);
	if (!want)
		wl_fail("out of memory");
	wl_fill(want, NPG * PG, SEED);
	if (memcmp(want, region, NPG * PG))
		wl_fail("the advised region's data differs");
	if (nores[0] != 1)
		wl_fail("the MAP_NORESERVE mapping's data differs");
	check_child(region);
	check_guards(g, g_on, file, file_on);
	wl_pass();
}
