/* Unpacking an image safely: the format comes from the content; only
 * regular files and directories are created, each one below the target by
 * openat() from its parent (O_NOFOLLOW, O_EXCL), so no entry can land
 * outside it; the target appears (by rename) only when everything checked
 * out. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "shared/cleanup.h"
#include "storage/internal.h"

typedef struct unpack_ctx {
	const char *path;
	int fd;
	uint8_t *buf; /* what the archive reads from the file */
	uint64_t size, done;
	const storage_opts *opts;
	bool zlib;
	bool zlib_ready, zlib_end;
	z_stream z;
	uint8_t *zout;
	cd_err *err;
	bool cb_failed;
} unpack_ctx;

static la_ssize_t fail_cb(struct archive *a, unpack_ctx *c, int r)
{
	c->cb_failed = true;
	archive_set_error(a, -r, "%s", c->err->msg);
	return -1;
}

static ssize_t fill(unpack_ctx *c)
{
	ssize_t n = storage_read_full(c->fd, c->buf, STORAGE_CHUNK);

	if (n < 0)
		return cd_err_sys(c->err, (int)n, "read");
	c->done += (uint64_t)n;
	storage_report(c->opts, c->done, c->size);
	return n;
}

/* Inflates the next piece of the zlib stream; 0 once it ended cleanly. */
static ssize_t zlib_next(unpack_ctx *c)
{
	if (c->zlib_end)
		return 0;
	c->z.next_out = c->zout;
	c->z.avail_out = (uInt)STORAGE_CHUNK;
	while (c->z.avail_out == STORAGE_CHUNK) {
		if (c->z.avail_in == 0) {
			ssize_t n = fill(c);
			if (n < 0)
				return n;
			if (n == 0)
				return cd_err_set(c->err, EIO, "truncated zlib stream");
			c->z.next_in = c->buf;
			c->z.avail_in = (uInt)n;
		}
		int zr = inflate(&c->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END) {
			c->zlib_end = true;
			break;
		}
		if (zr != Z_OK)
			return cd_err_set(c->err, EIO, "corrupted zlib stream: %s",
			                  c->z.msg ? c->z.msg : "inflate failed");
	}
	return (ssize_t)(STORAGE_CHUNK - c->z.avail_out);
}

static la_ssize_t read_cb(struct archive *a, void *client, const void **buf)
{
	unpack_ctx *c = client;
	ssize_t n = c->zlib ? zlib_next(c) : fill(c);

	if (n < 0)
		return fail_cb(a, c, (int)n);
	*buf = c->zlib ? c->zout : c->buf;
	return n;
}

static int archive_fail(struct archive *a, unpack_ctx *c, const char *what)
{
	if (c->cb_failed)
		return cd_err_wrap(c->err, "%s", what);
	return cd_err_set(c->err, EINVAL, "%s: %s", what,
	                  archive_error_string(a) ? archive_error_string(a) : "archive error");
}

/* ---- paths ---- */

/* Checks an entry name and returns it without "./" and duplicate slashes. */
static int clean_name(const char *name, char *out, size_t len, cd_err *err)
{
	size_t o = 0;

	if (!name || !*name)
		return cd_err_set(err, EINVAL, "entry with an empty name");
	if (name[0] == '/')
		return cd_err_set(err, EPERM, "%s: absolute path refused", name);
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return cd_err_set(err, EPERM, "%s: path with '..' refused", name);
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o + n + 2 > len)
				return cd_err_set(err, ENAMETOOLONG, "%s: name too long", name);
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		p += strspn(p, "/");
	}
	if (!o)
		return cd_err_set(err, EINVAL, "%s: entry names no file", name);
	out[o] = '\0';
	return 0;
}

/* Opens (creating as needed, 0700) the directory rel below rootfd, one
 * component at a time and never through a symlink. */
static int open_dirs(int rootfd, char *rel, cd_err *err)
{
	int fd = dup(rootfd);

	if (fd < 0)
		return cd_err_sys(err, errno, "dup");
	for (char *p = rel; p && *p;) {
		char *slash = strchr(p, '/');
		int next;

		if (slash)
			*slash = '\0';
		if (mkdirat(fd, p, 0700) < 0 && errno != EEXIST) {
			close(fd);
			return cd_err_sys(err, errno, "mkdir %s", rel);
		}
		next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return cd_err_sys(err, errno, "%s", rel);
		if (slash)
			*slash = '/';
		fd = next;
		p = slash ? slash + 1 : NULL;
	}
	return fd;
}

/* ---- entries ---- */

