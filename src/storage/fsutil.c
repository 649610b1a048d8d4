/* Paths, temporary names, atomic renames and directory trees. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shared/cleanup.h"
#include "storage/internal.h"

int storage_split_path(const char *path, char **ret_dir, char **ret_base, cd_err *err)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_free_ char *dir = NULL;
	char *slash;

	if (!copy)
		return cd_err_sys(err, ENOMEM, "%s", path);
	/* "a/b/" names b, like "a/b" */
	for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
		copy[n - 1] = '\0';
	slash = strrchr(copy, '/');
	if (!slash)
		dir = strdup(".");
	else if (slash == copy)
		dir = strdup("/");
	else
		dir = strndup(copy, (size_t)(slash - copy));
	if (!dir || !*(slash ? slash + 1 : copy))
		return dir ? cd_err_set(err, EINVAL, "%s: not a file name", path)
		           : cd_err_sys(err, ENOMEM, "%s", path);
	*ret_base = strdup(slash ? slash + 1 : copy);
	if (!*ret_base)
		return cd_err_sys(err, ENOMEM, "%s", path);
	*ret_dir = TAKE_PTR(dir);
	return 0;
}

int storage_tmp_name(const char *path, char **ret, cd_err *err)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	_cleanup_free_ char *dir = NULL, *base = NULL;
	uint8_t rnd[6];
	char suffix[sizeof(rnd) + 1];
	int r;

	r = storage_split_path(path, &dir, &base, err);
	if (r < 0)
		return r;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return cd_err_sys(err, errno, "getrandom");
	for (size_t i = 0; i < sizeof(rnd); i++)
		suffix[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
	suffix[sizeof(rnd)] = '\0';
	if (asprintf(ret, "%s/.%s.tmp-%s", dir, base, suffix) < 0)
		return cd_err_sys(err, ENOMEM, "%s", path);
	return 0;
}

int storage_check_dest(const char *path, cd_err *err)
{
	_cleanup_free_ char *dir = NULL, *base = NULL;
	struct stat st;
	int r;

	if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return cd_err_set(err, EEXIST, "%s: already exists", path);
	if (errno != ENOENT)
		return cd_err_sys(err, errno, "%s", path);
	r = storage_split_path(path, &dir, &base, err);
	if (r < 0)
		return r;
	if (stat(dir, &st) < 0)
		return cd_err_sys(err, errno, "%s", dir);
	if (!S_ISDIR(st.st_mode))
		return cd_err_set(err, ENOTDIR, "%s: not a directory", dir);
	return 0;
}

int storage_open_dir(const char *path, cd_err *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return cd_err_sys(err, errno, "%s", path);
	return fd;
}

int storage_fsync_parent(const char *path, cd_err *err)
{
	_cleanup_free_ char *dir = NULL, *base = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	r = storage_split_path(path, &dir, &base, err);
	if (r < 0)
		return r;
	fd = storage_open_dir(dir, err);
	if (fd < 0)
		return fd;
	if (fsync(fd) < 0)
		return cd_err_sys(err, errno, "%s: fsync", dir);
	return 0;
}

int storage_rename_noreplace(const char *from, const char *to, cd_err *err)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST)
		return cd_err_set(err, EEXIST, "%s: already exists", to);
	return cd_err_sys(err, errno, "rename %s to %s", from, to);
}

