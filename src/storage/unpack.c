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
#include <sys/param.h>
#include <zlib.h>

#include "shared/cleanup.h"
#include "storage/archive-dl.h"
#include "storage/internal.h"

typedef struct unpack_ctx {
	int fd;
	storage_reader *rd;
	const uint8_t *chunk; /* the last one read from the file */
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
	ssize_t n = storage_reader_next(c->rd, &c->chunk, c->err);

	if (n < 0)
		return n;
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
			c->z.next_in = (Bytef *)(uintptr_t)c->chunk;
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
	*buf = c->zlib ? c->zout : c->chunk;
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
	int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return cd_err_sys(err, errno, "fcntl");
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

static const uint8_t zero_page[STORAGE_ALIGN];

static int extract_data(struct archive *a, unpack_ctx *c, int fd, const char *name,
                        storage_sink *sink, uint64_t *ret_bytes, uint32_t *ret_crc)
{
	uLong crc = crc32(0, NULL, 0);
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
		for (uint64_t z = at; r == 0 && z < (uint64_t)off; z += STORAGE_ALIGN)
			crc = crc32(crc, zero_page, (uInt)MIN((uint64_t)off - z, STORAGE_ALIGN));
		if (r == 0)
			r = storage_sink_write(sink, block, len, c->err);
		crc = crc32(crc, block, (uInt)len);
		if (r < 0)
			return cd_err_wrap(c->err, "%s", name);
	}
	if (ar != ARCHIVE_EOF)
		return archive_fail(a, c, name);
	r = storage_sink_finish(sink, c->err);
	if (r < 0)
		return cd_err_wrap(c->err, "%s", name);
	*ret_bytes = sink->written;
	*ret_crc = (uint32_t)crc;
	return 0;
}

static int extract_file(struct archive *a, unpack_ctx *c, int rootfd, char *rel,
                        struct archive_entry *e, storage_sink *sink, uint64_t *ret_bytes,
                        uint32_t *ret_crc)
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
	r = extract_data(a, c, fd, rel, sink, &got, ret_crc);
	if (r < 0) {
		storage_sink_abort(sink);
		return r;
	}
	/* a sparse entry may end in a hole (only in archives not ours: those
	 * carry no checksums) */
	if (archive_entry_size_is_set(e) && got < (uint64_t)archive_entry_size(e)) {
		if (ftruncate(fd, archive_entry_size(e)) < 0)
			return cd_err_sys(c->err, errno, "%s: truncate", rel);
		got = (uint64_t)archive_entry_size(e);
	}
	*ret_bytes = got;
	return 0;
}

/* What our manifest and trailer promise, and what the archive held. */
typedef struct verify {
	bool has_manifest, has_trailer;
	storage_manifest want, got;
	uint32_t *want_crcs;
	size_t nwant;
	uint32_t *crcs; /* of the files extracted, in order */
	char **names;
	size_t cap;
} verify;

static void verify_free(verify *v)
{
	for (size_t i = 0; i < v->got.files; i++)
		free(v->names[i]);
	free(v->names);
	free(v->crcs);
	free(v->want_crcs);
}

static int verify_add(verify *v, const char *name, uint32_t crc, uint64_t bytes)
{
	if (v->got.files == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		uint32_t *crcs = realloc(v->crcs, cap * sizeof(*crcs));
		if (crcs)
			v->crcs = crcs;
		char **names = realloc(v->names, cap * sizeof(*names));
		if (names)
			v->names = names;
		if (!crcs || !names)
			return -ENOMEM;
		v->cap = cap;
	}
	v->names[v->got.files] = strdup(name);
	if (!v->names[v->got.files])
		return -ENOMEM;
	v->crcs[v->got.files++] = crc;
	v->got.bytes += bytes;
	return 0;
}

/* Reads a small entry (manifest, trailer) whole; NUL-terminated. */
static int read_blob(struct archive *a, unpack_ctx *c, struct archive_entry *e, char **ret,
                     size_t *ret_len)
{
	la_int64_t size = archive_entry_size(e);
	_cleanup_free_ char *buf = NULL;
	la_ssize_t n;

	if (size < 0 || size > (16 << 20))
		return cd_err_set(c->err, EINVAL, "%s: bad size", archive_entry_pathname(e));
	buf = malloc((size_t)size + 1);
	if (!buf)
		return cd_err_sys(c->err, ENOMEM, "%s", archive_entry_pathname(e));
	n = archive_read_data(a, buf, (size_t)size);
	if (n < 0)
		return archive_fail(a, c, archive_entry_pathname(e));
	if (n != size)
		return cd_err_set(c->err, EIO, "%s: truncated", archive_entry_pathname(e));
	buf[n] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = (size_t)n;
	return 0;
}

static int read_manifest(struct archive *a, unpack_ctx *c, struct archive_entry *e, verify *v)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = read_blob(a, c, e, &text, &len);

	if (r == 0 && storage_manifest_parse(text, len, &v->want) < 0)
		r = cd_err_set(c->err, EINVAL, "%s: unreadable manifest", STORAGE_MANIFEST);
	v->has_manifest = true;
	return r;
}

