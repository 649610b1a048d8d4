/* wl-mlock [future|future-onfault]: locked memory survives a drop of privileges, in the
 * manner of CRIU's zdtm mlock_setuid.
 *
 * Before READY: range A (16 pages, seeded) is locked with mlock, range B (16 pages) with
 * mlock2(MLOCK_ONFAULT) and 3 of its pages touched, range C (2 PROT_NONE pages) with mlock,
 * which fails with ENOMEM (no page to fault in) but marks it locked; with "future"
 * mlockall(MCL_FUTURE) (with "future-onfault" MCL_FUTURE|MCL_ONFAULT) follows. RLIMIT_MEMLOCK is
 * then lowered below what is locked (64 KiB; 1 MiB with "future", whose fresh mappings are locked
 * too), and when run as root the process drops to uid/gid 18943, so that a restore has to lock the
 * memory while it may still, before the credentials. After the trigger: VmLck is what it was, A and
 * C are "lo" and B "lo lf" in VmFlags, their data is intact, and a fresh mapping is locked exactly
 * as mlockall said (not at all without it). */
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "wl.h"

#define PAGES     16
#define LEN       (PAGES * WL_PAGE_SIZE)
#define SEED_A    0x6d6c6f636b41ULL
#define SEED_B    0x6d6c6f636b42ULL
#define DROP_ID   18943
#define LOCKFLAGS "lo lf"

static char *map_anon(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	return p;
}

static void flags_of(const void *addr, char *flags, size_t len)
{
	char line[128];

	if (!wl_mapping(addr, LOCKFLAGS, line, sizeof(line), flags, len))
		wl_fail("no mapping holds %p", addr);
}

static void expect_flags(const char *what, const void *addr, const char *want)
{
	char got[64];

	flags_of(addr, got, sizeof(got));
	if (strcmp(got, want))
		wl_fail("%s: lock flags \"%s\", want \"%s\"", what, got, want);
}

/* The trigger's directory, opened while we may: the new uid need not reach it through its
 * parents (a test's temporary directories are root's alone), only search it (made 0711). */
static int trigger_dir = -1;
static const char *trigger_name;

static void open_trigger_dir(void)
{
	char *dir = strdup(wl_trigger_path), *slash = dir ? strrchr(dir, '/') : NULL;

	if (!slash)
		wl_fail("trigger %s: give a path with a directory", wl_trigger_path);
	*slash = 0;
	trigger_name = wl_trigger_path + (slash - dir) + 1;
	trigger_dir = open(slash == dir ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (trigger_dir < 0)
		wl_fail("open %s: %s", dir, strerror(errno));
	if (geteuid() == 0 && fchmod(trigger_dir, 0711) < 0)
		wl_fail("chmod %s: %s", dir, strerror(errno));
	free(dir);
}

static void await_trigger(void)
{
	for (unsigned long polls = wl_max_polls(); faccessat(trigger_dir, trigger_name, F_OK, 0);
	     polls--) {
		if (!polls)
			wl_fail("no trigger");
		wl_nap_ms(WL_POLL_MS);
	}
}

static void drop_privileges(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "wl-mlock: not root, keeping uid %d\n", (int)geteuid());
		return;
	}
	if (setgroups(0, NULL) < 0 || setresgid(DROP_ID, DROP_ID, DROP_ID) < 0 ||
	    setresuid(DROP_ID, DROP_ID, DROP_ID) < 0)
		wl_fail("drop to uid %d: %s", DROP_ID, strerror(errno));
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int future = !strcmp(mode, "future")           ? MCL_FUTURE
	             : !strcmp(mode, "future-onfault") ? MCL_FUTURE | MCL_ONFAULT
	                                               : 0;
	struct rlimit rl = {future ? 1 << 20 : 64 << 10, RLIM_INFINITY};
	const char *fresh_want = !future ? "" : future & MCL_ONFAULT ? "lo lf" : "lo";
	char *a, *b, *c, *fresh;
	long vmlck;
	uid_t uid;

	wl_init("wl-mlock");
	if (argc > 1 && !future)
		wl_fail("unknown mode %s", mode);
	a = map_anon(LEN);
	b = map_anon(LEN);
	wl_fill(a, LEN, SEED_A);
	if (mlock(a, LEN) < 0)
		wl_fail("mlock: %s", strerror(errno));
	if (mlock2(b, LEN, MLOCK_ONFAULT) < 0)
		wl_fail("mlock2(MLOCK_ONFAULT): %s", strerror(errno));
	for (int i = 0; i < 3; i++)
		wl_fill(b + i * 5 * WL_PAGE_SIZE, WL_PAGE_SIZE, SEED_B + (uint64_t)i);
	/* no page to fault in: ENOMEM, but the range is marked locked all the same */
	c = map_anon(2 * WL_PAGE_SIZE);
	if (mprotect(c, 2 * WL_PAGE_SIZE, PROT_NONE) < 0)
		wl_fail("mprotect: %s", strerror(errno));
	if (mlock(c, 2 * WL_PAGE_SIZE) == 0 || errno != ENOMEM)
		wl_fail("mlock of PROT_NONE pages: %s, want ENOMEM", strerror(errno));
	if (future && mlockall(future) < 0)
		wl_fail("mlockall: %s", strerror(errno));
	rl.rlim_max = rl.rlim_cur;
	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		wl_fail("setrlimit(RLIMIT_MEMLOCK): %s", strerror(errno));
	open_trigger_dir();
	drop_privileges();
	expect_flags("range A", a, "lo");
	expect_flags("range B", b, "lo lf");
	uid = getuid();
	vmlck = wl_status_kb("VmLck:");
	if (vmlck < (long)(2 * LEN / 1024))
		wl_fail("VmLck %ld kB before the checkpoint, want at least %lu", vmlck,
		        2 * LEN / 1024);
	wl_ready();
	await_trigger();

	long now = wl_status_kb("VmLck:");
	if (now != vmlck)
		wl_fail("VmLck %ld kB, was %ld kB", now, vmlck);
	expect_flags("range A", a, "lo");
	expect_flags("range B", b, "lo lf");
	expect_flags("range C", c, "lo");
	char *copy = malloc(WL_PAGE_SIZE);
	if (!copy)
		wl_fail("out of memory");
	for (size_t i = 0; i < LEN; i += WL_PAGE_SIZE) {
		wl_fill(copy, WL_PAGE_SIZE, wl_rand_skip(SEED_A, i / 8));
		if (memcmp(copy, a + i, WL_PAGE_SIZE))
			wl_fail("range A: page %zu differs", i / WL_PAGE_SIZE);
	}
	for (int i = 0; i < 3; i++) {
		wl_fill(copy, WL_PAGE_SIZE, SEED_B + (uint64_t)i);
		if (memcmp(copy, b + i * 5 * WL_PAGE_SIZE, WL_PAGE_SIZE))
			wl_fail("range B: page %d differs", i * 5);
	}
	if (getuid() != uid)
		wl_fail("uid %d, was %d", (int)getuid(), (int)uid);
	/* a fresh mapping shows the mlockall flags (within RLIMIT_MEMLOCK) */
	fresh = map_anon(WL_PAGE_SIZE);
	char got[64];
	flags_of(fresh, got, sizeof(got));
	if (strcmp(got, fresh_want))
		wl_fail("a fresh mapping has lock flags \"%s\", want \"%s\" (mlockall lost?)", got,
		        fresh_want);
	wl_pass();
}
