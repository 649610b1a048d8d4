/* Regular files deleted while open (the fd's link ends in " (deleted)" and
 * the file has no link left): nothing on disk leads to them any more, so
 * the image keeps their contents (hex in the manifest, bounded by
 * CD_DELETED_BYTES), path, permission bits and owner, one entry per open
 * file (the fd's obj). The restore creates the file again under its path
 * (which must be free: another file there now fails the restore naming it),
 * unlinks it at once, and puts the rest back: the fd reads " (deleted)"
 * under its old name again. Refused at dump by name: one larger than the
 * limit (with its size), opened more than once (separate open files would
 * become separate files) or also mapped by the tree. A file deleted but
 * still linked elsewhere is left to the refusal of files.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"
#include "shared/fdio.h"

#define DELETED " (deleted)"

/* ---- dump ---- */

static bool deleted_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	size_t n = strlen(x->link);

	return S_ISREG(x->st->st_mode) && x->st->st_nlink == 0 && x->link[0] == '/' &&
	       strncmp(x->link, "/memfd:", 7) && n > strlen(DELETED) + 1 &&
	       !strcmp(x->link + n - strlen(DELETED), DELETED);
}

static int check_deleted(const struct cd_fd_dump *x, const struct cd_fd *d, cd_err *err)
{
	const struct cd_image *img = x->ctx->img;
	pid_t mapper = 0;
	int r;

	for (size_t i = 0; i < img->ndeleted; i++)
		if (img->deleted[i].ino == (int64_t)x->st->st_ino &&
		    img->deleted[i].dev == (int64_t)x->st->st_dev)
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "pid %d: fd %d (%s): a deleted file opened more than once "
			    "(two open files of it) is not supported",
			    x->t->pid, d->fd, x->link);
	if ((r = cd_contents_mapper(img, x->st->st_ino, x->link, false, &mapper, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	if (r > 0)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: fd %d (%s): a deleted file both held by an fd and mapped "
		    "(by pid %d) is not supported",
		    x->t->pid, d->fd, x->link, mapper);
	if (x->st->st_size > (off_t)CD_DELETED_BYTES)
		return cd_err_set(err, EFBIG,
		                  "pid %d: fd %d (%s): a deleted file of %lld bytes, more than the "
		                  "limit of %u bytes",
		                  x->t->pid, d->fd, x->link, (long long)x->st->st_size,
		                  CD_DELETED_BYTES);
	return 0;
}

static int fill(const struct cd_fd_dump *x, struct cd_deleted *f, int fd, cd_err *err)
{
	f->mode = x->st->st_mode & 07777;
	f->uid = x->st->st_uid;
	f->gid = x->st->st_gid;
	f->ino = (int64_t)x->st->st_ino;
	f->dev = (int64_t)x->st->st_dev;
	f->path = strndup(x->link, strlen(x->link) - strlen(DELETED));
	f->len = (size_t)x->st->st_size;
	if (!f->path)
		return cd_err_set(err, ENOMEM, "out of memory");
	return cd_contents_read(fd, f->len, &f->data, err);
}

static int deleted_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	struct cd_image *img = x->ctx->img;
	char path[64];
	int r;

	if (!x->new_obj) /* the open file's first fd made its entry */
		return 0;
	if ((r = check_deleted(x, d, err)) < 0)
		return r;
	if (img->ndeleted == CD_MAX_DELETED)
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): more than %u deleted files",
		                  x->t->pid, d->fd, x->link, CD_MAX_DELETED);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", x->t->pid, d->fd);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d (%s): open", x->t->pid, d->fd,
		                  x->link);
	struct cd_deleted *nd = realloc(img->deleted, (img->ndeleted + 1) * sizeof(*nd));
	if (!nd)
		return cd_err_set(err, ENOMEM, "out of memory");
	img->deleted = nd;
	struct cd_deleted *f = &img->deleted[img->ndeleted++];
	*f = (struct cd_deleted){.obj = d->obj};
	if ((r = fill(x, f, fd, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	return 0;
}

/* ---- restore, in the controller ---- */

const struct cd_deleted *cd_deleted_of(const struct cd_image *img, int obj)
{
	for (size_t i = 0; i < img->ndeleted; i++)
		if (img->deleted[i].obj == obj)
			return &img->deleted[i];
	return NULL;
}

static int set_attrs(int fd, const struct cd_deleted *f, cd_err *err)
{
	if (fchown(fd, f->uid, f->gid) < 0 && errno != EPERM)
		return cd_err_sys(err, errno, "chown %u:%u", f->uid, f->gid);
	if (fchmod(fd, f->mode) < 0)
		return cd_err_sys(err, errno, "chmod %o", f->mode);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "fstat");
	if (st.st_uid != f->uid || st.st_gid != f->gid)
		return cd_err_set(err, EPERM, "owner %u:%u, not the image's %u:%u",
		                  (unsigned)st.st_uid, (unsigned)st.st_gid, f->uid, f->gid);
	return 0;
}

/* Made under its path, then unlinked before anything can fail: never left
 * behind. */
static int make_file(const struct cd_deleted *f, cd_err *err)
{
	int fd = open(f->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0 && errno == EEXIST)
		return cd_err_set(err, EEXIST,
		                  "another file is now at %s: the deleted file cannot be made "
		                  "again under its name; move that one away",
		                  f->path);
	if (fd < 0)
		return cd_err_sys(err, errno, "create %s", f->path);
	if (unlink(f->path) < 0) {
		int e = errno;
		close(fd);
		return cd_err_sys(err, e, "unlink %s", f->path);
	}
	return fd;
}

static int deleted_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	const struct cd_deleted *f = cd_deleted_of(o->img, d->obj);
	int r;

	if (!f)
		return cd_err_set(err, EINVAL, "fd %d: no deleted file of open file %d", d->fd,
		                  d->obj);
	_cleanup_close_ int fd = make_file(f, err);
	if (fd < 0)
		return fd;
	if ((r = fd_write_all(fd, f->data, f->len, err)) < 0 || (r = set_attrs(fd, f, err)) < 0)
		return cd_err_wrap(err, "deleted file %s", f->path);
	int nfd = cd_contents_access_mode(TAKE_FD(fd), d, err);
	if (nfd < 0)
		return cd_err_wrap(err, "deleted file %s", f->path);
	fd = nfd;
	if (lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return cd_err_sys(err, errno, "deleted file %s: seek", f->path);
	if ((r = cd_fd_set_flags(fd, d, err)) < 0)
		return cd_err_wrap(err, "deleted file %s", f->path);
	return TAKE_FD(fd);
}

/* ---- decoder ---- */

static int deleted_check(const struct cd_fd_check *c, const struct cd_task *t,
                         const struct cd_fd *d, cd_err *err)
{
	if (!cd_deleted_of(c->img, d->obj))
		return cd_err_set(err, EINVAL, "pid %d: fd %d: field \"obj\": no deleted file %d",
		                  t->pid, d->fd, d->obj);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_deleted = {.kind = CD_FD_DELETED,
                                            .name = "deleted file",
                                            .has_owner = true,
                                            .claims = deleted_claims,
                                            .dump = deleted_dump,
                                            .open = deleted_open,
                                            .check = deleted_check};
