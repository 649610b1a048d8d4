/* Shared pieces of the storage module; not part of its public API. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>

#include "shared/error.h"
#include "storage/storage.h"

/* One I/O chunk: large enough that syscalls and per-call overheads vanish
 * next to the copy itself, small enough to stay in the L2/L3 caches. */
#define STORAGE_CHUNK ((size_t)4 << 20)
/* O_DIRECT needs buffer, offset and length aligned to the logical block
 * size; the page size covers every block device we meet. */
#define STORAGE_ALIGN ((size_t)4096)
/* First entry of every archive we write: entry counts, so that an archive
 * cut at an entry boundary (which tar itself accepts) is refused. */
#define STORAGE_MANIFEST ".cedana-storage"
/* Last entry of every archive we write: a CRC-32 of each file, in archive
 * order. Most formats do not check their content (libarchive stops reading
 * at the tar end marker, before any stream checksum), so this is what finds
 * a flipped byte. */
#define STORAGE_TRAILER ".cedana-storage-crc"
/* Directories deeper than this are refused rather than recursed into. */
#define STORAGE_MAX_DEPTH 64

typedef struct storage_manifest {
	uint64_t files;
	uint64_t dirs;
	uint64_t bytes;
} storage_manifest;

/* ---- fsutil.c: paths and trees ---- */

/* Splits "a/b/c" into "a/b" and "c" ("." for a bare name). */
int storage_split_path(const char *path, char **ret_dir, char **ret_base, cd_err *err);
/* "<dir>/.<base>.tmp-XXXXXX" with a random suffix, beside path. */
int storage_tmp_name(const char *path, char **ret, cd_err *err);
/* A target to create: must not exist, its parent must be a directory. */
int storage_check_dest(const char *path, cd_err *err);
/* Opens a directory for fsync/openat use. */
int storage_open_dir(const char *path, cd_err *err);
int storage_fsync_parent(const char *path, cd_err *err);
/* rename(2) that never replaces an existing target. */
int storage_rename_noreplace(const char *from, const char *to, cd_err *err);
/* Recursive unlink of name under dirfd; ENOENT is success. */
int storage_remove_at(int dirfd, const char *name);

typedef struct storage_entry {
	char *path; /* relative to the root, no leading "./" */
	bool dir;
	uint64_t size;
	int64_t mtime;
} storage_entry;

typedef struct storage_tree {
	storage_entry *entries; /* parents before their children, names sorted */
	size_t count;
	size_t cap;
	storage_manifest totals;
} storage_tree;

/* Lists root (regular files and directories only; anything else is refused). */
int storage_tree_scan(const char *root, storage_tree *ret, cd_err *err);
void storage_tree_free(storage_tree *t);

/* ---- stream.c: buffered, O_DIRECT-when-possible sequential I/O ---- */

void *storage_buf_alloc(size_t size);

/* openat() with O_DIRECT where the filesystem allows it; -1 and errno on
 * failure. */
int storage_open_direct(int dirfd, const char *path, int flags, mode_t mode);
/* Creates path (O_EXCL, mode 0600) for sequential writing, with O_DIRECT
 * where the filesystem allows it. */
int storage_create_write(int dirfd, const char *path, cd_err *err);
/* Reads up to len bytes (len a multiple of STORAGE_ALIGN, buf aligned); a
 * short count means end of file. Falls back to buffered reads if the
 * filesystem refuses an O_DIRECT read. */
ssize_t storage_read_full(int fd, void *buf, size_t len);

/* Sequential writer: gathers bytes in aligned chunks and hands whole chunks
 * to a writer thread, which writes them with O_DIRECT (if the fd has it);
 * the unaligned tail is written buffered by storage_sink_finish. Does not
 * own the fd. */
typedef struct storage_sink {
	int fd;
	uint8_t *buf; /* the chunk being filled */
	size_t len;
	uint64_t written;     /* bytes passed on (queued or written) */
	struct sink_queue *q; /* NULL: synchronous writes */
} storage_sink;

int storage_sink_init(storage_sink *s, int fd, cd_err *err);
/* Points a finished (or fresh) sink at another fd. */
void storage_sink_target(storage_sink *s, int fd);
int storage_sink_write(storage_sink *s, const void *data, size_t n, cd_err *err);
/* Writes n zero bytes (holes in sparse archive entries). */
int storage_sink_zero(storage_sink *s, uint64_t n, cd_err *err);
int storage_sink_finish(storage_sink *s, cd_err *err);
/* After a failure: waits until the writer no longer uses the fd (which the
 * caller may then close) and drops what was not written. */
void storage_sink_abort(storage_sink *s);
void storage_sink_release(storage_sink *s);

/* ---- deflate.c: gzip, zlib and lz4 streams, compressed in parallel ---- */

typedef struct storage_deflate storage_deflate;

/* Starts a gzip (RFC 1952), zlib (RFC 1950) or LZ4 frame stream into sink
 * (header written), with one compressing thread per CPU. */
int storage_deflate_start(storage_sink *sink, storage_compression fmt, int level,
                          storage_deflate **ret, cd_err *err);
int storage_deflate_write(storage_deflate *d, const void *data, size_t n, cd_err *err);
/* Compresses what is left and writes the trailer. */
int storage_deflate_finish(storage_deflate *d, cd_err *err);
/* Stops the threads; NULL is fine. */
void storage_deflate_free(storage_deflate *d);

/* ---- reader.c: read-ahead in a thread ---- */

typedef struct storage_reader storage_reader;

/* Reads the files names[0..count) under dirfd in order (or, with names NULL,
 * the one open fd dirfd, which stays the caller's) ahead of the consumer.
 * names must outlive the reader. */
int storage_reader_start(int dirfd, char *const *names, size_t count, storage_reader **ret,
                         cd_err *err);
/* The next chunk of the current file, valid until the next call: > 0 bytes,
 * 0 at the end of each file (then the next file follows; after the last,
 * 0 again), < 0 on error, with err naming the file. */
ssize_t storage_reader_next(storage_reader *r, const uint8_t **ret_buf, cd_err *err);
/* Stops the thread (wherever it is) and frees the reader; NULL is fine. */
void storage_reader_stop(storage_reader *r);

/* ---- manifest (compression.c) ---- */

int storage_manifest_format(const storage_manifest *m, char *buf, size_t len);
int storage_manifest_parse(const char *buf, size_t len, storage_manifest *ret);
/* The trailer: a header line, then one "%08x\n" per file. */
char *storage_trailer_format(const uint32_t *crcs, size_t n, size_t *ret_len);
/* Returns the number of CRCs read into crcs (at most max), or -EINVAL. */
ssize_t storage_trailer_parse(const char *buf, size_t len, uint32_t *crcs, size_t max);

/* ---- pack.c, used by unpack.c for directory images ---- */

/* Copies the scanned tree t of src into dest (which must not exist; created
 * 0700, files 0600). With durable, every file and directory is fsync'ed. */
int storage_copy_tree(const char *src, const storage_tree *t, const char *dest, bool durable,
                      const storage_opts *opts, cd_err *err);

static inline void storage_report(const storage_opts *o, uint64_t done, uint64_t total)
{
	if (o && o->progress)
		o->progress(done, total, o->userdata);
}
