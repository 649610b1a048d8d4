/* wl-aio: an AIO context (io_setup of 128 events: its ring is a shared mapping "/[aio]")
 * with no request in flight. The engine does not restore AIO rings: the dump must refuse the
 * mapping by name, and the workload runs on; after the trigger the context still takes a
 * request (a read of /dev/zero) and gives its completion: PASS. */
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>

#include "wl.h"

int main(void)
{
	aio_context_t ctx = 0;
	char buf[64];
	struct iocb cb = {0}, *cbs[1] = {&cb};
	struct io_event ev;
	int fd;

	wl_init("wl-aio");
	if (syscall(SYS_io_setup, 128, &ctx) < 0)
		wl_fail("io_setup: %s", strerror(errno));
	fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		wl_fail("/dev/zero: %s", strerror(errno));
	wl_ready();
	wl_await_trigger();

	memset(buf, 1, sizeof(buf));
	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_fildes = (uint32_t)fd;
	cb.aio_buf = (uint64_t)(uintptr_t)buf;
	cb.aio_nbytes = sizeof(buf);
	if (syscall(SYS_io_submit, ctx, 1, cbs) != 1)
		wl_fail("io_submit: %s", strerror(errno));
	if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		wl_fail("io_getevents: %s", strerror(errno));
	if (ev.res != sizeof(buf) || buf[0] || buf[sizeof(buf) - 1])
		wl_fail("the read gave %lld, buf[0] %d", (long long)ev.res, buf[0]);
	wl_pass();
}
