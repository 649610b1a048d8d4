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
 * read " (deleted)" under the old name again. Shared mappings of a deleted
 * file (held by fds or not: then its entry has no open file, obj -1) are
 * of the same file: mem.c finds its entry here (cd_deleted_mapped) and the
 * restore maps the file made once for it (cd_deleted_map_fd, a ghost file
 * made at its path and unlinked when no fd holds it). A file deleted but
 * still linked elsewhere is left to the refusal of files.c (an fd) or
 * refused here (a mapping). */
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

/* A private mapping of it is refused by mem.c (before any fd); a shared
 * one is of the same entry. */
static int check_deleted(const struct cd_fd_dump *x, const struct cd_fd *d, cd_err *err)
{
	if (x->st->st_size > (off_t)CD_CONTENTS_MAX)
		return cd_err_set(err, EFBIG,
		                  "pid %d: fd %d (%s): a deleted file of %lld bytes, more than the "
		                  "limit of %llu bytes",
		                  x->t->pid, d->fd, x->link, (long long)x->st->st_size,
		                  (unsigned long long)CD_CONTENTS_MAX);
	return 0;
}

/* A shared mapping is matched to its file by path at restore: two deleted
 * files of one path where one is mapped would be ambiguous. link: the
 * path with " (deleted)"; mapped: whether the new entry is a mapping's
 * (1) or an fd's (-1: only mapped entries conflict with it). */
static int unique_path(const struct cd_image *img, const char *link, int mapped, cd_err *err)
{
	size_t n = strlen(link) - strlen(DELETED);

	for (size_t i = 0; i < img->ndeleted; i++) {
		const struct cd_deleted *f = &img->deleted[i];
		if (f->of != (int)i || strlen(f->path) != n || strncmp(f->path, link, n))
			continue;
		if (mapped > 0 || f->pending || f->obj < 0)
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "two deleted files of the path %s, one mapped shared: the "
			    "restore could not tell them apart",
			    f->path);
	}
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

/* A new entry at the end of the image's deleted files (an own one of no
 * open file until set), its index in *ret_i; NULL on an error. */
static struct cd_deleted *new_entry(struct cd_image *img, size_t *ret_i, cd_err *err)
{
	struct cd_deleted *n;

