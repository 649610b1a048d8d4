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
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "shared/cleanup.h"
#include "storage/archive-dl.h"
#include "storage/internal.h"

typedef struct pack_ctx {
	storage_sink sink;
	storage_deflate *deflate; /* gzip, zlib and lz4: ours, in parallel */
	cd_err *err;
	bool cb_failed; /* the write callback filled err */
} pack_ctx;

static la_ssize_t write_cb(struct archive *a, void *client, const void *buf, size_t n)
{
	pack_ctx *c = client;
	int r = c->deflate ? storage_deflate_write(c->deflate, buf, n, c->err)
	                   : storage_sink_write(&c->sink, buf, n, c->err);

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
	case STORAGE_ZSTD:
		r = archive_write_add_filter_zstd(a);
		module = "zstd";
		/* a libzstd without threads still packs, just slower */
		if (r == ARCHIVE_OK)
			archive_write_set_filter_option(a, module, "threads", threads);
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

static int write_blob(struct archive *a, pack_ctx *c, const char *name, const void *data,
                      size_t len)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	if (!e)
		return cd_err_sys(c->err, ENOMEM, "%s", name);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, time(NULL), 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    archive_write_data(a, data, len) != (la_ssize_t)len)
		r = archive_fail(a, c, name);
	archive_entry_free(e);
	return r;
}

static int write_manifest(struct archive *a, pack_ctx *c, const storage_manifest *m)
{
	char text[256];
	int n = storage_manifest_format(m, text, sizeof(text));

	if (n < 0)
		return cd_err_sys(c->err, -n, "manifest");
	return write_blob(a, c, STORAGE_MANIFEST, text, (size_t)n);
}

static int write_trailer(struct archive *a, pack_ctx *c, const uint32_t *crcs, size_t n)
{
	size_t len;
	_cleanup_free_ char *text = storage_trailer_format(crcs, n, &len);

	if (!text)
		return cd_err_sys(c->err, ENOMEM, "trailer");
	return write_blob(a, c, STORAGE_TRAILER, text, len);
}

/* Streams one file's chunks from the reader into the archive. */
static int write_file_data(struct archive *a, pack_ctx *c, storage_reader *rd,
                           const storage_entry *ent, uint32_t *ret_crc, const storage_opts *o,
                           uint64_t *done, uint64_t total)
{
	uLong crc = crc32(0, NULL, 0);
	uint64_t left = ent->size;
	const uint8_t *buf;
	ssize_t n;

	while ((n = storage_reader_next(rd, &buf, c->err)) > 0) {
		if ((uint64_t)n > left)
			return cd_err_set(c->err, EIO, "%s: grew while being packed", ent->path);
		crc = crc32(crc, buf, (uInt)n);
		if (archive_write_data(a, buf, (size_t)n) != n)
			return archive_fail(a, c, ent->path);
		left -= (uint64_t)n;
		*done += (uint64_t)n;
		storage_report(o, *done, total);
	}
	if (n < 0)
		return (int)n; /* a negative errno */
	if (left)
		return cd_err_set(c->err, EIO, "%s: shrank while being packed", ent->path);
	*ret_crc = (uint32_t)crc;
	return 0;
}

/* The paths of the tree's files, in order, for the reader. */
static char **file_names(const storage_tree *t)
{
	char **names = calloc(t->totals.files + 1, sizeof(*names));
	size_t n = 0;

	for (size_t i = 0; names && i < t->count; i++)
		if (!t->entries[i].dir)
			names[n++] = t->entries[i].path;
	return names;
}

static int write_entries(struct archive *a, pack_ctx *c, int rootfd, const storage_tree *t,
                         storage_reader *rd, uint32_t *crcs, const storage_opts *o)
{
	uint64_t done = 0;
	size_t f = 0;
	int r = 0;

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
			r = write_file_data(a, c, rd, ent, &crcs[f++], o, &done, t->totals.bytes);
		archive_entry_free(e);
	}
	return r;
}

