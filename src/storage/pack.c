/* Packing an image directory: into a tar (optionally compressed) streamed to
 * a temporary file beside the target, or, for "none", finalizing the
 * directory itself; either way fsync'ed and renamed into place only when
 * complete. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "shared/cleanup.h"
#include "storage/internal.h"

typedef struct pack_ctx {
	storage_sink sink;
	bool zlib;
	bool zlib_ready;
	z_stream z;
	uint8_t *zbuf;
	cd_err *err;
	bool cb_failed; /* the write callback filled err */
} pack_ctx;

/* ---- zlib (RFC 1950) around the tar: libarchive has no such filter ---- */

static int zlib_pump(pack_ctx *c, const void *data, size_t n, int flush)
{
	int zr;

	c->z.next_in = (Bytef *)(uintptr_t)data;
	c->z.avail_in = (uInt)n;
	do {
		c->z.next_out = c->zbuf;
		c->z.avail_out = (uInt)STORAGE_CHUNK;
		zr = deflate(&c->z, flush);
		if (zr == Z_STREAM_ERROR)
			return cd_err_set(c->err, EIO, "zlib: deflate failed");
		size_t have = STORAGE_CHUNK - c->z.avail_out;
		int r = storage_sink_write(&c->sink, c->zbuf, have, c->err);
		if (r < 0)
			return r;
	} while (c->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

static la_ssize_t write_cb(struct archive *a, void *client, const void *buf, size_t n)
{
	pack_ctx *c = client;
	int r = 0;

	/* deflate takes a uInt count */
	for (size_t off = 0; off < n && r == 0;) {
		size_t take = n - off > STORAGE_CHUNK ? STORAGE_CHUNK : n - off;

		r = c->zlib
		        ? zlib_pump(c, (const uint8_t *)buf + off, take, Z_NO_FLUSH)
		        : storage_sink_write(&c->sink, (const uint8_t *)buf + off, take, c->err);
		off += take;
	}
	if (r < 0) {
		c->cb_failed = true;
		archive_set_error(a, -r, "%s", c->err->msg);
		return -1;
	}
	return (la_ssize_t)n;
}

/* Fastest levels by default: images are mostly incompressible pages and
 * zeros, and pack time is downtime for the checkpointed process. */
#define DEFAULT_LEVEL 1

static int archive_fail(struct archive *a, pack_ctx *c, const char *what)
{
	if (c->cb_failed)
		return -c->err->code;
	return cd_err_set(c->err, archive_errno(a) > 0 ? archive_errno(a) : EIO, "%s: %s", what,
	                  archive_error_string(a) ? archive_error_string(a) : "archive error");
}

static int set_filter(struct archive *a, pack_ctx *c, storage_compression comp, int level)
{
	char lv[24], threads[24];
	const char *module = NULL;
	int r = ARCHIVE_OK;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	snprintf(lv, sizeof(lv), "%d", level);
	snprintf(threads, sizeof(threads), "%ld", ncpu > 0 ? ncpu : 1);
	switch (comp) {
	case STORAGE_GZIP:
		r = archive_write_add_filter_gzip(a);
		module = "gzip";
		break;
	case STORAGE_LZ4:
		r = archive_write_add_filter_lz4(a);
		module = "lz4";
		break;
	case STORAGE_ZSTD:
		r = archive_write_add_filter_zstd(a);
		module = "zstd";
		if (r == ARCHIVE_OK)
			r = archive_write_set_filter_option(a, module, "threads", threads);
		break;
	default:
		break;
	}
	if (r == ARCHIVE_OK && module)
		r = archive_write_set_filter_option(a, module, "compression-level", lv);
	if (r != ARCHIVE_OK)
		return archive_fail(a, c, storage_compression_name(comp));
	return 0;
}

static int write_manifest(struct archive *a, pack_ctx *c, const storage_manifest *m)
{
	struct archive_entry *e = archive_entry_new();
	char text[256];
	int n = storage_manifest_format(m, text, sizeof(text)), r = 0;

	if (!e || n < 0) {
		archive_entry_free(e);
		return cd_err_sys(c->err, ENOMEM, "manifest");
	}
	archive_entry_set_pathname(e, STORAGE_MANIFEST);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, n);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    archive_write_data(a, text, (size_t)n) != (la_ssize_t)n)
		r = archive_fail(a, c, "manifest");
	archive_entry_free(e);
	return r;
}