static int extract_data(struct archive *a, unpack_ctx *c, int fd, const char *name,
                        storage_sink *sink, uint64_t *ret_bytes)
{
	const void *block;
	size_t len;
	la_int64_t off;
	int r, ar;

	storage_sink_target(sink, fd);
	while ((ar = archive_read_data_block(a, &block, &len, &off)) == ARCHIVE_OK) {
		uint64_t at = sink->written + sink->len;

		/* a hole in a sparse entry: zeros, since O_DIRECT cannot seek
		 * to unaligned places */
		if (off < 0 || (uint64_t)off < at)
			return cd_err_set(c->err, EINVAL, "%s: data out of order", name);
		r = storage_sink_zero(sink, (uint64_t)off - at, c->err);
		if (r == 0)
			r = storage_sink_write(sink, block, len, c->err);
		if (r < 0)
			return cd_err_wrap(c->err, "%s", name);
	}
	if (ar != ARCHIVE_EOF)
		return archive_fail(a, c, name);
	r = storage_sink_finish(sink, c->err);
	if (r < 0)
		return cd_err_wrap(c->err, "%s", name);
	*ret_bytes = sink->written;
	return 0;
}

static int extract_file(struct archive *a, unpack_ctx *c, int rootfd, char *rel,
                        struct archive_entry *e, storage_sink *sink, uint64_t *ret_bytes)
{
	_cleanup_close_ int dirfd = -1, fd = -1;
	char *slash = strrchr(rel, '/');
	const char *base = rel;
	uint64_t got = 0;
	int r;

	if (slash) {
		*slash = '\0';
		dirfd = open_dirs(rootfd, rel, c->err);
		*slash = '/';
		if (dirfd < 0)
			return dirfd;
		base = slash + 1;
	}
	fd = storage_create_write(slash ? dirfd : rootfd, base, c->err);
	if (fd < 0)
		return fd == -EEXIST ? cd_err_set(c->err, EEXIST, "%s: duplicate entry", rel) : fd;
	r = extract_data(a, c, fd, rel, sink, &got);
	if (r < 0) {
		storage_sink_abort(sink);
		return r;
	}
	/* a sparse entry may end in a hole */
	if (archive_entry_size_is_set(e) && got < (uint64_t)archive_entry_size(e)) {
		if (ftruncate(fd, archive_entry_size(e)) < 0)
			return cd_err_sys(c->err, errno, "%s: truncate", rel);
		got = (uint64_t)archive_entry_size(e);
	}
	*ret_bytes = got;
	return 0;
}

static int read_manifest(struct archive *a, unpack_ctx *c, storage_manifest *m)
{
	char text[256];
	la_ssize_t n = archive_read_data(a, text, sizeof(text));

	if (n < 0)
		return archive_fail(a, c, STORAGE_MANIFEST);
	if (storage_manifest_parse(text, (size_t)n, m) < 0)
		return cd_err_set(c->err, EINVAL, "%s: unreadable manifest", STORAGE_MANIFEST);
	return 0;
}

static int check_type(struct archive_entry *e, const char *name, cd_err *err)
{
	mode_t type = archive_entry_filetype(e);

	if (archive_entry_hardlink(e))
		return cd_err_set(err, EPERM, "%s: hard link refused", name);
	if (type == AE_IFLNK)
		return cd_err_set(err, EPERM, "%s: symbolic link refused", name);
	if (type != AE_IFREG && type != AE_IFDIR)
		return cd_err_set(err, EPERM,
		                  "%s: special file refused (only files and directories)", name);
	return 0;
}

static int extract_all(struct archive *a, unpack_ctx *c, int rootfd, storage_stats *st)
{
	storage_manifest want = {0}, got = {0};
	bool has_manifest = false;
	struct archive_entry *e;
	storage_sink sink;
	char rel[4096];
	int r, ar;

	r = storage_sink_init(&sink, -1, c->err);
	for (size_t i = 0; r == 0; i++) {
		ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK) {
			r = archive_fail(a, c, i ? "entry" : "archive");
			break;
		}
		r = clean_name(archive_entry_pathname(e), rel, sizeof(rel), c->err);
		if (r == 0)
			r = check_type(e, rel, c->err);
		if (r < 0)
			break;
		if (strcmp(rel, STORAGE_MANIFEST) == 0) {
			if (i > 0 || archive_entry_filetype(e) != AE_IFREG)
				r = cd_err_set(c->err, EINVAL, "%s: misplaced", rel);
			else
				r = read_manifest(a, c, &want);
			has_manifest = true;
		} else if (archive_entry_filetype(e) == AE_IFDIR) {
			int fd = open_dirs(rootfd, rel, c->err);
			r = fd < 0 ? fd : close(fd);
			got.dirs++;
		} else {
			uint64_t bytes = 0;
			r = extract_file(a, c, rootfd, rel, e, &sink, &bytes);
			got.files++;
			got.bytes += bytes;
		}
	}
	storage_sink_release(&sink);
	if (r < 0)
		return r;
	if (has_manifest &&
	    (got.files != want.files || got.dirs != want.dirs || got.bytes != want.bytes))
		return cd_err_set(c->err, EIO,
		                  "truncated or altered archive: %llu of %llu files, %llu of %llu "
		                  "bytes",
		                  (unsigned long long)got.files, (unsigned long long)want.files,
		                  (unsigned long long)got.bytes, (unsigned long long)want.bytes);
	st->files = got.files;
	st->payload_bytes = got.bytes;
	return 0;
}

