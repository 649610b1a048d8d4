/* Files reopened by their path: regular files (CD_FD_REG, at their
 * position), directories (CD_FD_DIR) and O_PATH fds of anything with a path
 * (CD_FD_PATH: O_PATH opens nothing of the object, so any kind reopens). The
 * controller opens each once; dumpcheck.c has refused at dump a path that
 * no longer leads to the file. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

int cd_fd_reopen(const struct cd_fd *d, cd_err *err)
{
	int flags = (d->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_NOCTTY;
	_cleanup_close_ int fd = open(d->path, flags);
	int r;

	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", d->path);
	if (d->kind == CD_FD_REG && lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return cd_err_sys(err, errno, "seek %s", d->path);
	if ((r = cd_fd_set_flags(fd, d, err)) < 0)
		return cd_err_wrap(err, "%s", d->path);
	return TAKE_FD(fd);
}

static int reopen(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	return cd_fd_reopen(d, err);
}

static bool reg_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return S_ISREG(x->st->st_mode) && x->link[0] == '/';
}

static bool dir_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return S_ISDIR(x->st->st_mode) && x->link[0] == '/';
}

const struct cd_fd_ops cd_fd_ops_reg = {.kind = CD_FD_REG,
                                        .name = "regular file",
                                        .has_path = true,
                                        .has_owner = true,
                                        .claims = reg_claims,
                                        .open = reopen};

const struct cd_fd_ops cd_fd_ops_dir = {.kind = CD_FD_DIR,
                                        .name = "directory",
                                        .has_path = true,
                                        .has_owner = true,
                                        .claims = dir_claims,
                                        .open = reopen};

static bool path_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return d->flags & O_PATH;
}

static int path_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	if (x->link[0] != '/')
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): O_PATH without a path",
		                  x->t->pid, d->fd, x->link);
	if (S_ISLNK(x->st->st_mode))
		d->flags |= O_NOFOLLOW;
	return 0;
}

/* With its open flags only: O_PATH has no status flags of its own. */
static int path_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int fd = open(d->path, d->flags & (O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));

	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", d->path);
	return fd;
}

const struct cd_fd_ops cd_fd_ops_path = {.kind = CD_FD_PATH,
                                         .name = "O_PATH",
                                         .has_path = true,
                                         .claims = path_claims,
                                         .dump = path_dump,
                                         .open = path_open};
