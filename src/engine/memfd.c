/* memfds (memfd_create): an object of no path, so the image keeps its
 * contents (streamed into the image file memfd-INDEX.img, of any size),
 * name, seals, permission bits and owner. One entry per open file (the
 * fd's obj); the first open file of a memfd holds the memfd itself, every
 * other open file of it (a second open of /proc/PID/fd/N) names that entry
 * in "of". A memfd the tree only maps (its fds closed after the mmap) has
 * an entry of its own with no open file (obj -1, made by mem.c through
 * cd_memfd_mapped, its contents read through /proc/PID/map_files, which
 * opens the file itself, not a private mapping's copied pages). The
 * restore makes one new memfd of that name per memfd, puts it all back,
 * and opens it again for each other open file. A memfd the tree also maps
 * is one object with its mappings: the entry names their shmid (the
 * inode), and the restore makes them of this memfd (cd_mem_shm_prepare),
 * not of a new one, shared or private (mem.c: the memfd mapped privately,
 * its copy-on-write pages the task's); its seals come once every mapping
 * is made (cd_memfd_seal_mapped), and one no fd holds is closed by the
 * controller once the tree is made. Not supported, refused at dump by
 * name: a memfd of huge pages (MFD_HUGETLB). */
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

/* The refusals of a memfd open at fd (status st), an fd's or a mapping's. */
static int check_file(int fd, const struct stat *st, cd_err *err)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return cd_err_sys(err, errno, "statfs");
	if (sf.f_type == HUGETLBFS_MAGIC)
		return cd_err_set(err, EOPNOTSUPP,
		                  "a memfd of huge pages (MFD_HUGETLB) is not supported");
	if (sf.f_type != TMPFS_MAGIC || !S_ISREG(st->st_mode))
		return cd_err_set(err, EOPNOTSUPP, "not a memfd: unsupported");
	if (st->st_size > (off_t)CD_CONTENTS_MAX)
		return cd_err_set(err, EFBIG,
		                  "a memfd of %lld bytes, more than the limit of %llu bytes",
		                  (long long)st->st_size, (unsigned long long)CD_CONTENTS_MAX);
	return 0;
}

/* Refusals, by name, before anything is copied; 1 when the tree maps the
 * memfd too. */
static int check_memfd(const struct cd_fd_dump *x, const struct cd_fd *d, int fd, cd_err *err)
{
	pid_t mapper = 0;
	int r;

	if ((r = check_file(fd, x->st, err)) < 0 ||
	    (r = cd_contents_mapper(x->ctx->img, x->st->st_ino, MEMFD_PREFIX, true, &mapper, err)) <
	        0)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	return r;
}

/* The entry of the memfd of inode ino already in the image, or -1. */
static int memfd_entry(const struct cd_image *img, int64_t ino)
{
	for (size_t i = 0; i < img->nmemfds; i++)
		if (img->memfds[i].of == (int)i && img->memfds[i].ino == ino)
			return (int)i;
	return -1;
}

/* A new entry at the end of the image's memfds (an own one of no open file
 * until set), its index in *ret_i; NULL on an error. */
static struct cd_memfd *new_entry(struct cd_image *img, size_t *ret_i, cd_err *err)
{
	struct cd_memfd *n;

	if (img->nmemfds == CD_MAX_MEMFDS) {
		cd_err_set(err, EOPNOTSUPP, "more than %u memfds", CD_MAX_MEMFDS);
		return NULL;
	}
	if (!(n = realloc(img->memfds, (img->nmemfds + 1) * sizeof(*n)))) {
		cd_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	img->memfds = n;
	*ret_i = img->nmemfds++;
	n[*ret_i] = (struct cd_memfd){.obj = -1, .of = (int)*ret_i};
	return &n[*ret_i];
}

/* Name (from link, "/memfd:NAME (deleted)"), seals, mode, owner and inode
 * of the memfd open at fd, of status st. */
static int fill(struct cd_memfd *m, const char *link, const struct stat *st, int fd, cd_err *err)
{
	const char *name = link + strlen(MEMFD_PREFIX);
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0)
		return cd_err_sys(err, errno, "F_GET_SEALS");
	m->seals = (uint32_t)seals;
	m->mode = st->st_mode & 07777;
	m->uid = st->st_uid;
	m->gid = st->st_gid;
	m->ino = (int64_t)st->st_ino;
	m->name = strndup(name, strlen(name) - strlen(DELETED));
	if (!m->name)
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

/* The memfd's contents, streamed into its file of the image. */
static int save_contents(const struct cd_fd_dump *x, struct cd_memfd *m, size_t i, int fd,
                         cd_err *err)
{
	char name[64];

	m->len = (size_t)x->st->st_size;
	cd_contents_file("memfd", i, name, sizeof(name));
	return cd_contents_save(x->ctx->dirfd, name, fd, m->len, &m->csum, err);
}

static int memfd_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	struct cd_image *img = x->ctx->img;
	char path[64];
	int r, of;