	if (img->ndeleted == CD_MAX_DELETED) {
		cd_err_set(err, EOPNOTSUPP, "more than %u deleted files", CD_MAX_DELETED);
		return NULL;
	}
	if (!(n = realloc(img->deleted, (img->ndeleted + 1) * sizeof(*n)))) {
		cd_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	img->deleted = n;
	*ret_i = img->ndeleted++;
	n[*ret_i] = (struct cd_deleted){.obj = -1, .of = (int)*ret_i};
	return &n[*ret_i];
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
	/* the entry a mapping made (no open file yet) becomes this open file's */
	if (of >= 0 && img->deleted[of].obj < 0) {
		img->deleted[of].obj = d->obj;
		return 0;
	}
	if (of < 0 && (r = unique_path(img, x->link, -1, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	size_t i;
	struct cd_deleted *f = new_entry(img, &i, err);
	if (!f)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	/* another open file of a file already in the image names its entry */
	f->obj = d->obj;
	f->of = of < 0 ? (int)i : of;
	if ((r = fill(x, f, err)) < 0 || (of < 0 && (r = save_contents(x, d, f, i, err)) < 0))
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	return 0;
}

/* ---- a shared mapping of a deleted file (mem.c) ---- */

/* Whether f is the file of a mapping named link ("PATH (deleted)"). */
static bool same_path(const struct cd_deleted *f, const char *link)
{
	size_t n = strlen(link);

	return n > strlen(DELETED) && strlen(f->path) == n - strlen(DELETED) &&
	       !strncmp(f->path, link, n - strlen(DELETED));
}

int cd_deleted_mapped(struct cd_image *img, pid_t pid, const struct cd_proc_map *m, cd_err *err)
{
	const char *how = m->shared ? "shared" : "private";
	struct stat st;
	size_t i;
	int r;

	_cleanup_close_ int fd = cd_contents_open_mapped(pid, m->start, m->end, err);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "pid %d: %s: fstat", pid, m->path);
	if (!S_ISREG(st.st_mode) || st.st_nlink)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: mapping %" PRIx64 "-%" PRIx64
		                  " (%s %s): a deleted file still linked elsewhere (%lu links) "
		                  "or not a regular file is not supported",
		                  pid, m->start, m->end, how, m->path, (unsigned long)st.st_nlink);
	int of = deleted_entry(img, &st);
	if (of >= 0) {
		if (!same_path(&img->deleted[of], m->path))
			return cd_err_set(err, EOPNOTSUPP,
			                  "pid %d: mapping %" PRIx64 "-%" PRIx64
			                  " (%s %s): a deleted file mapped under another name "
			                  "than %s is not supported",
			                  pid, m->start, m->end, how, m->path,
			                  img->deleted[of].path);
		return 0;
	}
	if ((r = unique_path(img, m->path, 1, err)) < 0)
		return cd_err_wrap(err, "pid %d: mapping %" PRIx64 "-%" PRIx64 " (%s %s)", pid,
		                   m->start, m->end, how, m->path);
	if (st.st_size > (off_t)CD_CONTENTS_MAX)
		return cd_err_set(err, EFBIG, "pid %d: %s: a deleted file of %lld bytes", pid,
		                  m->path, (long long)st.st_size);
	struct cd_deleted *f = new_entry(img, &i, err);
	if (!f)
		return cd_err_wrap(err, "pid %d: %s", pid, m->path);
	*f = (struct cd_deleted){.obj = -1,
	                         .of = (int)i,
	                         .mode = st.st_mode & 07777,
	                         .uid = st.st_uid,
	                         .gid = st.st_gid,
	                         .ino = (int64_t)st.st_ino,
	                         .dev = (int64_t)st.st_dev,
	                         .len = (size_t)st.st_size,
	                         .pending = true,
	                         .path = strndup(m->path, strlen(m->path) - strlen(DELETED))};
	if (!f->path)
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

int cd_deleted_save_mapped(struct cd_dump_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	for (size_t j = 0; j < t->nvmas; j++) {
		const struct cd_vma *v = &t->vmas[j];
		for (size_t i = 0; cd_vma_deleted(v) && i < ctx->img->ndeleted; i++) {
			struct cd_deleted *f = &ctx->img->deleted[i];
			int r;
			if (!f->pending || !same_path(f, v->path))
				continue;
			if ((r = cd_contents_save_mapped(ctx->dirfd, t->pid, v, "deleted", i,
			                                 f->len, &f->csum, err)) < 0)
				return r;
			f->pending = false;
		}
	}
	return 0;
}

/* Not the kernel's names of objects of no path that maps also shows
 * deleted: memfds, SysV segments ("/SYSV%08x"), AIO rings ("/[aio]"),
 * shared anonymous memory ("/dev/zero"). */
bool cd_deleted_path(const char *path)
{
	size_t n = path ? strlen(path) : 0;

	return n > strlen(DELETED) + 1 && path[0] == '/' && strncmp(path, "/memfd:", 7) &&
	       strncmp(path, "/SYSV", 5) && strncmp(path, "/[", 2) &&
	       strncmp(path, "/dev/zero (deleted)", 19) &&
	       !strcmp(path + n - strlen(DELETED), DELETED);
}

bool cd_vma_deleted(const struct cd_vma *v)
{
	return (v->kind == CD_VMA_FILE_SHARED || v->kind == CD_VMA_FILE) &&
	       cd_deleted_path(v->path);
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
static int make_deleted(const struct cd_image *img, int dirfd, size_t i, cd_err *err)
{
	const struct cd_deleted *f = &img->deleted[i];
	char name[64];
	int r;

	_cleanup_close_ int fd = make_file(f, err);
	if (fd < 0)
		return fd;
	cd_contents_file("deleted", i, name, sizeof(name));
	r = f->data ? fd_write_all(fd, f->data, f->len, err)
	            : cd_contents_load(dirfd, name, fd, f->len, err);
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
	if (made[f->of] < 0 &&
	    (made[f->of] = make_deleted(o->img, o->dirfd, (size_t)f->of, err)) < 0)
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

int cd_deleted_map_fd(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                      const char *vpath, cd_err *err)
{
	char path[64];
	int fd;

	for (size_t i = 0; i < img->ndeleted; i++) {
		const struct cd_deleted *f = &img->deleted[i];
		if (f->of != (int)i || !same_path(f, vpath))
			continue;
		/* the file an open file of it is of, else made here */
		for (size_t k = i; k < img->ndeleted; k++) {
			int slot = img->deleted[k].of == (int)i && img->deleted[k].obj >= 0
			               ? cd_files_obj_fd(objs, img->deleted[k].obj)
			               : -1;
			if (slot < 0)
				continue;
			snprintf(path, sizeof(path), "/proc/self/fd/%d", slot);
			fd = open(path, O_RDWR | O_CLOEXEC);
			return fd < 0 ? cd_err_sys(err, errno, "deleted file %s: open", f->path)
			              : fd;
		}
		return make_deleted(img, dirfd, i, err);
	}
	return cd_err_set(err, EINVAL, "mapped file %s: no deleted file of that path in the image",
	                  vpath);
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
