/* wl-cow: a parent and child still share copy-on-write pages after a restore, and each sees
 * exactly its own contents. The parent fills 512 pages of a region before it forks; the child
 * then writes page 0, clears page 1 and leaves the rest shared; the parent writes page 2 (the
 * child keeps the old one) and the 512 pages above, which the child never touched (it must
 * read zero there, not the parent's data). After the trigger the child checks that at least
 * the 509 pages left alone are still shared (Shared_* in its /proc/self/smaps), then both
 * check their contents. A second region of 64 pages, filled before the fork, is split by the
 * child (one page made read-only), so its mappings no longer match the parent's: the pages it
 * shares there come back from the parent's image, not shared, with the same contents. */
#include <fcntl.h>
#include <sys/mman.h>

#include "wl.h"

#define NPAGES      1024
#define FORK_PAGES  512
#define SHARED_MIN  (FORK_PAGES - 3)
#define SEED_BEFORE 0x636f770001ULL
#define SEED_CHILD  0x636f770002ULL
#define SEED_AFTER  0x636f770003ULL
#define SEED_SPLIT  0x636f770004ULL
#define SPLIT_PAGES 64
#define SPLIT_AT    32 /* the child makes this page read-only */
#define SPLIT_OWN   5  /* the parent writes this one after the fork */

static unsigned char *region, *split;

static unsigned char *page_of(unsigned char *r, unsigned i)
{
	return r + (size_t)i * WL_PAGE_SIZE;
}

static unsigned char *page(unsigned i)
{
	return page_of(region, i);
}

static void fill_at(unsigned char *r, unsigned i, uint64_t seed)
{
	uint64_t *w = (uint64_t *)page_of(r, i);

	seed += i;
	for (size_t k = 0; k < WL_PAGE_SIZE / 8; k++)
		w[k] = wl_rand(&seed);
}

static void fill(unsigned i, uint64_t seed)
{
	fill_at(region, i, seed);
}

static bool seeded_at(unsigned char *r, unsigned i, uint64_t seed)
{
	const uint64_t *w = (const uint64_t *)page_of(r, i);

	seed += i;
	for (size_t k = 0; k < WL_PAGE_SIZE / 8; k++)
		if (w[k] != wl_rand(&seed))
			return false;
	return true;
}

static bool seeded(unsigned i, uint64_t seed)
{
	return seeded_at(region, i, seed);
}

static bool zero(unsigned i)
{
	for (size_t k = 0; k < WL_PAGE_SIZE; k++)
		if (page(i)[k])
			return false;
	return true;
}

/* Shared_Clean + Shared_Dirty of our mapping of the region, in KiB. */
static unsigned long shared_kib(void)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	unsigned long lo, hi, kib, total = 0;
	bool in = false;
	char line[512];

	if (!f)
		wl_child_fail("open /proc/self/smaps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' '))
			in = lo == (unsigned long)region;
		else if (in && (sscanf(line, "Shared_Clean: %lu kB", &kib) == 1 ||
		                sscanf(line, "Shared_Dirty: %lu kB", &kib) == 1))
			total += kib;
	}
	fclose(f);
	return total;
}

static int child_main(void *arg)
{
	int *p = arg;
	unsigned long kib;

	close(p[0]);
	fill(0, SEED_CHILD);
	memset(page(1), 0, WL_PAGE_SIZE);
	/* our mappings of split no longer match the parent's */
	if (mprotect(page_of(split, SPLIT_AT), WL_PAGE_SIZE, PROT_READ) < 0)
		wl_child_fail("mprotect: %s", strerror(errno));
	if (write(p[1], "x", 1) != 1)
		wl_child_fail("write ready pipe: %s", strerror(errno));
	close(p[1]);
	wl_child_await_trigger();
	kib = shared_kib();
	if (kib < SHARED_MIN * WL_PAGE_SIZE / 1024)
		wl_child_fail("only %lu KiB of the region shared with the parent, want %lu", kib,
		              SHARED_MIN * WL_PAGE_SIZE / 1024);
	if (!seeded(0, SEED_CHILD))
		wl_child_fail("page 0 is not the child's");
	if (!zero(1))
		wl_child_fail("page 1 is not zero");
	for (unsigned i = 2; i < FORK_PAGES; i++)
		if (!seeded(i, SEED_BEFORE))
			wl_child_fail("page %u is not what the parent wrote before the fork", i);
	for (unsigned i = FORK_PAGES; i < NPAGES; i++)
		if (!zero(i))
			wl_child_fail("page %u, which only the parent wrote, is not zero", i);
	for (unsigned i = 0; i < SPLIT_PAGES; i++)
		if (!seeded_at(split, i, SEED_SPLIT))
			wl_child_fail(
			    "page %u of the split region is not what the parent wrote before "
			    "the fork",
			    i);
	return 0;
}

/* Inaccessible pages around it: the mapping never merges with a neighbour. */
static unsigned char *map_padded(unsigned npages)
{
	unsigned char *base =
	    mmap(NULL, (npages + 2) * WL_PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *p;

	if (base == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	p = mmap(base + WL_PAGE_SIZE, npages * WL_PAGE_SIZE, PROT_READ | PROT_WRITE,
	         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	return p;
}

int main(void)
{
	int p[2];
	char c;
	pid_t child;

	wl_init("wl-cow");
	region = map_padded(NPAGES);
	split = map_padded(SPLIT_PAGES);
	for (unsigned i = 0; i < SPLIT_PAGES; i++)
		fill_at(split, i, SEED_SPLIT);
	for (unsigned i = 0; i < FORK_PAGES; i++)
		fill(i, SEED_BEFORE);
	if (pipe2(p, O_CLOEXEC) < 0)
		wl_fail("pipe: %s", strerror(errno));
	child = wl_spawn(child_main, p);
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		wl_fail("the child did not get ready");
	close(p[0]);
	fill(2, SEED_AFTER);
	fill_at(split, SPLIT_OWN, SEED_AFTER);
	for (unsigned i = FORK_PAGES; i < NPAGES; i++)
		fill(i, SEED_AFTER);
	/* Lets a negative test unshare the child's pages from outside. */
	fprintf(stderr, "wl-cow: region at %p\n", (void *)region);
	wl_ready();

	wl_await_trigger();
	for (unsigned i = 0; i < NPAGES; i++)
		if (!seeded(i, i == 2 || i >= FORK_PAGES ? SEED_AFTER : SEED_BEFORE))
			wl_fail("page %u is not what the parent wrote", i);
	for (unsigned i = 0; i < SPLIT_PAGES; i++)
		if (!seeded_at(split, i, i == SPLIT_OWN ? SEED_AFTER : SEED_SPLIT))
			wl_fail("page %u of the split region is not what the parent wrote", i);
	wl_expect_exit(child, 0);
	wl_pass();
}
