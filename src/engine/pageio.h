/* Page files: written through a reused aligned buffer with O_DIRECT (plain
 * buffered I/O where the filesystem refuses it), read back the same way. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "engine/image.h"

#define CD_PAGEIO_BUF (8u << 20)

struct cd_page_writer;
int cd_pw_open(int dirfd, const char *name, struct cd_page_writer **ret, cd_err *err);
/* Free space at the buffer's end (a multiple of the page size, never 0). */
size_t cd_pw_reserve(struct cd_page_writer *pw, uint8_t **ret_dst);
/* Accepts len bytes written at the reserved place; flushes a full buffer. */
int cd_pw_commit(struct cd_page_writer *pw, size_t len, cd_err *err);
/* Flushes, fsyncs, returns total size and checksum. */
int cd_pw_finish(struct cd_page_writer *pw, uint64_t *ret_size, uint64_t *ret_csum, cd_err *err);
/* Time spent in write() and in fsync() so far. */
void cd_pw_times(const struct cd_page_writer *pw, uint64_t *ret_write_ns, uint64_t *ret_fsync_ns);
void cd_pw_free(struct cd_page_writer *pw);
static inline void cd_pw_freep(struct cd_page_writer **pw)
{
	cd_pw_free(*pw);
}

struct cd_page_reader;
int cd_pr_open(int dirfd, const char *name, struct cd_page_reader **ret, cd_err *err);
/* Next bytes of the file: up to want bytes at *ret_src (*ret_len > 0),
 * added to the reader's part of the file's checksum as they are read. */
int cd_pr_next(struct cd_page_reader *pr, size_t want, const void **ret_src, size_t *ret_len,
               cd_err *err);
/* Steps over len bytes someone else reads (and checksums). */
int cd_pr_skip(struct cd_page_reader *pr, uint64_t len, cd_err *err);
/* Once every byte went through cd_pr_next or cd_pr_skip: whether the
 * reader's part and other (the skipped bytes' part) add up to csum. */
int cd_pr_check(const struct cd_page_reader *pr, const struct cd_csum_part *other, uint64_t csum,
                cd_err *err);
/* len bytes at offset off of the file, not checksummed (the reader that
 * streams them checks them). */
int cd_pr_at(struct cd_page_reader *pr, uint64_t off, size_t len, const void **ret_src,
             cd_err *err);
void cd_pr_free(struct cd_page_reader *pr);
static inline void cd_pr_freep(struct cd_page_reader **pr)
{
	cd_pr_free(*pr);
}
