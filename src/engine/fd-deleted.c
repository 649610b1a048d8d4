/* Regular files deleted while open (the fd's link ends in " (deleted)" and
 * the file has no link left): nothing on disk leads to them any more, so
 * the image keeps their contents (streamed into the image file
 * deleted-INDEX.img, of any size), path, permission bits and owner. One
 * entry per open file (the fd's obj); the first open file of a file holds
 * the file itself, every other open file of it (opened twice before the
 * unlink, or again through /proc/PID/fd/N) names that entry in "of". The
 * restore creates the file again under its path (which must be free:
 * another file there now fails the restore naming it), unlinks it at once,
 * puts the rest back and opens it again for each other open file: the fds
 * read " (deleted)" under the old name again. Refused at dump by name: one
 * also mapped by the tree. A file deleted but still linked elsewhere is
 * left to the refusal of files.c. */
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

	if ((r = cd_contents_mapper(img, x->st->st_ino, x->link, false, &mapper, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	if (r > 0)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: fd %d (%s): a deleted file both held by an fd and mapped "
		    "(by pid %d) is not supported",
		    x->t->pid, d->fd, x->link, mapper);
	if (x->st->st_size > (off_t)CD_CONTENTS_MAX)
		return cd_err_set(err, EFBIG,
		                  "pid %d: fd %d (%s): a deleted file of %lld bytes, more than the "
		                  "limit of %llu bytes",
		                  x->t->pid, d->fd, x->link, (long long)x->st->st_size,
		                  (unsigned long long)CD_CONTENTS_MAX);
	return 0;
}

/* The entry of the file (dev, ino) already in the image, or -1. */
static int deleted_entry(const struct cd_image *img, const struct stat *st)
{
	for (size_t i = 0; i < img->ndeleted; i++)
		if (img->deleted[i].of == (int)i && img->deleted[i].ino == (int64_t)st->st_ino &&
		    img->deleted[i].dev == (int64_t)st->st_dev)
			return (int)i;
	return -1;
}

static int fill(const struct cd_fd_dump *x, struct cd_deleted *f, cd_err *err)
{
	f->mode = x->st->st_mode & 07777;
	f->uid = x->st->st_uid;
	f->gid = x->st->st_gid;
	f->ino = (int64_t)x->st->st_ino;
	f->dev = (int64_t)x->st->st_dev;
	f->path = strndup(x->link, strlen(x->link) - strlen(DELETED));
	if (!f->path)
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

/* The file's contents, streamed into its file of the image. */
static int save_contents(const struct cd_fd_dump *x, const struct cd_fd *d, struct cd_deleted *f,
                         size_t i, cd_err *err)
{
	char path[64], name[64];

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", x->t->pid, d->fd);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "open");
	f->len = (size_t)x->st->st_size;
	cd_contents_file("deleted", i, name, sizeof(name));
	return cd_contents_save(x->ctx->dirfd, name, fd, f->len, &f->csum, err);
}

static int deleted_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	struct cd_image *img = x->ctx->img;
	int r, of;

	if (!x->new_obj) /* the open file's first fd made its entry */
		return 0;
	of = deleted_entry(img, x->st);
	if (of < 0 && (r = check_deleted(x, d, err)) < 0)
		return r;
	if (img->ndeleted == CD_MAX_DELETED)
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): more than %u deleted files",
		                  x->t->pid, d->fd, x->link, CD_MAX_DELETED);
	struct cd_deleted *nd = realloc(img->deleted, (img->ndeleted + 1) * sizeof(*nd));
	if (!nd)
		return cd_err_set(err, ENOMEM, "out of memory");
	img->deleted = nd;
	size_t i = img->ndeleted++;
	struct cd_deleted *f = &img->deleted[i];
	/* another open file of a file already in the image names its entry */
	*f = (struct cd_deleted){.obj = d->obj, .of = of < 0 ? (int)i : of};
	if ((r = fill(x, f, err)) < 0 || (of < 0 && (r = save_contents(x, d, f, i, err)) < 0))
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

/* The file of entry i (its own), made once with its contents, owner and
 * mode, read-write. */
static int make_deleted(const struct cd_fd_open *o, size_t i, cd_err *err)
{
	const struct cd_deleted *f = &o->img->deleted[i];
	char name[64];
	int r;

	_cleanup_close_ int fd = make_file(f, err);
	if (fd < 0)
		return fd;
	cd_contents_file("deleted", i, name, sizeof(name));
	r = f->data ? fd_write_all(fd, f->data, f->len, err)
	            : cd_contents_load(o->dirfd, name, fd, f->len, err);
	if (r < 0 || (r = set_attrs(fd, f, err)) < 0)
		return cd_err_wrap(err, "deleted file %s", f->path);
	return TAKE_FD(fd);
}

static int deleted_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	const struct cd_deleted *f = cd_deleted_of(o->img, d->obj);
	int r, *made;

	if (!f)
		return cd_err_set(err, EINVAL, "fd %d: no deleted file of open file %d", d->fd,
		                  d->obj);
	if (!(made = cd_contents_made(o, CD_FD_DELETED, o->img->ndeleted, err)))
		return -ENOMEM;
	if (made[f->of] < 0 && (made[f->of] = make_deleted(o, (size_t)f->of, err)) < 0)
		return made[f->of];
	_cleanup_close_ int fd =
	    cd_contents_open_file(made[f->of], &o->img->deleted[f->of] == f, d, err);
	if (fd < 0)
		return cd_err_wrap(err, "deleted file %s", f->path);
	if (lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return cd_err_sys(err, errno, "deleted file %s: seek", f->path);
	if ((r = cd_fd_set_flags(fd, d, err)) < 0)
		return cd_err_wrap(err, "deleted file %s", f->path);
	return TAKE_FD(fd);
}

static void deleted_open_done(struct cd_fd_open *o)
{
	cd_contents_made_free(o, CD_FD_DELETED);
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
                                            .open_done = deleted_open_done,
                                            .check = deleted_check};
