/* Large fresh buffers faulted in with one call before they are written. */
#pragma once

#include <stddef.h>

/* Faults in the whole pages of [p, p+len) (MADV_POPULATE_WRITE) when the
 * buffer is large, in transparent huge pages where whole ones fit
 * (MADV_HUGEPAGE): one system call instead of a fault per page when it is
 * first written, which on a virtual machine can cost more than the writes
 * themselves (docs/engine.md, "Fresh memory in the controller"). Best
 * effort, and no byte changes: where the kernel lacks it, the writes fault
 * the pages in as before. */
void cd_prefault(void *p, size_t len);