/* Manifest, every entry, trailer. */
static int write_image(struct archive *a, pack_ctx *c, const char *root, const storage_tree *t,
                       const storage_opts *o)
{
	_cleanup_free_ uint32_t *crcs = calloc(t->totals.files + 1, sizeof(*crcs));
	_cleanup_free_ char **names = file_names(t);
	_cleanup_close_ int rootfd = -1;
	storage_reader *rd = NULL;
	int r;

	if (!crcs || !names)
		return cd_err_sys(c->err, ENOMEM, "pack");
	rootfd = storage_open_dir(root, c->err);
	if (rootfd < 0)
		return rootfd;
	r = write_manifest(a, c, &t->totals);
	if (r == 0)
		r = storage_reader_start(rootfd, names, t->totals.files, &rd, c->err);
	if (r == 0)
		r = write_entries(a, c, rootfd, t, rd, crcs, o);
	storage_reader_stop(rd);
	if (r == 0)
		r = write_trailer(a, c, crcs, t->totals.files);
	return r;
}

static int stream_archive(int fd, const char *root, const storage_tree *t, storage_compression comp,
                          const storage_opts *o, uint64_t *ret_bytes, cd_err *err)
{
	pack_ctx c = {.err = err};
	struct archive *a = NULL;
	int level = o && o->level ? o->level : DEFAULT_LEVEL;
	int r;

	r = storage_sink_init(&c.sink, fd, err);
	if (r < 0)
		goto out;
	if ((comp == STORAGE_GZIP || comp == STORAGE_ZLIB || comp == STORAGE_LZ4) &&
	    (r = storage_deflate_start(&c.sink, comp, level, &c.deflate, err)) < 0)
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
	r = write_image(a, &c, root, t, o);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = archive_fail(a, &c, "close archive");
	if (r == 0 && c.deflate)
		r = storage_deflate_finish(c.deflate, err);
	if (r == 0)
		r = storage_sink_finish(&c.sink, err);
	if (r == 0)
		*ret_bytes = c.sink.written;
out:
	if (a)
		archive_write_free(a);
	storage_deflate_free(c.deflate);
	storage_sink_release(&c.sink);
	return r;
}

