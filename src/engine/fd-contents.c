/* What the kinds whose contents travel in the image (memfd.c,
 * fd-deleted.c) do the same way: finding a mapping of the file in the tree,
 * reading the contents, and giving the new file the open file's access
 * mode. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/internal.h"
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

int cd_contents_read(int fd, size_t len, char **ret, cd_err *err)
{
	_cleanup_free_ char *data = malloc(len + 1);
	int r;

	if (!data)
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((r = fd_pread_all(fd, data, len, 0, err)) < 0)
		return r;
	*ret = TAKE_PTR(data);
	return 0;
}

int cd_contents_access_mode(int fd, const struct cd_fd *d, cd_err *err)
{
	char path[64];
	int nfd;

	if ((d->flags & O_ACCMODE) == O_RDWR)
		return fd;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, (d->flags & O_ACCMODE) | O_CLOEXEC);
	if (nfd < 0)
		nfd = -cd_err_sys(err, errno, "reopen with access mode %d", d->flags & O_ACCMODE);
	close(fd);
	return nfd;
}
