#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shared/prefault.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Below this a few faults cost less than the call. */
#define PREFAULT_MIN (256u << 10)
/* A buffer that may hold a whole huge page (2 MiB on x86-64) */
#define HUGE_MIN (2u << 20)

void cd_prefault(void *p, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t b = ((uintptr_t)p + len) & ~(page - 1);

	if (len < PREFAULT_MIN || b <= a)
		return;
	/* in huge pages where whole ones fit (the system's THP "madvise"
	 * mode): the first writes after the populate cost per page too on a
	 * VM, and the 4 GiB mix manifest read in 23-45 ms instead of 46-81 */
	if (len >= HUGE_MIN)
		(void)madvise((void *)a, b - a, MADV_HUGEPAGE);
	(void)madvise((void *)a, b - a, MADV_POPULATE_WRITE);
}