static bool has_reserved_name(const storage_tree *t)
{
	for (size_t i = 0; i < t->count; i++)
		if (strcmp(t->entries[i].path, STORAGE_MANIFEST) == 0 ||
		    strcmp(t->entries[i].path, STORAGE_TRAILER) == 0)
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

	if (has_reserved_name(t))
		return cd_err_set(err, EINVAL, "%s: holds a file named %s*, reserved for archives",
		                  root, STORAGE_MANIFEST);
	r = storage_archive_load(err);
	if (r < 0)
		return r;
	r = storage_tmp_name(dest, &tmp, err);
	if (r < 0)
		return r;
	fd = storage_create_write(AT_FDCWD, tmp, err);
	if (fd < 0)
		return fd;
	if (o && o->set_owner && fchown(fd, o->owner_uid, o->owner_gid) < 0)
		r = cd_err_sys(err, errno, "chown %s", tmp);
	else
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

static int copy_file(int dstfd, const storage_entry *e, storage_reader *rd, storage_sink *sink,
                     bool durable, cd_err *err)
{
	_cleanup_close_ int out = storage_create_write(dstfd, e->path, err);
	uint64_t got = 0;
	const uint8_t *buf;
	ssize_t n;
	int r = 0;

	if (out < 0)
		return out;
	storage_sink_target(sink, out);
	while (r == 0 && (n = storage_reader_next(rd, &buf, err)) > 0) {
		got += (uint64_t)n;
		r = got > e->size ? cd_err_set(err, EIO, "changed while being copied")
		                  : storage_sink_write(sink, buf, (size_t)n, err);
	}
	if (r == 0 && n < 0)
		r = (int)n;
	if (r == 0 && got != e->size)
		r = cd_err_set(err, EIO, "changed while being copied");
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

static int copy_entries(int srcfd, int dstfd, const storage_tree *t, bool durable,
                        const storage_opts *opts, cd_err *err)
{
	_cleanup_free_ char **names = file_names(t);
	storage_reader *rd = NULL;
	storage_sink sink;
	uint64_t done = 0;
	int r;

	if (!names)
		return cd_err_sys(err, ENOMEM, "copy");
	r = storage_sink_init(&sink, -1, err);
	if (r < 0)
		return r;
	r = storage_reader_start(srcfd, names, t->totals.files, &rd, err);
	for (size_t i = 0; i < t->count && r == 0; i++) {
		const storage_entry *e = &t->entries[i];

		if (e->dir && mkdirat(dstfd, e->path, 0700) < 0)
			r = cd_err_sys(err, errno, "mkdir %s", e->path);
		else if (!e->dir)
			r = copy_file(dstfd, e, rd, &sink, durable, err);
		done += e->size;
		storage_report(opts, done, t->totals.bytes);
	}
	storage_reader_stop(rd);
	storage_sink_release(&sink);
	return r;
}

int storage_copy_tree(const char *src, const storage_tree *t, const char *dest, bool durable,
                      const storage_opts *opts, cd_err *err)
{
	_cleanup_close_ int srcfd = -1, dstfd = -1;
	int r = 0;

	srcfd = storage_open_dir(src, err);
	if (srcfd < 0)
		return srcfd;
	if (mkdir(dest, 0700) < 0)
		return cd_err_sys(err, errno, "mkdir %s", dest);
	dstfd = storage_open_dir(dest, err);
	if (dstfd < 0)
		r = dstfd;
	if (r == 0 && fchmod(dstfd, 0700) < 0)
		r = cd_err_sys(err, errno, "chmod %s", dest);
	if (r == 0)
		r = copy_entries(srcfd, dstfd, t, durable, opts, err);
	if (r == 0 && durable)
		r = fsync_dirs(dstfd, t, err);
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

/* Hands the finished tree to its owner (a daemon packing for a caller). */
static int own_tree(const char *root, const storage_tree *t, const storage_opts *o, cd_err *err)
{
	_cleanup_close_ int rootfd = -1;

	if (!o || !o->set_owner)
		return 0;
	rootfd = storage_open_dir(root, err);
	if (rootfd < 0)
		return rootfd;
	for (size_t i = 0; i < t->count; i++)
		if (fchownat(rootfd, t->entries[i].path, o->owner_uid, o->owner_gid,
		             AT_SYMLINK_NOFOLLOW) < 0)
			return cd_err_sys(err, errno, "chown %s", t->entries[i].path);
	if (fchown(rootfd, o->owner_uid, o->owner_gid) < 0)
		return cd_err_sys(err, errno, "chown %s", root);
	return 0;
}

static int pack_dir(const char *root, const storage_tree *t, const char *dest,
                    const storage_opts *o, cd_err *err)
{
	_cleanup_free_ char *tmp = NULL;
	int r;

	if (o && o->remove_source) {
		r = own_tree(root, t, o, err);
		if (r == 0)
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
	r = own_tree(tmp, t, o, err);
	if (r == 0)
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

static int check_level(storage_compression c, const storage_opts *o, cd_err *err)
{
	int max = c == STORAGE_ZSTD ? 22 : 9;

	if (!o || !o->level || c == STORAGE_NONE || c == STORAGE_TAR)
		return 0;
	if (o->level < 1 || o->level > max)
		return cd_err_set(err, EINVAL,
		                  "pack: compression level %d out of range for %s (1-%d)", o->level,
		                  storage_compression_name(c), max);
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
	r = check_level(c, opts, err);
	if (r < 0)
		return r;
	r = storage_check_dest(dest_path, err);
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
