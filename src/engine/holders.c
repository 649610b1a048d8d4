/* Which processes outside the tree hold a pipe or a socket of it: one scan
 * of every process's fds per dump, sorted by inode, instead of a scan per
 * object (a tree with many pipes on a busy machine made that quadratic).
 * The scan is taken while the tree is frozen, at the first question. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

struct holder {
	dev_t dev;
	ino_t ino;
	pid_t pid;
};

struct cd_holders {
	struct holder *v;
	size_t n, cap;
};

static int by_inode(const void *a, const void *b)
{
	const struct holder *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

static int add(struct cd_holders *h, const struct stat *st, pid_t pid)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 256;
		struct holder *v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = (struct holder){.dev = st->st_dev, .ino = st->st_ino, .pid = pid};
	return 0;
}

/* The pipes and sockets among pid's fds. A process that exits or whose
 * fds we may not read meanwhile holds nothing we could name. */
static int scan_task(struct cd_holders *h, pid_t pid)
{
	char path[64];
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	_cleanup_closedir_ DIR *dir = opendir(path);
	while (dir && (de = readdir(dir))) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dirfd(dir), de->d_name, &st, 0) < 0)
			continue;
		if ((S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) && add(h, &st, pid) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int scan(struct cd_holders *h, const struct cd_image *img, cd_err *err)
{
	_cleanup_closedir_ DIR *proc = opendir("/proc");
	struct dirent *de;

	if (!proc)
		return cd_err_sys(err, errno, "open /proc");
	while ((de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid() ||
		    cd_image_task((struct cd_image *)img, (pid_t)pid))
			continue;
		if (scan_task(h, (pid_t)pid) < 0)
			return cd_err_set(err, ENOMEM, "out of memory");
	}
	if (h->n)
		qsort(h->v, h->n, sizeof(*h->v), by_inode);
	return 0;
}

void cd_holders_free(struct cd_holders *h)
{
	if (!h)
		return;
	free(h->v);
	free(h);
}

int cd_outside_holder(struct cd_holders **hp, const struct cd_image *img, const struct stat *st,
                      pid_t *ret, cd_err *err)
{
	if (!*hp) {
		struct cd_holders *h = calloc(1, sizeof(*h));
		int r;
		if (!h)
			return cd_err_set(err, ENOMEM, "out of memory");
		if ((r = scan(h, img, err)) < 0) {
			cd_holders_free(h);
			return r;
		}
		*hp = h;
	}
	const struct holder key = {.dev = st->st_dev, .ino = st->st_ino, .pid = 0};
	const struct holder *v = (*hp)->v;
	size_t lo = 0, hi = (*hp)->n;
	while (lo < hi) { /* the first entry not before key: the lowest pid */
		size_t mid = lo + (hi - lo) / 2;
		if (by_inode(&v[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret = lo < (*hp)->n && v[lo].dev == key.dev && v[lo].ino == key.ino ? v[lo].pid : 0;
	return 0;
}
