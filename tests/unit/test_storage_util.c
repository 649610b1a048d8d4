#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "shared/error.h"
#include "storage/storage.h"
#include "test_storage_util.h"

char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;

	assert_true(asprintf(&path, "%s/storage-test-XXXXXX", base && *base ? base : "/var/tmp") >
	            0);
	assert_non_null(mkdtemp(path));
	return path;
}

void tu_rmtree(const char *path)
{
	cd_err err = {0};

	assert_int_equal(storage_remove(path, &err), 0);
}

char *tu_join(const char *a, const char *b)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", a, b) > 0);
	return p;
}

static void mkdirs_for(const char *path)
{
	char *copy = strdup(path);

	assert_non_null(copy);
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		assert_true(mkdir(copy, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
	free(copy);
}

void tu_write(const char *dir, const char *rel, const void *data, size_t len)
{
	char *path = tu_join(dir, rel);
	int fd;

	mkdirs_for(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	free(path);
}

uint8_t *tu_read(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* xorshift: reproducible "random" pages without a seed file */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill_pages(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t off = 0; off < len; off += 4096) {
		size_t n = len - off < 4096 ? len - off : 4096;
		bool zero = next_rand(&s) % 3 == 0;

		for (size_t i = 0; i < n; i++)
			buf[off + i] = zero ? 0 : (uint8_t)next_rand(&s);
	}
}

void tu_make_image(const char *dir)
{
	size_t big = (6u << 20) + 123, mid = (1u << 20) + 4096;
	uint8_t *buf = malloc(big);

	assert_non_null(buf);
	fill_pages(buf, big, 42);
	tu_write(dir, "pages-1.img", buf, big);
	fill_pages(buf, mid, 7);
	tu_write(dir, "sub/deeper/pages-2.img", buf, mid);
	tu_write(dir, "core-1.json", "{\"pid\": 1}\n", 11);
	tu_write(dir, "sub/empty.img", "", 0);
	char *empty = tu_join(dir, "emptydir");
	assert_int_equal(mkdir(empty, 0755), 0);
	free(empty);
	free(buf);
}

void tu_make_small_image(const char *dir)
{
	tu_write(dir, "a/one", "first file\n", 11);
	tu_write(dir, "a/two", "second file\n", 12);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t list(const char *dir, char **names, size_t max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		assert_true(n < max);
		names[n] = strdup(de->d_name);
		assert_non_null(names[n++]);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	return n;
}

static void assert_same_file(const char *a, const char *b)
{
	size_t la, lb;
	uint8_t *da = tu_read(a, &la), *db = tu_read(b, &lb);

	if (la != lb || memcmp(da, db, la) != 0)
		fail_msg("%s and %s differ (%zu and %zu bytes)", a, b, la, lb);
	free(da);
	free(db);
}

void tu_assert_same_tree(const char *a, const char *b)
{
	char *na[64], *nb[64];
	size_t n = list(a, na, 64), m = list(b, nb, 64);

	assert_int_equal(n, m);
	for (size_t i = 0; i < n; i++) {
		char *pa = tu_join(a, na[i]), *pb = tu_join(b, nb[i]);
		struct stat sa, sb;

		assert_string_equal(na[i], nb[i]);
		assert_int_equal(lstat(pa, &sa), 0);
		assert_int_equal(lstat(pb, &sb), 0);
		assert_int_equal(sa.st_mode & S_IFMT, sb.st_mode & S_IFMT);
		if (S_ISDIR(sa.st_mode))
			tu_assert_same_tree(pa, pb);
		else
			assert_same_file(pa, pb);
		free(pa);
		free(pb);
		free(na[i]);
		free(nb[i]);
	}
}

int tu_count_entries(const char *dir)
{
	char *names[256];
	size_t n = list(dir, names, 256);

	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return (int)n;
}

unsigned tu_mode(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}
