/* memfds (memfd_create) held by fds: an object of no path, so the image
 * keeps its contents (hex in the manifest, as unread pipe data, bounded by
 * CD_MEMFD_BYTES), name, seals, permission bits and owner, one entry per
 * open file (the fd's obj); the restore makes a new memfd of that name and
 * puts it all back. Not supported, refused at dump by name: a memfd of huge
 * pages (MFD_HUGETLB), one opened more than once (separate open files of one
 * memfd would become separate memfds) and one the tree also maps (the
 * mapping is restored as shared anonymous memory, mem.c, and would no
 * longer be the fd's memfd). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"
#include "shared/fdio.h"

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define MEMFD_PREFIX "/memfd:"
#define DELETED      " (deleted)"
#define MEMFD_SEALS                                                                                \
	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE |          \
	 F_SEAL_EXEC)

/* ---- dump ---- */

static bool memfd_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	size_t n = strlen(x->link);

	return S_ISREG(x->st->st_mode) && !strncmp(x->link, MEMFD_PREFIX, strlen(MEMFD_PREFIX)) &&
	       n > strlen(MEMFD_PREFIX) + strlen(DELETED) &&
	       !strcmp(x->link + n - strlen(DELETED), DELETED);
}

/* Refusals, by name, before anything is copied. */
static int check_memfd(const struct cd_fd_dump *x, const struct cd_fd *d, int fd, cd_err *err)
{
	const struct cd_image *img = x->ctx->img;
	struct statfs sf;
	pid_t mapper = 0;
	int r;

	if (fstatfs(fd, &sf) < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d (%s): statfs", x->t->pid, d->fd,
		                  x->link);
	if (sf.f_type == HUGETLBFS_MAGIC)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: fd %d (%s): a memfd of huge pages (MFD_HUGETLB) is not "
		                  "supported",
		                  x->t->pid, d->fd, x->link);
	if (sf.f_type != TMPFS_MAGIC)
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): not a memfd: unsupported",
		                  x->t->pid, d->fd, x->link);
	for (size_t i = 0; i < img->nmemfds; i++)
		if (img->memfds[i].ino == (int64_t)x->st->st_ino)
			return cd_err_set(err, EOPNOTSUPP,
			                  "pid %d: fd %d (%s): a memfd opened more than once (two "
			                  "open files of one memfd) is not supported",
			                  x->t->pid, d->fd, x->link);
	if ((r = cd_contents_mapper(img, x->st->st_ino, MEMFD_PREFIX, true, &mapper, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	if (r > 0)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: fd %d (%s): a memfd both held by an fd and mapped (by pid "
		    "%d) is not supported",
		    x->t->pid, d->fd, x->link, mapper);
	if (x->st->st_size > (off_t)CD_MEMFD_BYTES)
		return cd_err_set(
		    err, EFBIG,
		    "pid %d: fd %d (%s): a memfd of %lld bytes, more than the limit of "
		    "%u bytes",
		    x->t->pid, d->fd, x->link, (long long)x->st->st_size, CD_MEMFD_BYTES);
	return 0;
}

static int fill(const struct cd_fd_dump *x, struct cd_memfd *m, int fd, cd_err *err)
{
	const char *name = x->link + strlen(MEMFD_PREFIX);
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0)
		return cd_err_sys(err, errno, "F_GET_SEALS");
	m->seals = (uint32_t)seals;
	m->mode = x->st->st_mode & 07777;
	m->uid = x->st->st_uid;
	m->gid = x->st->st_gid;
	m->ino = (int64_t)x->st->st_ino;
	m->name = strndup(name, strlen(name) - strlen(DELETED));
	m->len = (size_t)x->st->st_size;
	if (!m->name)
		return cd_err_set(err, ENOMEM, "out of memory");
	return cd_contents_read(fd, m->len, &m->data, err);
}

static int memfd_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	struct cd_image *img = x->ctx->img;
	char path[64];
	int r;

	if (!x->new_obj) /* the open file's first fd made its entry */
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", x->t->pid, d->fd);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d (%s): open", x->t->pid, d->fd,
		                  x->link);
	if ((r = check_memfd(x, d, fd, err)) < 0)
		return r;
	if (img->nmemfds == CD_MAX_MEMFDS)
		return cd_err_set(err, EOPNOTSUPP, "pid %d: fd %d (%s): more than %u memfds",
		                  x->t->pid, d->fd, x->link, CD_MAX_MEMFDS);
	struct cd_memfd *nm = realloc(img->memfds, (img->nmemfds + 1) * sizeof(*nm));
	if (!nm)
		return cd_err_set(err, ENOMEM, "out of memory");
	img->memfds = nm;
	struct cd_memfd *m = &img->memfds[img->nmemfds++];
	*m = (struct cd_memfd){.obj = d->obj};
	if ((r = fill(x, m, fd, err)) < 0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	return 0;
}

