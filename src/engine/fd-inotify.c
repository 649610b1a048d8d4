/* inotify instances (CD_FD_INOTIFY): the watches, from fdinfo ("inotify
 * wd: ino: sdev: mask: ... f_handle:"), each with the path of the watched
 * inode, found by open_by_handle_at on a mount of its filesystem and
 * readlink; the path must still lead to that inode. The controller makes
 * the instance again (inotify_init1) once per open file and adds the
 * watches by path in wd order, so they get the same watch descriptors
 * (the kernel numbers them 1, 2, ...), with the same mask (IN_ONESHOT,
 * IN_EXCL_UNLINK included); the tasks inherit it.
 *
 * Refused at dump, by name: watch descriptors that are not 1..n (a watch
 * was removed: the numbering could not be made again), an inode without a
 * path (deleted, or on no mount the dumper sees), and events not yet read
 * (FIONREAD on the instance, taken with pidfd_getfd). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

/* one watch as fdinfo shows it */
struct ino_line {
	int wd;
	uint32_t mask;
	uint64_t ino;
	unsigned sdev; /* the kernel's dev_t: major << 20 | minor */
	int htype;
	unsigned hbytes;
	unsigned char handle[128];
};

static bool inotify_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return !strcmp(x->link, "anon_inode:inotify");
}

static int parse_line(const char *p, struct ino_line *l)
{
	char hex[2 * sizeof(l->handle) + 1];
	unsigned long long ino;
	unsigned wd, mask, ignored, htype;

	if (sscanf(p,
	           "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x "
	           "fhandle-type:%x f_handle:%256s",
	           &wd, &ino, &l->sdev, &mask, &ignored, &l->hbytes, &htype, hex) != 8 ||
	    l->hbytes > sizeof(l->handle) || strlen(hex) != 2 * l->hbytes)
		return -EINVAL;
	for (unsigned i = 0; i < l->hbytes; i++) {
		unsigned b;
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		l->handle[i] = (unsigned char)b;
	}
	l->wd = (int)wd;
	l->mask = mask;
	l->ino = ino;
	l->htype = (int)htype;
	return 0;
}

/* A directory where a filesystem with device sdev is mounted (mountinfo's
 * major:minor), opened for reading (open_by_handle_at takes no O_PATH fd). */
static int open_mount_of(unsigned sdev, cd_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], root[4096], mnt[4096];
	unsigned maj, min;

	if (!f)
		return cd_err_sys(err, errno, "open /proc/self/mountinfo");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &maj, &min, root, mnt) != 4)
			continue;
		if (maj == sdev >> 20 && min == (sdev & 0xfffff)) {
			int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fd >= 0)
				return fd;
		}
	}
	return cd_err_set(err, ENOENT, "no mount of device %u:%u", sdev >> 20, sdev & 0xfffff);
}

/* The path of the watched inode, checked to lead to it. */
static int watch_path(const struct ino_line *l, char **ret, cd_err *err)
{
	_cleanup_free_ struct file_handle *h = malloc(sizeof(*h) + l->hbytes);
	char link[64], path[4096];
	struct stat st;
	ssize_t n;
	int mfd, fd;

	if (!h)
		return cd_err_set(err, ENOMEM, "out of memory");
	h->handle_bytes = l->hbytes;
	h->handle_type = l->htype;
	memcpy(h->f_handle, l->handle, l->hbytes);
	if ((mfd = open_mount_of(l->sdev, err)) < 0)
		return mfd;
	fd = open_by_handle_at(mfd, h, O_PATH | O_CLOEXEC);
	close(mfd);
	if (fd < 0)
		return cd_err_sys(err, errno, "open_by_handle_at");
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	close(fd);
	if (n < 0)
		return cd_err_sys(err, errno, "readlink");
	path[n] = 0;
	if (lstat(path, &st) < 0 || st.st_ino != l->ino || major(st.st_dev) != l->sdev >> 20 ||
	    minor(st.st_dev) != (l->sdev & 0xfffff))
		return cd_err_set(err, ENOENT, "%s is not the watched inode (deleted or moved)",
		                  path);
	if (!(*ret = strdup(path)))
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

/* Bytes of events not yet read, through a copy of the task's fd. */
static int pending_bytes(pid_t pid, int fd, int *ret, cd_err *err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), copy;

	if (pidfd < 0)
		return cd_err_sys(err, errno, "pidfd_open(%d)", pid);
	copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	if (copy < 0)
		return cd_err_sys(err, errno, "pid %d: fd %d: pidfd_getfd", pid, fd);
	if (ioctl(copy, FIONREAD, ret) < 0) {
		int e = errno;
		close(copy);
		return cd_err_sys(err, e, "pid %d: fd %d: FIONREAD", pid, fd);
	}
	close(copy);
	return 0;
}

