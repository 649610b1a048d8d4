/* wl-aio: an AIO context (io_setup of 128 events: its ring is a shared mapping "/[aio]")
 * with no request in flight, after 5 reads of /dev/zero submitted and reaped (the ring's head
 * and tail at 5). After the trigger: the ring is still mapped at the context id (its address)
 * with the same number of events and head = tail = 5, and the context takes a request (a read
 * of /dev/zero) and gives its completion: PASS. With `unreaped`, one completion is left
 * unreaped in the ring before READY: the engine refuses that dump by name and the workload
 * runs on (reaping it after the trigger). */
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>

#include "wl.h"

/* fs/aio.c's ring header */
struct ring {
	unsigned id, nr, head, tail, magic, compat, incompat, header_length;
};

static int fd;

static void submit(aio_context_t ctx, char *buf, size_t len)
{
	struct iocb cb = {0}, *cbs[1] = {&cb};

	memset(buf, 1, len);
	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_fildes = (uint32_t)fd;
	cb.aio_buf = (uint64_t)(uintptr_t)buf;
	cb.aio_nbytes = len;
	if (syscall(SYS_io_submit, ctx, 1, cbs) != 1)
		wl_fail("io_submit: %s", strerror(errno));
}

static void reap(aio_context_t ctx, const char *buf, size_t len)
{
	struct io_event ev;

	if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		wl_fail("io_getevents: %s", strerror(errno));
	if (ev.res != (long long)len || buf[0] || buf[len - 1])
		wl_fail("the read gave %lld, buf[0] %d", (long long)ev.res, buf[0]);
}

static void check_ring(aio_context_t ctx, unsigned nr, unsigned at)
{
	const volatile struct ring *r = (const volatile struct ring *)(uintptr_t)ctx;

	if (r->magic != 0xa10a10a1u || r->nr != nr || r->head != at || r->tail != at)
		wl_fail("ring at %#llx: magic %#x, %u events, head %u, tail %u; want %u events, "
		        "head and tail %u",
		        (unsigned long long)ctx, r->magic, r->nr, r->head, r->tail, nr, at);
}

int main(int argc, char **argv)
{
	bool unreaped = argc > 1 && !strcmp(argv[1], "unreaped");
	aio_context_t ctx = 0;
	char buf[64];

	wl_init("wl-aio");
	if (syscall(SYS_io_setup, 128, &ctx) < 0)
		wl_fail("io_setup: %s", strerror(errno));
	fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		wl_fail("/dev/zero: %s", strerror(errno));
	for (int i = 0; i < 5; i++) {
		submit(ctx, buf, sizeof(buf));
		reap(ctx, buf, sizeof(buf));
	}
	unsigned nr = ((const struct ring *)(uintptr_t)ctx)->nr;
	check_ring(ctx, nr, 5);
	if (unreaped)
		submit(ctx, buf, sizeof(buf));
	wl_ready();
	wl_await_trigger();

	if (unreaped) {
		reap(ctx, buf, sizeof(buf));
		wl_pass();
	}
	check_ring(ctx, nr, 5);
	submit(ctx, buf, sizeof(buf));
	reap(ctx, buf, sizeof(buf));
	check_ring(ctx, nr, 6);
	wl_pass();
}
