/* Checkpoint image storage: turns a finished image directory into what the
 * user asked for (the directory itself, or one tar archive, optionally
 * compressed) and back. Writes are atomic (temporary name beside the target,
 * fsync, rename), extraction is safe (nothing can land outside the target:
 * only regular files and directories, no absolute paths, no ".."), and a
 * failure leaves nothing behind. See docs/storage.md. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/error.h"

typedef enum storage_compression {
	STORAGE_NONE, /* a plain directory */
	STORAGE_TAR,
	STORAGE_GZIP,
	STORAGE_LZ4,
	STORAGE_ZLIB, /* RFC 1950 zlib stream around a tar */
	STORAGE_ZSTD,
} storage_compression;

/* "none|tar|gzip|lz4|zlib|zstd" → value; an unknown name fails with -EINVAL
 * and a message listing the accepted names. */
int storage_compression_parse(const char *name, storage_compression *ret, cd_err *err);

/* Name as accepted by storage_compression_parse; "unknown" if out of range. */
const char *storage_compression_name(storage_compression c);

/* File name suffix: "" (a directory), ".tar", ".tar.gz", ".tar.lz4",
 * ".tar.zlib", ".tar.zst". */
const char *storage_compression_suffix(storage_compression c);

/* The compression a file name's suffix claims (".tar.zst" → zstd); a name
 * with none of the suffixes gives STORAGE_NONE. Only for naming policy:
 * restore goes by content (storage_detect). */
storage_compression storage_compression_from_suffix(const char *name);

/* "dir/name" + the suffix of c, e.g. "/tmp/dump-process-42-1700000000.tar.zst".
 * Returns NULL (with err) on allocation failure; the caller frees. */
char *storage_dest_path(const char *dir, const char *name, storage_compression c, cd_err *err);

/* Called after each chunk: done and total bytes (pack: file payload; unpack:
 * archive bytes read). */
typedef void (*storage_progress_fn)(uint64_t done, uint64_t total, void *userdata);

typedef struct storage_opts {
	int level;          /* 1-9 (gzip, zlib, lz4), 1-22 (zstd); 0: 1, the fastest */
	bool remove_source; /* pack: consume image_dir on success (a rename for none) */
	bool set_owner;     /* pack: the result belongs to owner_uid:owner_gid */
	uid_t owner_uid;
	gid_t owner_gid;
	storage_progress_fn progress;
	void *userdata;
} storage_opts;

typedef struct storage_stats {
	uint64_t files;         /* regular files */
	uint64_t payload_bytes; /* sum of their sizes */
	uint64_t stored_bytes;  /* bytes of the archive (or directory tree) on disk */
} storage_stats;

/* Packs image_dir (regular files and directories only) into dest_path with
 * compression c. dest_path must not exist; the result is created 0600 (files)
 * and 0700 (directories), fsync'ed together with its parent directory, and
 * appears only when complete. opts and ret_stats may be NULL. */
int storage_pack(const char *image_dir, const char *dest_path, storage_compression c,
                 const storage_opts *opts, storage_stats *ret_stats, cd_err *err);

/* Detects the format of path from its content (a directory is STORAGE_NONE);
 * anything else fails with -EINVAL "not a checkpoint image". */
int storage_detect(const char *path, storage_compression *ret, cd_err *err);

/* Unpacks the image at path (format from content) into dest_dir, which must
 * not exist and is created 0700, files 0600. Refuses absolute paths, "..",
 * links, devices, corrupted or truncated archives; on failure dest_dir does not
 * exist. ret_format, opts and ret_stats may be NULL. */
int storage_unpack(const char *path, const char *dest_dir, const storage_opts *opts,
                   storage_compression *ret_format, storage_stats *ret_stats, cd_err *err);

/* Size of a checkpoint for the SIZE column: the length of a file, or the sum
 * of the lengths of every file under a directory tree (like du -sb). */
int storage_size(const char *path, uint64_t *ret, cd_err *err);

/* Whether the user uid (primary group gid, and uid's supplementary groups)
 * may create entries in dir: checked by a short-lived child that takes on
 * those credentials, so ACLs and every other rule of the kernel apply. For
 * a daemon running as root that dumps on behalf of a caller. -EACCES (with a
 * message naming dir) if not. */
int storage_check_writable(const char *dir, uid_t uid, gid_t gid, cd_err *err);

/* Removes a file or a directory tree (for deleting a checkpoint). A missing
 * path is not an error. */
int storage_remove(const char *path, cd_err *err);