	if (!x->new_obj) /* the open file's first fd made its entry */
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", x->t->pid, d->fd);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d (%s): open", x->t->pid, d->fd,
		                  x->link);
	of = memfd_entry(img, (int64_t)x->st->st_ino);
	int mapped = of < 0 ? check_memfd(x, d, fd, err) : 0;
	if (mapped < 0)
		return mapped;
	size_t i;
	struct cd_memfd *m = new_entry(img, &i, err);
	if (!m)
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	/* another open file of a memfd already in the image names its entry */
	m->obj = d->obj;
	m->of = of < 0 ? (int)i : of;
	m->shmid = mapped ? (int64_t)x->st->st_ino : 0;
	if ((r = fill(m, x->link, x->st, fd, err)) < 0 ||
	    (of < 0 && (r = save_contents(x, m, i, fd, err)) < 0))
		return cd_err_wrap(err, "pid %d: fd %d (%s)", x->t->pid, d->fd, x->link);
	return 0;
}

/* ---- a memfd the tree maps and no fd holds (mem.c) ---- */

/* Its entry (own, no open file), from the file behind the mapping (fd, st). */
static int mapped_entry(const char *path, const struct stat *st, int fd, struct cd_memfd *m,
                        cd_err *err)
{
	int r = check_file(fd, st, err);

	if (r < 0)
		return r;
	m->shmid = (int64_t)st->st_ino;
	m->len = (size_t)st->st_size;
	m->pending = true;
	return fill(m, path, st, fd, err);
}

int cd_memfd_mapped(struct cd_image *img, pid_t pid, const struct cd_proc_map *m, cd_err *err)
{
	struct cd_memfd *e;
	struct stat st;
	size_t i;
	int r;

	/* another mapping of it, of this task or another, made its entry */
	for (i = 0; i < img->nmemfds; i++)
		if (img->memfds[i].obj < 0 && img->memfds[i].ino == (int64_t)m->ino)
			return 0;
	_cleanup_close_ int fd = cd_contents_open_mapped(pid, m->start, m->end, err);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		r = cd_err_sys(err, errno, "fstat");
	else if (!(e = new_entry(img, &i, err)))
		r = -err->code;
	else
		r = mapped_entry(m->path, &st, fd, e, err);
	if (r < 0)
		return cd_err_wrap(
		    err, "pid %d: mapping %" PRIx64 "-%" PRIx64 " (%s %s) held by no fd", pid,
		    m->start, m->end, m->shared ? "shared" : "private", m->path);
	return 0;
}

