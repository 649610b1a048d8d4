/* What the kinds whose contents travel in the image (memfd.c,
 * fd-deleted.c) do the same way: finding a mapping of the file in the tree,
 * streaming the contents into a file of the image and back (through the
 * page writer's and reader's bounded buffers, so a file of any size costs
 * no more memory than a small one), and making each open file of the
 * restored object: the object is made once, every open file of it is a new
 * open of that one inode. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pageio.h"
#include "shared/cleanup.h"
#include "shared/fdio.h"

/* Whether the maps line's file (after the inode column) is the one named. */
static bool maps_name_matches(const char *file, const char *name, bool prefix)
{
	return prefix ? !strncmp(file, name, strlen(name)) : !strcmp(file, name);
}

static int task_maps_inode(pid_t pid, uint64_t ino, const char *name, bool prefix, cd_err *err)
{
	char path[64], line[4096 + 128];

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return cd_err_sys(err, errno, "open %s", path);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long node;
		int off = 0;
		line[strcspn(line, "\n")] = 0;
		if (sscanf(line, "%*s %*s %*s %*s %llu %n", &node, &off) == 1 && off > 0 &&
		    node == ino && maps_name_matches(line + off, name, prefix))
			return 1;
	}
	return 0;
}

int cd_contents_mapper(const struct cd_image *img, uint64_t ino, const char *name, bool prefix,
                       pid_t *ret, cd_err *err)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		int r = task_maps_inode(img->tasks[i].pid, ino, name, prefix, err);
		if (r != 0) {
			if (r > 0)
				*ret = img->tasks[i].pid;
			return r;
		}
	}
	return 0;
}

void cd_contents_file(const char *kind, size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s-%zu.img", kind, i);
}

int cd_contents_save(int dirfd, const char *name, int fd, uint64_t len, uint64_t *ret_csum,
                     cd_err *err)
{
	_cleanup_(cd_pw_freep) struct cd_page_writer *pw = NULL;
	uint64_t off = 0, size;
	int r;

	if ((r = cd_pw_open(dirfd, name, &pw, err)) < 0)
		return r;
	while (off < len) {
		uint8_t *dst;
		size_t n = cd_pw_reserve(pw, &dst);
		if (n > len - off)
			n = (size_t)(len - off);
		if ((r = fd_pread_all(fd, dst, n, (off_t)off, err)) < 0 ||
		    (r = cd_pw_commit(pw, n, err)) < 0)
			return cd_err_wrap(err, "%s", name);
		off += n;
	}
	if ((r = cd_pw_finish(pw, &size, ret_csum, err)) < 0)
		return r;
	if (size != len)
		return cd_err_set(err, EIO, "%s: %" PRIu64 " bytes written, not %" PRIu64, name,
		                  size, len);
	return 0;
}

int cd_contents_open_mapped(pid_t pid, uint64_t start, uint64_t end, cd_err *err)
{
	char link[96];
	int fd;

	snprintf(link, sizeof(link), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, start, end);
	fd = open(link, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "pid %d: open %s", pid, link);
	return fd;
}

int cd_contents_save_mapped(int dirfd, pid_t pid, const struct cd_vma *v, const char *kind,
                            size_t i, uint64_t len, uint64_t *ret_csum, cd_err *err)
{
	char name[64];
	int r;

	_cleanup_close_ int fd = cd_contents_open_mapped(pid, v->start, v->end, err);
	if (fd < 0)
		return fd;
	cd_contents_file(kind, i, name, sizeof(name));
	if ((r = cd_contents_save(dirfd, name, fd, len, ret_csum, err)) < 0)
		return cd_err_wrap(err, "pid %d: %s", pid, v->path);
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off, cd_err *err)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cd_err_sys(err, errno, "write");
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* The file was checked whole against csum before anything was made
 * (cd_image_check_pages), as a SysV segment's page file is. */
int cd_contents_load(int dirfd, const char *name, int fd, uint64_t len, cd_err *err)
{
	_cleanup_(cd_pr_freep) struct cd_page_reader *pr = NULL;
	uint64_t off = 0;
	int r;

	if ((r = cd_pr_open(dirfd, name, &pr, err)) < 0)
		return r;
	while (off < len) {
		const void *src;
		size_t n;
		if ((r = cd_pr_next(pr, CD_PAGEIO_BUF, &src, &n, err)) < 0 ||
		    (r = pwrite_all(fd, src, n, (off_t)off, err)) < 0)
			return cd_err_wrap(err, "%s", name);
		off += n;
	}
	return 0;
}

/* ---- the objects the controller made, per kind, by entry ---- */

struct contents_made {
	size_t n;
	int fd[];
};

int *cd_contents_made(struct cd_fd_open *o, enum cd_fd_kind kind, size_t n, cd_err *err)
{
	struct contents_made *c = o->state[kind];

	if (c)
		return c->fd;
	c = malloc(sizeof(*c) + (n + 1) * sizeof(int));
	if (!c) {
		cd_err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	c->n = n;
	for (size_t i = 0; i <= n; i++)
		c->fd[i] = -1;
	o->state[kind] = c;
	return c->fd;
}

void cd_contents_made_free(struct cd_fd_open *o, enum cd_fd_kind kind)
{
	struct contents_made *c = o->state[kind];

	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		if (c->fd[i] >= 0)
			close(c->fd[i]);
	free(c);
	o->state[kind] = NULL;
}

int cd_contents_open_file(int objfd, bool own, const struct cd_fd *d, cd_err *err)
{
	char path[64];
	int fd;

	/* the object's own open file (read-write, as it was made) */
	if (own && (d->flags & O_ACCMODE) == O_RDWR) {
		fd = fcntl(objfd, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? cd_err_sys(err, errno, "dup") : fd;
	}
	/* a new open file of the same inode */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", objfd);
	fd = open(path, (d->flags & O_ACCMODE) | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "open again with access mode %d",
		                  d->flags & O_ACCMODE);
	return fd;
}