/* libarchive stops at the tar end marker; the rest of a zlib stream still
 * has to inflate cleanly and end with its checksum. */
static int drain_zlib(unpack_ctx *c)
{
	ssize_t n;

	while ((n = zlib_next(c)) > 0)
		;
	return n < 0 ? (int)n : 0;
}

static int setup_reader(struct archive *a, unpack_ctx *c, storage_compression fmt)
{
	int r = archive_read_support_format_tar(a);

	if (r == ARCHIVE_OK && fmt == STORAGE_GZIP)
		r = archive_read_support_filter_gzip(a);
	else if (r == ARCHIVE_OK && fmt == STORAGE_LZ4)
		r = archive_read_support_filter_lz4(a);
	else if (r == ARCHIVE_OK && fmt == STORAGE_ZSTD)
		r = archive_read_support_filter_zstd(a);
	if (r != ARCHIVE_OK)
		return archive_fail(a, c, storage_compression_name(fmt));
	if (fmt == STORAGE_ZLIB) {
		c->zout = storage_buf_alloc(STORAGE_CHUNK);
		if (!c->zout || inflateInit(&c->z) != Z_OK)
			return cd_err_sys(c->err, ENOMEM, "zlib");
		c->zlib = c->zlib_ready = true;
	}
	return 0;
}

static int unpack_archive(const char *path, storage_compression fmt, const char *dest,
                          const storage_opts *o, storage_stats *st, cd_err *err)
{
	unpack_ctx c = {.path = path, .fd = -1, .opts = o, .err = err};
	_cleanup_close_ int rootfd = -1;
	struct archive *a = NULL;
	struct stat sb;
	int r;

	c.fd = storage_open_read(AT_FDCWD, path, err);
	if (c.fd < 0)
		return c.fd;
	r = fstat(c.fd, &sb) < 0 ? cd_err_sys(err, errno, "stat") : 0;
	c.size = (uint64_t)sb.st_size;
	c.buf = storage_buf_alloc(STORAGE_CHUNK);
	a = archive_read_new();
	if (r == 0 && (!c.buf || !a))
		r = cd_err_sys(err, ENOMEM, "archive");
	if (r == 0)
		r = setup_reader(a, &c, fmt);
	if (r == 0 && archive_read_open(a, &c, NULL, read_cb, NULL) != ARCHIVE_OK)
		r = archive_fail(a, &c, "read");
	if (r == 0 && mkdir(dest, 0700) < 0)
		r = cd_err_sys(err, errno, "mkdir %s", dest);
	if (r == 0 && (rootfd = storage_open_dir(dest, err)) < 0)
		r = rootfd;
	if (r == 0 && fchmod(rootfd, 0700) < 0)
		r = cd_err_sys(err, errno, "chmod %s", dest);
	if (r == 0)
		r = extract_all(a, &c, rootfd, st);
	if (r == 0 && c.zlib)
		r = drain_zlib(&c);
	st->stored_bytes = c.size;
	if (a)
		archive_read_free(a);
	if (c.zlib_ready)
		inflateEnd(&c.z);
	free(c.zout);
	free(c.buf);
	close(c.fd);
	return r;
}

int storage_unpack(const char *path, const char *dest_dir, const storage_opts *opts,
                   storage_compression *ret_format, storage_stats *ret_stats, cd_err *err)
{
	_cleanup_free_ char *tmp = NULL;
	storage_compression fmt;
	storage_stats st = {0};
	struct stat sb;
	int r;

	if (fstatat(AT_FDCWD, dest_dir, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		return cd_err_set(err, EEXIST, "unpack: %s: already exists", dest_dir);
	r = storage_detect(path, &fmt, err);
	if (r == 0)
		r = storage_tmp_name(dest_dir, &tmp, err);
	if (r < 0)
		return cd_err_wrap(err, "unpack");
	if (fmt == STORAGE_NONE) {
		storage_tree t = {0};

		r = storage_tree_scan(path, &t, err);
		if (r == 0)
			r = storage_copy_tree(path, &t, tmp, false, opts, err);
		st = (storage_stats){t.totals.files, t.totals.bytes, t.totals.bytes};
		storage_tree_free(&t);
	} else {
		r = unpack_archive(path, fmt, tmp, opts, &st, err);
	}
	if (r == 0)
		r = storage_rename_noreplace(tmp, dest_dir, err);
	if (r < 0) {
		storage_remove_at(AT_FDCWD, tmp);
		return cd_err_wrap(err, "unpack %s", path);
	}
	if (ret_format)
		*ret_format = fmt;
	if (ret_stats)
		*ret_stats = st;
	return 0;
}
