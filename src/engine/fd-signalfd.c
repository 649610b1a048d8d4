/* signalfds (CD_FD_SIGNALFD): the mask of signals it reads, from fdinfo
 * ("sigmask"); the controller makes it again with signalfd(-1, mask),
 * once per open file, and the tasks inherit it (a signalfd reads the
 * signals of whichever task reads it, not of its maker). SFD_NONBLOCK and
 * SFD_CLOEXEC are the fd's status and fd flags, restored as every fd's. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <inttypes.h>
#include <unistd.h>

#include "engine/internal.h"

static bool signalfd_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return !strcmp(x->link, "anon_inode:[signalfd]");
}

static int signalfd_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	return cd_proc_fdinfo_u64(x->t->pid, d->fd, "sigmask", 16, &d->sigmask, err);
}

/* The raw syscall takes the kernel's 64-bit mask as it was shown. */
static int signalfd_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	uint64_t mask = d->sigmask;
	int fd, r;

	fd = (int)syscall(SYS_signalfd4, -1, &mask, sizeof(mask), SFD_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "signalfd(%#" PRIx64 ")", d->sigmask);
	if ((r = cd_fd_set_flags(fd, d, err)) < 0) {
		close(fd);
		return r;
	}
	return fd;
}

const struct cd_fd_ops cd_fd_ops_signalfd = {.kind = CD_FD_SIGNALFD,
                                             .name = "signalfd",
                                             .has_owner = true,
                                             .claims = signalfd_claims,
                                             .dump = signalfd_dump,
                                             .open = signalfd_open};
