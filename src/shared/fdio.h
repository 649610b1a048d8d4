/* Whole reads and writes: short counts and EINTR handled once, here. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "shared/error.h"

/* Writes all len bytes of buf to fd: 0, or -errno for callers that keep
 * errno codes (the job and attach stream framing). */
int fd_write_full(int fd, const void *buf, size_t len);

/* Writes all len bytes of buf to fd. */
int fd_write_all(int fd, const void *buf, size_t len, cd_err *err);

/* Reads exactly len bytes of fd from offset off; a file that ends sooner
 * (it shrank while we read) is EIO, saying how much was missing. */
int fd_pread_all(int fd, void *buf, size_t len, off_t off, cd_err *err);