/* ---- restore, in the controller ---- */

const struct cd_memfd *cd_memfd_of(const struct cd_image *img, int obj)
{
	for (size_t i = 0; i < img->nmemfds; i++)
		if (img->memfds[i].obj == obj)
			return &img->memfds[i];
	return NULL;
}

/* Permission bits and owner, before the seals (F_SEAL_EXEC forbids a
 * chmod). */
static int set_attrs(int fd, const struct cd_memfd *m, cd_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "fstat");
	if ((st.st_mode & 07777) != m->mode && fchmod(fd, m->mode) < 0)
		return cd_err_sys(err, errno, "chmod %o", m->mode);
	if ((st.st_uid != m->uid || st.st_gid != m->gid) && fchown(fd, m->uid, m->gid) < 0)
		return cd_err_sys(err, errno, "chown %u:%u", m->uid, m->gid);
	return 0;
}

static int set_seals(int fd, const struct cd_memfd *m, cd_err *err)
{
	int now = fcntl(fd, F_GET_SEALS);

	if (now < 0)
		return cd_err_sys(err, errno, "F_GET_SEALS");
	/* vm.memfd_noexec may seal what the dumped memfd had not */
	if ((uint32_t)now & ~m->seals)
		return cd_err_set(err, EPERM, "seals %#x on a new memfd, the image has %#x", now,
		                  m->seals);
	if ((uint32_t)now != m->seals &&
	    fcntl(fd, F_ADD_SEALS, (int)(m->seals & ~(uint32_t)now)) < 0)
		return cd_err_sys(err, errno, "F_ADD_SEALS %#x", m->seals);
	return 0;
}

static int memfd_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	const struct cd_memfd *m = cd_memfd_of(o->img, d->obj);
	int r;

	if (!m)
		return cd_err_set(err, EINVAL, "fd %d: no memfd of open file %d", d->fd, d->obj);
	_cleanup_close_ int fd = memfd_create(m->name, MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "memfd_create %s", m->name);
	if ((r = fd_write_all(fd, m->data, m->len, err)) < 0 || (r = set_attrs(fd, m, err)) < 0 ||
	    (r = set_seals(fd, m, err)) < 0)
		return cd_err_wrap(err, "memfd %s", m->name);
	int nfd = cd_contents_access_mode(TAKE_FD(fd), d, err);
	if (nfd < 0)
		return cd_err_wrap(err, "memfd %s", m->name);
	fd = nfd;
	if (lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return cd_err_sys(err, errno, "memfd %s: seek", m->name);
	if ((r = cd_fd_set_flags(fd, d, err)) < 0)
		return cd_err_wrap(err, "memfd %s", m->name);
	return TAKE_FD(fd);
}

/* ---- decoder ---- */

static int memfd_check(const struct cd_fd_check *c, const struct cd_task *t, const struct cd_fd *d,
                       cd_err *err)
{
	if (!cd_memfd_of(c->img, d->obj))
		return cd_err_set(err, EINVAL, "pid %d: fd %d: field \"obj\": no memfd %d", t->pid,
		                  d->fd, d->obj);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_memfd = {.kind = CD_FD_MEMFD,
                                          .name = "memfd",
                                          .has_owner = true,
                                          .claims = memfd_claims,
                                          .dump = memfd_dump,
                                          .open = memfd_open,
                                          .check = memfd_check};
