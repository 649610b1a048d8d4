/* wl-chain [depth]: a chain of forks, depth (default 21) below the started process, each
 * task the only child of the one above. The root fills 16 pages from a seeded PRNG before the
 * first fork and nobody writes them again, so every task still shares them copy-on-write with
 * the root: the image holds them once, in the root's pages, and each task's runs point up the
 * whole chain. The deepest task prints READY; after the trigger it checks its pages and exits,
 * and each task above, having reaped its child, checks its own. */
#include <sys/mman.h>

#include "wl.h"

#define NPAGES 16
#define SEED   0x636861696eULL

static uint64_t *region;

static const char *check_region(void)
{
	uint64_t state = SEED;

	for (size_t i = 0; i < NPAGES * WL_PAGE_SIZE / sizeof(uint64_t); i++)
		if (region[i] != wl_rand(&state))
			return "the shared pages changed";
	return NULL;
}

/* Runs as the task at level (the root is level 0); returns its exit code. */
static int level_main(unsigned level, unsigned depth)
{
	char buf[128];
	const char *why;

	if (level == depth) {
		wl_ready();
		if (!wl_wait_trigger())
			wl_child_fail("no trigger");
	} else {
		pid_t child;
		fflush(NULL);
		child = fork();
		if (child < 0)
			wl_child_fail("fork: %s", strerror(errno));
		if (child == 0)
			_exit(level_main(level + 1, depth));
		why = wl_reap(child, 0, buf, sizeof(buf));
		if (why) {
			fprintf(stderr, "wl-chain: level %u: %s\n", level, why);
			return 1;
		}
	}
	why = check_region();
	if (why) {
		fprintf(stderr, "wl-chain: level %u: %s\n", level, why);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned depth = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 21;
	uint64_t state = SEED;

	wl_init("wl-chain");
	if (depth < 1 || depth > 1000)
		wl_fail("depth %u is not in 1-1000", depth);
	region = mmap(NULL, NPAGES * WL_PAGE_SIZE, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	for (size_t i = 0; i < NPAGES * WL_PAGE_SIZE / sizeof(uint64_t); i++)
		region[i] = wl_rand(&state);
	if (level_main(0, depth))
		wl_fail("a task of the chain failed (details on stderr)");
	wl_pass();
}
