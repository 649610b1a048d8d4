#include "shared/fdio.h"

#include <errno.h>
#include <unistd.h>

int fd_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

int fd_write_all(int fd, const void *buf, size_t len, cd_err *err)
{
	int r = fd_write_full(fd, buf, len);

	return r < 0 ? cd_err_sys(err, -r, "write") : 0;
}

int fd_pread_all(int fd, void *buf, size_t len, off_t off, cd_err *err)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cd_err_sys(err, errno, "read");
		if (n == 0)
			return cd_err_set(err, EIO, "read: %zu bytes short (the file shrank)",
			                  len - done);
		done += (size_t)n;
	}
	return 0;
}