static int cmp_wd(const void *a, const void *b)
{
	const struct cd_inotify_watch *x = a, *y = b;

	return (x->wd > y->wd) - (x->wd < y->wd);
}

static int add_line(const struct cd_fd_dump *x, struct cd_fd *d, const struct ino_line *l,
                    cd_err *err)
{
	struct cd_inotify_watch *w;
	char *path = NULL;
	int r;

	if ((r = watch_path(l, &path, err)) < 0)
		return cd_err_wrap(err,
		                   "pid %d: fd %d (inotify): watch %d (inode %" PRIu64
		                   "): no path to "
		                   "it, not supported",
		                   x->t->pid, d->fd, l->wd, l->ino);
	w = realloc(d->iwatches, (d->niwatches + 1) * sizeof(*w));
	if (!w) {
		free(path);
		return cd_err_set(err, ENOMEM, "out of memory");
	}
	d->iwatches = w;
	d->iwatches[d->niwatches++] = (struct cd_inotify_watch){l->wd, l->mask, path};
	return 0;
}

static int inotify_dump(const struct cd_fd_dump *x, struct cd_fd *d, cd_err *err)
{
	char name[64];
	_cleanup_free_ char *buf = NULL;
	pid_t pid = x->t->pid;
	int pending = 0, r;

	if (!x->new_obj)
		return 0;
	if ((r = pending_bytes(pid, d->fd, &pending, err)) < 0)
		return r;
	if (pending)
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: fd %d (inotify): %d bytes of events not yet read, which is "
		    "not supported",
		    pid, d->fd, pending);
	snprintf(name, sizeof(name), "fdinfo/%d", d->fd);
	if ((r = cd_proc_read_file(pid, name, &buf, NULL, err)) < 0)
		return r;
	for (char *p = strstr(buf, "inotify wd:"); p; p = strstr(p + 1, "inotify wd:")) {
		struct ino_line l;
		if (parse_line(p, &l) < 0)
			return cd_err_set(err, EINVAL,
			                  "pid %d: fd %d (inotify): cannot parse its fdinfo", pid,
			                  d->fd);
		if ((r = add_line(x, d, &l, err)) < 0)
			return r;
	}
	if (d->niwatches)
		qsort(d->iwatches, d->niwatches, sizeof(*d->iwatches), cmp_wd);
	for (size_t i = 0; i < d->niwatches; i++)
		if (d->iwatches[i].wd != (int)i + 1)
			return cd_err_set(
			    err, EOPNOTSUPP,
			    "pid %d: fd %d (inotify): watch descriptors are not 1..%zu "
			    "(watch %d; one was removed): they cannot be numbered again, "
			    "not supported",
			    pid, d->fd, d->niwatches, d->iwatches[i].wd);
	return 0;
}

static int add_watches(int fd, const struct cd_fd *d, cd_err *err)
{
	for (size_t i = 0; i < d->niwatches; i++) {
		const struct cd_inotify_watch *w = &d->iwatches[i];
		/* the path names the inode itself: never follow a symlink */
		int wd = inotify_add_watch(fd, w->path, w->mask | IN_DONT_FOLLOW);
		if (wd < 0)
			return cd_err_sys(err, errno, "inotify_add_watch(%s)", w->path);
		if (wd != w->wd)
			return cd_err_set(err, EEXIST, "inotify_add_watch(%s): watch %d, not %d",
			                  w->path, wd, w->wd);
	}
	return 0;
}

static int inotify_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	int fd = inotify_init1(IN_CLOEXEC), r;

	if (fd < 0)
		return cd_err_sys(err, errno, "inotify_init1");
	if ((r = add_watches(fd, d, err)) < 0 || (r = cd_fd_set_flags(fd, d, err)) < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* Watches numbered 1..n in order, absolute paths. */
static int inotify_check(const struct cd_fd_check *c, const struct cd_task *t,
                         const struct cd_fd *d, cd_err *err)
{
	for (size_t i = 0; i < d->niwatches; i++)
		if (d->iwatches[i].wd != (int)i + 1 || d->iwatches[i].path[0] != '/')
			return cd_err_set(
			    err, EINVAL,
			    "pid %d: fd %d: field \"iwatches\": %zu: not watch %zu, or a "
			    "relative path",
			    t->pid, d->fd, i, i + 1);
	return 0;
}

const struct cd_fd_ops cd_fd_ops_inotify = {.kind = CD_FD_INOTIFY,
                                            .name = "inotify",
                                            .has_owner = true,
                                            .claims = inotify_claims,
                                            .dump = inotify_dump,
                                            .open = inotify_open,
                                            .check = inotify_check};