static int read_trailer(struct archive *a, unpack_ctx *c, struct archive_entry *e, verify *v)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	ssize_t n;
	int r = read_blob(a, c, e, &text, &len);

	if (r < 0)
		return r;
	v->want_crcs = calloc(len / 9 + 1, sizeof(*v->want_crcs));
	if (!v->want_crcs)
		return cd_err_sys(c->err, ENOMEM, "%s", STORAGE_TRAILER);
	n = storage_trailer_parse(text, len, v->want_crcs, len / 9 + 1);
	if (n < 0)
		return cd_err_set(c->err, EINVAL, "%s: unreadable checksums", STORAGE_TRAILER);
	v->nwant = (size_t)n;
	v->has_trailer = true;
	return 0;
}

/* An archive of ours must hold exactly what its manifest announced, with the
 * checksums of its trailer; one made elsewhere has neither and is taken as
 * it is. */
static int verify_check(const verify *v, cd_err *err)
{
	const storage_manifest *w = &v->want, *g = &v->got;

	if (!v->has_manifest)
		return 0;
	if (g->files != w->files || g->dirs != w->dirs || g->bytes != w->bytes)
		return cd_err_set(err, EIO,
		                  "truncated or altered archive: %llu of %llu files, %llu of %llu "
		                  "bytes",
		                  (unsigned long long)g->files, (unsigned long long)w->files,
		                  (unsigned long long)g->bytes, (unsigned long long)w->bytes);
	if (!v->has_trailer || v->nwant != g->files)
		return cd_err_set(err, EIO, "truncated archive: checksums missing");
	for (size_t i = 0; i < g->files; i++)
		if (v->crcs[i] != v->want_crcs[i])
			return cd_err_set(err, EIO,
			                  "%s: checksum mismatch, the archive is corrupted",
			                  v->names[i]);
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

/* One entry; the manifest must come first and the trailer last. */
static int extract_entry(struct archive *a, unpack_ctx *c, int rootfd, struct archive_entry *e,
                         size_t index, storage_sink *sink, verify *v)
{
	char rel[4096];
	int r = clean_name(archive_entry_pathname(e), rel, sizeof(rel), c->err);

	if (r == 0)
		r = check_type(e, rel, c->err);
	if (r < 0)
		return r;
	if (v->has_trailer)
		return cd_err_set(c->err, EINVAL, "%s: entry after the checksums", rel);
	if (strcmp(rel, STORAGE_MANIFEST) == 0 || strcmp(rel, STORAGE_TRAILER) == 0) {
		bool manifest = rel[strlen(STORAGE_MANIFEST)] == '\0';

		if (archive_entry_filetype(e) != AE_IFREG || (manifest && index > 0) ||
		    (!manifest && !v->has_manifest))
			return cd_err_set(c->err, EINVAL, "%s: misplaced", rel);
		return manifest ? read_manifest(a, c, e, v) : read_trailer(a, c, e, v);
	}
	if (archive_entry_filetype(e) == AE_IFDIR) {
		int fd = open_dirs(rootfd, rel, c->err);

		v->got.dirs++;
		return fd < 0 ? fd : close(fd);
	}
	uint64_t bytes = 0;
	uint32_t crc = 0;

	r = extract_file(a, c, rootfd, rel, e, sink, &bytes, &crc);
	if (r == 0 && verify_add(v, rel, crc, bytes) < 0)
		r = cd_err_sys(c->err, ENOMEM, "%s", rel);
	return r;
}

static int extract_all(struct archive *a, unpack_ctx *c, int rootfd, storage_stats *st)
{
	verify v = {0};
	struct archive_entry *e;
	storage_sink sink;
	int r, ar;

	r = storage_sink_init(&sink, -1, c->err);
	for (size_t i = 0; r == 0; i++) {
		ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK)
			r = archive_fail(a, c, i ? "entry" : "archive");
		else
			r = extract_entry(a, c, rootfd, e, i, &sink, &v);
	}
	storage_sink_release(&sink);
	if (r == 0)
		r = verify_check(&v, c->err);
	st->files = v.got.files;
	st->payload_bytes = v.got.bytes;
	verify_free(&v);
	return r;
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
	unpack_ctx c = {.fd = -1, .opts = o, .err = err};
	_cleanup_close_ int rootfd = -1;
	struct archive *a = NULL;
	struct stat sb;
	int r = storage_archive_load(err);

	if (r < 0)
		return r;
	c.fd = storage_open_direct(AT_FDCWD, path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
	if (c.fd < 0)
		return cd_err_sys(err, errno, "%s", path);
	r = fstat(c.fd, &sb) < 0 ? cd_err_sys(err, errno, "stat") : 0;
	c.size = r == 0 ? (uint64_t)sb.st_size : 0;
	a = archive_read_new();
	if (r == 0 && !a)
		r = cd_err_sys(err, ENOMEM, "archive");
	if (r == 0)
		r = storage_reader_start(c.fd, NULL, 1, &c.rd, err);
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
	storage_reader_stop(c.rd);
	close(c.fd);
	return r;
}

int storage_unpack(const char *path, const char *dest_dir, const storage_opts *opts,
                   storage_compression *ret_format, storage_stats *ret_stats, cd_err *err)
{
	_cleanup_free_ char *tmp = NULL;
	storage_compression fmt;
	storage_stats st = {0};
	int r;

	r = storage_check_dest(dest_dir, err);
	if (r == 0)
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