static int remove_children(int dirfd)
{
	_cleanup_closedir_ DIR *d = fdopendir(dirfd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		close(dirfd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int q = storage_remove_at(dirfd, de->d_name);
		if (q < 0 && r == 0)
			r = q;
	}
	return errno ? -errno : r;
}

int storage_remove_at(int dirfd, const char *name)
{
	int fd, r;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = remove_children(fd);
	if (r < 0)
		return r;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* The daemon removes as root paths under directories a user may own: a
 * directory swapped for a symlink would send the removal elsewhere, so no
 * component may be one (the tree below is walked with O_NOFOLLOW). */
static int open_parent_nofollow(const char *dir)
{
	struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	                       .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	long fd = syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

int storage_remove(const char *path, cd_err *err)
{
	_cleanup_free_ char *dir = NULL, *base = NULL;
	_cleanup_close_ int dirfd = -1;
	int r;

	r = storage_split_path(path, &dir, &base, err);
	if (r < 0)
		return r;
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0)
		return cd_err_set(err, EINVAL, "remove %s: not a removable name", path);
	dirfd = open_parent_nofollow(dir);
	if (dirfd == -ENOENT)
		return 0;
	if (dirfd == -ELOOP)
		return cd_err_set(err, ELOOP, "remove %s: %s contains a symbolic link, refused",
		                  path, dir);
	if (dirfd < 0)
		return cd_err_sys(err, dirfd, "remove %s", path);
	r = storage_remove_at(dirfd, base);
	return r < 0 ? cd_err_sys(err, r, "remove %s", path) : 0;
}

/* ---- tree scan ---- */

static int tree_add(storage_tree *t, const char *prefix, const char *name, const struct stat *st)
{
	storage_entry *e;

	if (t->count == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		storage_entry *n = realloc(t->entries, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->entries = n;
		t->cap = cap;
	}
	e = &t->entries[t->count];
	if (asprintf(&e->path, "%s%s%s", prefix, *prefix ? "/" : "", name) < 0)
		return -ENOMEM;
	e->dir = S_ISDIR(st->st_mode);
	e->size = e->dir ? 0 : (uint64_t)st->st_size;
	e->mtime = st->st_mtim.tv_sec;
	t->count++;
	if (e->dir)
		t->totals.dirs++;
	else {
		t->totals.files++;
		t->totals.bytes += e->size;
	}
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the names of a directory, sorted, so archives are reproducible. */
static int list_names(int dirfd, char ***ret, size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **m = realloc(names, cap * sizeof(*m));
			if (!m)
				goto fail;
			names = m;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto fail;
		n++;
	}
	if (errno)
		goto fail;
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*ret = names;
	*ret_n = n;
	return 0;
fail:;
	int r = errno ? -errno : -ENOMEM;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

static int scan_dir(int dirfd, const char *prefix, int depth, storage_tree *t, cd_err *err)
{
	char **names = NULL;
	size_t n = 0;
	int r;

	if (depth > STORAGE_MAX_DEPTH)
		return cd_err_set(err, ELOOP, "%s: directories nested too deep", prefix);
	r = list_names(dirfd, &names, &n);
	if (r < 0)
		return cd_err_sys(err, r, "%s: read directory", *prefix ? prefix : ".");
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct stat st;
		size_t at = t->count;

		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = cd_err_sys(err, errno, "%s/%s", prefix, names[i]);
			break;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			r = cd_err_set(err, EINVAL, "%s%s%s: not a regular file or directory",
			               prefix, *prefix ? "/" : "", names[i]);
			break;
		}
		r = tree_add(t, prefix, names[i], &st);
		if (r < 0) {
			r = cd_err_sys(err, r, "%s", names[i]);
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int fd = openat(
			    dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0) {
				r = cd_err_sys(err, errno, "%s", t->entries[at].path);
				break;
			}
			r = scan_dir(fd, t->entries[at].path, depth + 1, t, err);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r < 0 ? r : 0;
}

int storage_tree_scan(const char *root, storage_tree *ret, cd_err *err)
{
	_cleanup_close_ int fd = -1;
	storage_tree t = {0};
	int r;

	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "%s", root);
	r = scan_dir(fd, "", 0, &t, err);
	if (r < 0) {
		storage_tree_free(&t);
		return cd_err_wrap(err, "%s", root);
	}
	*ret = t;
	return 0;
}

void storage_tree_free(storage_tree *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->entries[i].path);
	free(t->entries);
	*t = (storage_tree){0};
}

/* ---- size ---- */

static int size_at(int dirfd, const char *name, int depth, uint64_t *sum)
{
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	struct stat st;
	int fd, r = 0;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		*sum += (uint64_t)st.st_size;
		return 0;
	}
	if (depth > STORAGE_MAX_DEPTH)
		return -ELOOP;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = size_at(fd, de->d_name, depth + 1, sum);
	}
	return r < 0 ? r : -errno;
}

int storage_size(const char *path, uint64_t *ret, cd_err *err)
{
	uint64_t sum = 0;
	int r = size_at(AT_FDCWD, path, 0, &sum);

	if (r < 0)
		return cd_err_sys(err, r, "size of %s", path);
	*ret = sum;
	return 0;
}
