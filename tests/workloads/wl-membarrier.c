/* wl-membarrier: registers for the private expedited membarrier (plain and SYNC_CORE) and the
 * global expedited one. After the trigger MEMBARRIER_CMD_GET_REGISTRATIONS (Linux 6.3) must give
 * the same set, and a private expedited barrier must work (it fails with EPERM unregistered). */
#include <linux/membarrier.h>
#include <sys/syscall.h>

#include "wl.h"

#define CMD_GET_REGISTRATIONS (1 << 9)

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

int main(void)
{
	static const int reg[] = {MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	                          MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
	                          MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED};
	long want = 0, got;

	wl_init("wl-membarrier");
	for (size_t i = 0; i < WL_ARRAY_SIZE(reg); i++) {
		if (membarrier(reg[i]) < 0)
			wl_fail("membarrier register %#x: %s", reg[i], strerror(errno));
		want |= reg[i];
	}
	got = membarrier(CMD_GET_REGISTRATIONS);
	if (got != want)
		wl_fail("registrations %#lx right after registering %#lx", got, want);
	wl_ready();
	wl_await_trigger();
	got = membarrier(CMD_GET_REGISTRATIONS);
	if (got != want)
		wl_fail("registrations %#lx, want %#lx", got, want);
	if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) < 0)
		wl_fail("private expedited barrier: %s", strerror(errno));
	if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) < 0)
		wl_fail("private expedited sync-core barrier: %s", strerror(errno));
	wl_pass();
}
