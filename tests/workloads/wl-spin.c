/* wl-spin: the parent spins in user space, no syscall in its loop, counting in a shared file
 * mapping (<trigger>.spin); its child polls the trigger. Every instruction of the loop moves
 * the count in the file, so the harness can tell from the file alone whether a restored parent
 * ran at all, even for a moment (a restore that fails must not let it). After the trigger the
 * child waits for the count to move on, then tells the parent to stop; the parent reaps it. */
#include <fcntl.h>
#include <sys/mman.h>

#include "wl.h"

struct spin {
	volatile uint64_t count;
	volatile uint32_t stop; /* 1: the child saw the count move; 2: it gave up */
};

static int child_main(void *arg)
{
	struct spin *sp = arg;
	uint64_t before;

	wl_ready();
	if (!wl_wait_trigger()) {
		sp->stop = 2;
		wl_child_fail("no trigger");
	}
	before = sp->count;
	for (int i = 0; i < 200 && sp->count == before; i++)
		wl_nap_ms(WL_POLL_MS);
	if (sp->count == before) {
		sp->stop = 2;
		wl_child_fail("the parent does not count after the trigger");
	}
	sp->stop = 1;
	return 0;
}

int main(void)
{
	struct spin *sp;
	pid_t child;
	int fd;

	wl_init("wl-spin");
	fd = open(wl_side_path(".spin"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)WL_PAGE_SIZE) < 0)
		wl_fail("side file: %s", strerror(errno));
	sp = mmap(NULL, WL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (sp == MAP_FAILED)
		wl_fail("mmap: %s", strerror(errno));
	close(fd);
	child = wl_spawn(child_main, sp);
	/* now and then a non-blocking look at the child, so that its death ends the spin */
	while (!sp->stop) {
		sp->count++;
		if ((sp->count & 0xffffff) == 0 && waitpid(child, NULL, WNOHANG) != 0) {
			wl_children[0] = 0;
			wl_fail("the child ended before telling us to stop");
		}
	}
	wl_expect_exit(child, 0);
	wl_pass();
}
