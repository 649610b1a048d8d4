/* libarchive, loaded when a checkpoint is first packed or unpacked, not
 * linked: with what it pulls in (libxml2, ICU, nettle, ACL, lzma, bz2) it
 * made every start of the binary 15-30 ms slower, restore of an image
 * directory included, which never reads an archive. Include this after
 * <archive.h> and <archive_entry.h>: the names below then call through
 * storage_archive, which storage_archive_load() fills (call it first). */
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "shared/error.h"

/* clang-format off */
#define STORAGE_ARCHIVE_FUNCS(X) \
	X(archive_entry_filetype) \
	X(archive_entry_free) \
	X(archive_entry_hardlink) \
	X(archive_entry_new) \
	X(archive_entry_pathname) \
	X(archive_entry_set_filetype) \
	X(archive_entry_set_mtime) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_perm) \
	X(archive_entry_set_size) \
	X(archive_entry_size) \
	X(archive_entry_size_is_set) \
	X(archive_errno) \
	X(archive_error_string) \
	X(archive_read_data) \
	X(archive_read_data_block) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_open) \
	X(archive_read_support_filter_gzip) \
	X(archive_read_support_filter_lz4) \
	X(archive_read_support_filter_zstd) \
	X(archive_read_support_format_tar) \
	X(archive_set_error) \
	X(archive_write_add_filter_zstd) \
	X(archive_write_close) \
	X(archive_write_data) \
	X(archive_write_free) \
	X(archive_write_header) \
	X(archive_write_new) \
	X(archive_write_open) \
	X(archive_write_set_bytes_per_block) \
	X(archive_write_set_filter_option) \
	X(archive_write_set_format_pax_restricted)
/* clang-format on */

struct storage_archive_api {
/* f names a function, and the member after it: nothing to parenthesize */
#define STORAGE_ARCHIVE_FIELD(f) __typeof__(&f) f; /* NOLINT(bugprone-macro-parentheses) */
	STORAGE_ARCHIVE_FUNCS(STORAGE_ARCHIVE_FIELD)
#undef STORAGE_ARCHIVE_FIELD
};

extern struct storage_archive_api storage_archive;

/* Loads libarchive once (thread-safe); 0, or an error naming why not. */
int storage_archive_load(cd_err *err);

#ifndef STORAGE_ARCHIVE_DL_IMPL
#define archive_entry_filetype            (storage_archive.archive_entry_filetype)
#define archive_entry_free                (storage_archive.archive_entry_free)
#define archive_entry_hardlink            (storage_archive.archive_entry_hardlink)
#define archive_entry_new                 (storage_archive.archive_entry_new)
#define archive_entry_pathname            (storage_archive.archive_entry_pathname)
#define archive_entry_set_filetype        (storage_archive.archive_entry_set_filetype)
#define archive_entry_set_mtime           (storage_archive.archive_entry_set_mtime)
#define archive_entry_set_pathname        (storage_archive.archive_entry_set_pathname)
#define archive_entry_set_perm            (storage_archive.archive_entry_set_perm)
#define archive_entry_set_size            (storage_archive.archive_entry_set_size)
#define archive_entry_size                (storage_archive.archive_entry_size)
#define archive_entry_size_is_set         (storage_archive.archive_entry_size_is_set)
#define archive_errno                     (storage_archive.archive_errno)
#define archive_error_string              (storage_archive.archive_error_string)
#define archive_read_data                 (storage_archive.archive_read_data)
#define archive_read_data_block           (storage_archive.archive_read_data_block)
#define archive_read_free                 (storage_archive.archive_read_free)
#define archive_read_new                  (storage_archive.archive_read_new)
#define archive_read_next_header          (storage_archive.archive_read_next_header)
#define archive_read_open                 (storage_archive.archive_read_open)
#define archive_read_support_filter_gzip  (storage_archive.archive_read_support_filter_gzip)
#define archive_read_support_filter_lz4   (storage_archive.archive_read_support_filter_lz4)
#define archive_read_support_filter_zstd  (storage_archive.archive_read_support_filter_zstd)
#define archive_read_support_format_tar   (storage_archive.archive_read_support_format_tar)
#define archive_set_error                 (storage_archive.archive_set_error)
#define archive_write_add_filter_zstd     (storage_archive.archive_write_add_filter_zstd)
#define archive_write_close               (storage_archive.archive_write_close)
#define archive_write_data                (storage_archive.archive_write_data)
#define archive_write_free                (storage_archive.archive_write_free)
#define archive_write_header              (storage_archive.archive_write_header)
#define archive_write_new                 (storage_archive.archive_write_new)
#define archive_write_open                (storage_archive.archive_write_open)
#define archive_write_set_bytes_per_block (storage_archive.archive_write_set_bytes_per_block)
#define archive_write_set_filter_option   (storage_archive.archive_write_set_filter_option)
#define archive_write_set_format_pax_restricted                                                    \
	(storage_archive.archive_write_set_format_pax_restricted)
#endif