static int write_file_data(struct archive *a, pack_ctx *c, int rootfd, const storage_entry *ent,
                           uint8_t *buf, const storage_opts *o, uint64_t *done, uint64_t total)
{
	_cleanup_close_ int fd = storage_open_read(rootfd, ent->path, c->err);
	uint64_t left = ent->size;
	struct stat st;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return cd_err_sys(c->err, errno, "%s", ent->path);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ent->size)
		return cd_err_set(c->err, EIO, "%s: changed while being packed", ent->path);
	for (;;) {
		ssize_t n = storage_read_full(fd, buf, STORAGE_CHUNK);

		if (n < 0)
			return cd_err_sys(c->err, (int)n, "%s: read", ent->path);
		if (n == 0)
			break;
		if ((uint64_t)n > left)
			return cd_err_set(c->err, EIO, "%s: grew while being packed", ent->path);
		if (archive_write_data(a, buf, (size_t)n) != n)
			return archive_fail(a, c, ent->path);
		left -= (uint64_t)n;
		*done += (uint64_t)n;
		storage_report(o, *done, total);
	}
	if (left)
		return cd_err_set(c->err, EIO, "%s: shrank while being packed", ent->path);
	return 0;
}

static int write_entries(struct archive *a, pack_ctx *c, const char *root, const storage_tree *t,
                         const storage_opts *o)
{
	_cleanup_free_ uint8_t *buf = storage_buf_alloc(STORAGE_CHUNK);
	_cleanup_close_ int rootfd = -1;
	uint64_t done = 0;
	int r = 0;

	if (!buf)
		return cd_err_sys(c->err, ENOMEM, "read buffer");
	rootfd = storage_open_dir(root, c->err);
	if (rootfd < 0)
		return rootfd;
	for (size_t i = 0; i < t->count && r == 0; i++) {
		const storage_entry *ent = &t->entries[i];
		struct archive_entry *e = archive_entry_new();

		if (!e)
			return cd_err_sys(c->err, ENOMEM, "%s", ent->path);
		archive_entry_set_pathname(e, ent->path);
		archive_entry_set_filetype(e, ent->dir ? AE_IFDIR : AE_IFREG);
		archive_entry_set_perm(e, ent->dir ? 0700 : 0600);
		archive_entry_set_size(e, (la_int64_t)ent->size);
		archive_entry_set_mtime(e, ent->mtime, 0);
		if (archive_write_header(a, e) != ARCHIVE_OK)
			r = archive_fail(a, c, ent->path);
		else if (!ent->dir)
			r = write_file_data(a, c, rootfd, ent, buf, o, &done, t->totals.bytes);
		archive_entry_free(e);
	}
	return r;
}

static int zlib_begin(pack_ctx *c, int level)
{
	c->zbuf = storage_buf_alloc(STORAGE_CHUNK);
	if (!c->zbuf)
		return cd_err_sys(c->err, ENOMEM, "zlib buffer");
	if (deflateInit2(&c->z, level, Z_DEFLATED, 15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return cd_err_set(c->err, EINVAL, "zlib: bad compression level %d", level);
	c->zlib_ready = true;
	return 0;
}

static int stream_archive(int fd, const char *root, const storage_tree *t, storage_compression comp,
                          const storage_opts *o, uint64_t *ret_bytes, cd_err *err)
{
	pack_ctx c = {.zlib = comp == STORAGE_ZLIB, .err = err};
	struct archive *a = NULL;
	int level = o && o->level ? o->level : DEFAULT_LEVEL;
	int r;

	r = storage_sink_init(&c.sink, fd, err);
	if (r < 0)
		goto out;
	if (c.zlib && (r = zlib_begin(&c, level)) < 0)
		goto out;
	a = archive_write_new();
	if (!a) {
		r = cd_err_sys(err, ENOMEM, "archive");
		goto out;
	}
	/* pax only where ustar cannot say it (files over 8 GiB, long names);
	 * no blocking: the sink already writes whole chunks */
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK) {
		r = archive_fail(a, &c, "tar");
		goto out;
	}
	if ((r = set_filter(a, &c, comp, level)) < 0)
		goto out;
	if (archive_write_open(a, &c, NULL, write_cb, NULL) != ARCHIVE_OK) {
		r = archive_fail(a, &c, "open archive");
		goto out;
	}
	r = write_manifest(a, &c, &t->totals);
	if (r == 0)
		r = write_entries(a, &c, root, t, o);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = archive_fail(a, &c, "close archive");
	if (r == 0 && c.zlib)
		r = zlib_pump(&c, NULL, 0, Z_FINISH);
	if (r == 0)
		r = storage_sink_finish(&c.sink, err);
	if (r == 0)
		*ret_bytes = c.sink.written;
out:
	if (a)
		archive_write_free(a);
	if (c.zlib_ready)
		deflateEnd(&c.z);
	free(c.zbuf);
	storage_sink_release(&c.sink);
	return r;
}

static bool has_manifest_name(const storage_tree *t)
{
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->entries[i].path, STORAGE_MANIFEST) == 0)
			return true;
	return false;
}

