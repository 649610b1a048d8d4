/* wl-lazy-fork [MiB]: what a program may do to its memory right after a restore, while a
 * lazy restore's background pass still fills it (docs/engine.md, "Lazy restore"). Before
 * READY: MiB (default 256) of seeded random private anonymous memory in four parts. Right
 * after the trigger, before reading any of it:
 *  - fork: the child checks part A page by page (pages its parent had not touched yet);
 *  - madvise(MADV_DONTNEED) of part B: it must read zero, never the old contents;
 *  - munmap of part C, then a fresh anonymous mapping at the same place: zero;
 *  - mremap of part D elsewhere: its contents move with it.
 * Then the parent checks A, B, C, D and waits for the child. Passes with no checkpoint too. */
#include <sys/mman.h>

#include "wl.h"

#define SEED 0x5eed1a2bULL

static bool check(const unsigned char *p, size_t len, uint64_t seed, size_t *bad)
{
	uint64_t st = seed;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t want = wl_rand(&st), got;
		memcpy(&got, p + i, 8);
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
	if (mib < 4)
		wl_fail("at least 4 MiB");
	part = mib / 4 << 20;
	/* four separate mappings, so that each is its own range */
	a = mmap(NULL, part, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	b = mmap(NULL, part, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	c = mmap(NULL, part, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	d = mmap(NULL, part, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || b == MAP_FAILED || c == MAP_FAILED || d == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	wl_fill(a, part, SEED);
	wl_fill(b, part, SEED + 1);
	wl_fill(c, part, SEED + 2);
	wl_fill(d, part, SEED + 3);
	wl_ready();
	wl_await_trigger();

	pid_t child = fork();
	if (child < 0)
		wl_fail("fork: %s", strerror(errno));
	if (child == 0)
		_exit(check(a, part, SEED, &bad) ? 0 : 3);
	if (madvise(b, part, MADV_DONTNEED) < 0)
		wl_fail("madvise: %s", strerror(errno));
	if (munmap(c, part) < 0 || mmap(c, part, PROT_READ | PROT_WRITE,
	                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != c)
		wl_fail("remap C: %s", strerror(errno));
	moved = mremap(d, part, part, MREMAP_MAYMOVE);
	if (moved == MAP_FAILED)
		wl_fail("mremap: %s", strerror(errno));
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