int cd_memfd_save_mapped(struct cd_dump_ctx *ctx, const struct cd_task *t, cd_err *err)
{
	for (size_t j = 0; j < t->nvmas; j++) {
		const struct cd_vma *v = &t->vmas[j];
		bool memfd = v->kind == CD_VMA_ANON_SHARED || cd_vma_memfd(v);
		for (size_t i = 0; memfd && i < ctx->img->nmemfds; i++) {
			struct cd_memfd *m = &ctx->img->memfds[i];
			int r;
			if (!m->pending || m->ino != (int64_t)v->ino)
				continue;
			if ((r = cd_contents_save_mapped(ctx->dirfd, t->pid, v, "memfd", i, m->len,
			                                 &m->csum, err)) < 0)
				return r;
			m->pending = false;
		}
	}
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

/* The memfd of entry i (its own), made once with its contents, owner, mode
 * and seals, read-write; a mapped one's seals wait for its mappings. */
static int make_memfd(const struct cd_image *img, int dirfd, size_t i, cd_err *err)
{
	const struct cd_memfd *m = &img->memfds[i];
	char name[64];
	int r;

	_cleanup_close_ int fd = memfd_create(m->name, MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "memfd_create %s", m->name);
	cd_contents_file("memfd", i, name, sizeof(name));
	r = m->data ? fd_write_all(fd, m->data, m->len, err)
	            : cd_contents_load(dirfd, name, fd, m->len, err);
	if (r < 0 || (r = set_attrs(fd, m, err)) < 0 ||
	    (!m->shmid && (r = set_seals(fd, m, err)) < 0))
		return cd_err_wrap(err, "memfd %s", m->name);
	return TAKE_FD(fd);
}

static int memfd_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	const struct cd_memfd *m = cd_memfd_of(o->img, d->obj);
	int r, *made;

	if (!m)
		return cd_err_set(err, EINVAL, "fd %d: no memfd of open file %d", d->fd, d->obj);
	if (!(made = cd_contents_made(o, CD_FD_MEMFD, o->img->nmemfds, err)))
		return -ENOMEM;
	if (made[m->of] < 0 && (made[m->of] = make_memfd(o->img, o->dirfd, (size_t)m->of, err)) < 0)
		return made[m->of];
	_cleanup_close_ int fd =
	    cd_contents_open_file(made[m->of], &o->img->memfds[m->of] == m, d, err);
	if (fd < 0)
		return cd_err_wrap(err, "memfd %s", m->name);
	if (lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return cd_err_sys(err, errno, "memfd %s: seek", m->name);
	if ((r = cd_fd_set_flags(fd, d, err)) < 0)
		return cd_err_wrap(err, "memfd %s", m->name);
	return TAKE_FD(fd);
}

/* The own entry of the memfd of shmid that no fd holds, or -1. */
static int unheld(const struct cd_image *img, int64_t shmid)
{
	for (size_t i = 0; shmid && i < img->nmemfds; i++)
		if (img->memfds[i].obj < 0 && img->memfds[i].shmid == shmid)
			return (int)i;
	return -1;
}

bool cd_memfd_unheld(const struct cd_image *img, int64_t shmid)
{
	return unheld(img, shmid) >= 0;
}

int cd_memfd_shm_fd(const struct cd_image *img, const struct cd_file_objs *objs, int dirfd,
                    int64_t shmid, cd_err *err)
{
	char path[64];
	int own = unheld(img, shmid), ctl, fd;

	/* one no fd holds: made here, for the mappings only */
	if (own >= 0)
		return make_memfd(img, dirfd, (size_t)own, err);
	if ((ctl = cd_memfd_ctl_fd(img, objs, shmid)) < 0)
		return ctl;
	/* read-write, whatever the open file's access mode */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ctl);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "memfd of shmid %" PRId64 ": open", shmid);
	return fd;
}

/* The shared memory object made for the mappings of m, one no fd holds. */
static int made_fd(const struct cd_shm *shm, size_t nshm, const struct cd_memfd *m, cd_err *err)
{
	for (size_t k = 0; k < nshm; k++)
		if (shm[k].id == m->shmid && shm[k].fd >= 0)
			return shm[k].fd;
	return cd_err_set(err, EINVAL, "memfd %s: not made for its mappings", m->name);
}

int cd_memfd_seal_mapped(const struct cd_image *img, const struct cd_file_objs *objs,
                         const struct cd_shm *shm, size_t nshm, cd_err *err)
{
	for (size_t i = 0; i < img->nmemfds; i++) {
		const struct cd_memfd *m = &img->memfds[i];
		if (m->of != (int)i || !m->shmid)
			continue;
		/* an fd's memfd opened again read-write (F_ADD_SEALS needs it) */
		_cleanup_close_ int own = -1;
		int fd = m->obj < 0 ? made_fd(shm, nshm, m, err)
		                    : (own = cd_memfd_shm_fd(img, objs, -1, m->shmid, err));
		int r = fd < 0 ? fd : set_seals(fd, m, err);
		if (r < 0)
			return cd_err_wrap(err, "memfd %s", m->name);
	}
	return 0;
}

bool cd_vma_memfd(const struct cd_vma *v)
{
	return v->kind == CD_VMA_FILE && v->path &&
	       !strncmp(v->path, MEMFD_PREFIX, strlen(MEMFD_PREFIX));
}

int cd_memfd_ctl_fd(const struct cd_image *img, const struct cd_file_objs *objs, int64_t shmid)
{
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t j = 0; j < img->tasks[i].nfds; j++) {
			const struct cd_fd *d = &img->tasks[i].fds[j];
			const struct cd_memfd *m;
			if (d->kind == CD_FD_MEMFD && (m = cd_memfd_of(img, d->obj)) &&
			    img->memfds[m->of].shmid == shmid && cd_files_obj_fd(objs, d->obj) >= 0)
				return cd_files_obj_fd(objs, d->obj);
		}
	return -ENOENT;
}

static void memfd_open_done(struct cd_fd_open *o)
{
	cd_contents_made_free(o, CD_FD_MEMFD);
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
                                          .open_done = memfd_open_done,
                                          .check = memfd_check};