static int pack_archive(const char *root, const storage_tree *t, const char *dest,
                        storage_compression comp, const storage_opts *o, storage_stats *st,
                        cd_err *err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (has_manifest_name(t))
		return cd_err_set(err, EINVAL, "%s: holds a file named %s, reserved for archives",
		                  root, STORAGE_MANIFEST);
	r = storage_tmp_name(dest, &tmp, err);
	if (r < 0)
		return r;
	fd = storage_create_write(AT_FDCWD, tmp, err);
	if (fd < 0)
		return fd;
	r = stream_archive(fd, root, t, comp, o, &st->stored_bytes, err);
	if (r == 0 && fsync(fd) < 0)
		r = cd_err_sys(err, errno, "%s: fsync", tmp);
	if (r == 0 && close(TAKE_FD(fd)) < 0)
		r = cd_err_sys(err, errno, "%s: close", tmp);
	if (r == 0)
		r = storage_rename_noreplace(tmp, dest, err);
	if (r == 0)
		r = storage_fsync_parent(dest, err);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* ---- none: the image stays a directory ---- */

static int copy_entry(int srcfd, int dstfd, const storage_entry *e, storage_sink *sink,
                      bool durable, cd_err *err)
{
	_cleanup_close_ int in = -1, out = -1;
	int r;

	if (e->dir) {
		if (mkdirat(dstfd, e->path, 0700) < 0)
			return cd_err_sys(err, errno, "mkdir %s", e->path);
		return 0;
	}
	in = storage_open_read(srcfd, e->path, err);
	if (in < 0)
		return in;
	out = storage_create_write(dstfd, e->path, err);
	if (out < 0)
		return out;
	storage_sink_target(sink, out);
	r = storage_copy_fd(in, e->size, sink, err);
	if (r == 0)
		r = storage_sink_finish(sink, err);
	if (r < 0) {
		storage_sink_abort(sink);
		return cd_err_wrap(err, "%s", e->path);
	}
	if (durable && fsync(out) < 0)
		return cd_err_sys(err, errno, "%s: fsync", e->path);
	return 0;
}

/* Directories are fsync'ed after all their entries exist, deepest first. */
static int fsync_dirs(int rootfd, const storage_tree *t, cd_err *err)
{
	for (size_t i = t->count; i-- > 0;) {
		if (!t->entries[i].dir)
			continue;
		_cleanup_close_ int fd = openat(rootfd, t->entries[i].path,
		                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0)
			return cd_err_sys(err, errno, "%s: fsync", t->entries[i].path);
	}
	if (fsync(rootfd) < 0)
		return cd_err_sys(err, errno, "fsync");
	return 0;
}

int storage_copy_tree(const char *src, const storage_tree *t, const char *dest, bool durable,
                      const storage_opts *opts, cd_err *err)
{
	_cleanup_close_ int srcfd = -1, dstfd = -1;
	storage_sink sink;
	uint64_t done = 0;
	int r;

	srcfd = storage_open_dir(src, err);
	if (srcfd < 0)
		return srcfd;
	if (mkdir(dest, 0700) < 0)
		return cd_err_sys(err, errno, "mkdir %s", dest);
	r = storage_sink_init(&sink, -1, err);
	if (r == 0 && (dstfd = storage_open_dir(dest, err)) < 0)
		r = dstfd;
	if (r == 0 && fchmod(dstfd, 0700) < 0)
		r = cd_err_sys(err, errno, "chmod %s", dest);
	for (size_t i = 0; i < t->count && r == 0; i++) {
		r = copy_entry(srcfd, dstfd, &t->entries[i], &sink, durable, err);
		done += t->entries[i].size;
		storage_report(opts, done, t->totals.bytes);
	}
	if (r == 0 && durable)
		r = fsync_dirs(dstfd, t, err);
	storage_sink_release(&sink);
	if (r < 0)
		storage_remove_at(AT_FDCWD, dest);
	return r;
}

/* Makes the tree private (0600/0700) and durable in place. */
static int seal_in_place(const char *root, const storage_tree *t, cd_err *err)
{
	_cleanup_close_ int rootfd = storage_open_dir(root, err);

	if (rootfd < 0)
		return rootfd;
	for (size_t i = 0; i < t->count; i++) {
		const storage_entry *e = &t->entries[i];
		_cleanup_close_ int fd =
		    openat(rootfd, e->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);

		if (fd < 0 || fchmod(fd, e->dir ? 0700 : 0600) < 0 || (!e->dir && fsync(fd) < 0))
			return cd_err_sys(err, errno, "%s/%s", root, e->path);
	}
	if (fchmod(rootfd, 0700) < 0)
		return cd_err_sys(err, errno, "chmod %s", root);
	return fsync_dirs(rootfd, t, err);
}

static int pack_dir(const char *root, const storage_tree *t, const char *dest,
                    const storage_opts *o, cd_err *err)
{
	_cleanup_free_ char *tmp = NULL;
	int r;

	if (o && o->remove_source) {
		r = seal_in_place(root, t, err);
		if (r < 0)
			return r;
		if (renameat2(AT_FDCWD, root, AT_FDCWD, dest, RENAME_NOREPLACE) == 0) {
			storage_report(o, t->totals.bytes, t->totals.bytes);
			r = storage_fsync_parent(dest, err);
			return r < 0 ? r : storage_fsync_parent(root, err);
		}
		if (errno != EXDEV)
			return storage_rename_noreplace(root, dest, err);
		/* another filesystem: copy, then consume the source below */
	}
	r = storage_tmp_name(dest, &tmp, err);
	if (r == 0)
		r = storage_copy_tree(root, t, tmp, true, o, err);
	if (r < 0)
		return r;
	r = storage_rename_noreplace(tmp, dest, err);
	if (r == 0)
		r = storage_fsync_parent(dest, err);
	if (r < 0) {
		storage_remove_at(AT_FDCWD, tmp);
		return r;
	}
	if (o && o->remove_source)
		storage_remove_at(AT_FDCWD, root);
	return 0;
}

static int check_dest_free(const char *dest, cd_err *err)
{
	struct stat st;

	if (fstatat(AT_FDCWD, dest, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return cd_err_set(err, EEXIST, "%s: already exists", dest);
	if (errno != ENOENT)
		return cd_err_sys(err, errno, "%s", dest);
	return 0;
}

int storage_pack(const char *image_dir, const char *dest_path, storage_compression c,
                 const storage_opts *opts, storage_stats *ret_stats, cd_err *err)
{
	storage_tree t = {0};
	storage_stats st = {0};
	int r;

	if ((unsigned)c > STORAGE_ZSTD)
		return cd_err_set(err, EINVAL, "pack: unknown compression %d", (int)c);
	r = check_dest_free(dest_path, err);
	if (r == 0)
		r = storage_tree_scan(image_dir, &t, err);
	if (r < 0)
		return cd_err_wrap(err, "pack");
	st.files = t.totals.files;
	st.payload_bytes = t.totals.bytes;
	if (c == STORAGE_NONE) {
		r = pack_dir(image_dir, &t, dest_path, opts, err);
		st.stored_bytes = st.payload_bytes;
	} else {
		r = pack_archive(image_dir, &t, dest_path, c, opts, &st, err);
		if (r == 0 && opts && opts->remove_source)
			storage_remove_at(AT_FDCWD, image_dir);
	}
	storage_tree_free(&t);
	if (r < 0)
		return cd_err_wrap(err, "pack %s", dest_path);
	if (ret_stats)
		*ret_stats = st;
	return 0;
}
