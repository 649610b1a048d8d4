/* wl-lazy-fork [MiB] [sparse]: what a program may do to its memory right after a restore, while a
 * lazy restore's background pass still fills it (docs/engine.md, "Lazy restore"). Before
 * READY: MiB (default 256) of seeded random private anonymous memory in four parts. Right
 * after the trigger, before reading any of it:
 *  - fork: the child checks part A page by page (pages its parent had not touched yet);
 *  - madvise(MADV_DONTNEED) of part B: it must read zero, never the old contents;
 *  - munmap of part C, then a fresh anonymous mapping at the same place: zero;
 *  - mremap of part D elsewhere: its contents move with it;
 *  - mprotect of three pages in the middle of part A: its mapping split in three, each filled.
 * Then the parent checks A, B, C, D and waits for the child. Passes with no checkpoint too.
 * sparse: every other page of each part dropped before READY (it reads zero), so that each
 * part is thousands of runs: the server's many ranges cut, moved and copied by these changes. */
#include <sys/mman.h>

#include "wl.h"

#define SEED 0x5eed1a2bULL

static bool sparse;

/* Every other page dropped: each a hole between runs of one page. */
static void drop_odd_pages(unsigned char *p, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);

	for (size_t i = (size_t)page; i < len; i += 2 * (size_t)page)
		if (madvise(p + i, (size_t)page, MADV_DONTNEED) < 0)
			wl_fail("madvise: %s", strerror(errno));
}

static bool check(const unsigned char *p, size_t len, uint64_t seed, size_t *bad)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t st = seed;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t want = wl_rand(&st), got;
		memcpy(&got, p + i, 8);
		if (sparse && i / page % 2)
			want = 0;
		if (got != want) {
			*bad = i;
			return false;
		}
	}
	return true;
}

static bool all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256, part, bad = 0;
	unsigned char *a, *b, *c, *d, *moved;
	char buf[128];

	wl_init("wl-lazy-fork");
	sparse = argc > 2 && !strcmp(argv[2], "sparse");
	if (mib < 4)
		wl_fail("at least 4 MiB");
	part = mib / 4 << 20;
	/* four separate mappings, so that each is its own range; sparse, D
	 * first: mappings go down, so D is the highest, the pass's last, and
	 * most of it is still missing when it moves */
	unsigned char **parts[] = {&a, &b, &c, &d};
	for (size_t i = 0; i < 4; i++) {
		unsigned char **p = parts[sparse ? 3 - i : i];
		*p = mmap(NULL, part, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (*p == MAP_FAILED)
			wl_fail("mmap: %s", strerror(errno));
	}
	wl_fill(a, part, SEED);
	wl_fill(b, part, SEED + 1);
	wl_fill(c, part, SEED + 2);
	wl_fill(d, part, SEED + 3);
	for (size_t i = 0; sparse && i < 4; i++)
		drop_odd_pages(*parts[i], part);
	wl_ready();
	wl_await_trigger();

	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0)
		_exit(check(a, part, SEED, &bad) ? 0 : 3);
	/* at odd pages: a fill of the pass runs across both splits */
	long page = sysconf(_SC_PAGESIZE);
	if (mprotect(a + part / 2 + 5 * (size_t)page, 3 * (size_t)page, PROT_READ) < 0)
		wl_fail("mprotect: %s", strerror(errno));
	if (madvise(b, part, MADV_DONTNEED) < 0)
		wl_fail("madvise: %s", strerror(errno));
	if (munmap(c, part) < 0 || mmap(c, part, PROT_READ | PROT_WRITE,
	                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != c)
		wl_fail("remap C: %s", strerror(errno));
	/* to a place of its own: mremap to the same size does not move */
	void *to = mmap(NULL, part, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (to == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	moved = mremap(d, part, part, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (moved == MAP_FAILED || moved == d)
		wl_fail("mremap: %s", moved == d ? "not moved" : strerror(errno));
	if (!check(a, part, SEED, &bad))
		wl_fail("part A differs at byte %zu", bad);
	if (!all_zero(b, part))
		wl_fail("part B is not zero after MADV_DONTNEED");
	if (!all_zero(c, part))
		wl_fail("part C is not zero after munmap and mmap");
	if (!check(moved, part, SEED + 3, &bad))
		wl_fail("part D differs after mremap at byte %zu", bad);
	const char *why = wl_reap(child, 0, buf, sizeof(buf));
	if (why)
		wl_fail("the child's copy of part A: %s", why);
	wl_pass();
}
