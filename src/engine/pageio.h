/* Page files: written through a reused aligned buffer with O_DIRECT (plain
 * buffered I/O where the filesystem refuses it), read back the same way. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/image.h"

#define CD_PAGEIO_BUF (8u << 20)

/* Streamed page data (docs/engine.md, "Parallel streams"): a task's page
 * data, the same bytes at the same offsets as one plain page file, cut in
 * chunks of CD_STREAM_CHUNK bytes dealt round-robin over `streams` files
 * "pages-PID.S.img", each written and read by a thread of its own. With a
 * codec, each chunk is one record (header, lz4 block or zstd frame, padded
 * to a page) and a chunk that does not shrink is stored as it is. streams
 * 1 with no codec is the plain single file. Checksums cover the
 * uncompressed bytes. */
#define CD_STREAM_CHUNK (2u << 20)
/* Whether l describes a layout this engine reads and writes. */
int cd_page_layout_check(const struct cd_page_layout *l, cd_err *err);
/* A plain page file: one stream, no codec (also for a zeroed layout). */
bool cd_page_layout_plain(const struct cd_page_layout *l);
/* "none", "lz4", "zstd"; NULL past the end. */
const char *cd_page_codec_name(enum cd_page_codec c);
int cd_page_codec_parse(const char *name, enum cd_page_codec *ret, cd_err *err);
/* Stream s's file of the page file name ("pages-7.img", 2 → "pages-7.2.img"). */
int cd_page_stream_name(const char *name, unsigned s, char *buf, size_t len, cd_err *err);
/* Whether the files of page file name (size bytes in layout l, streamed)
 * are all there, with sizes that can hold it, and its record index, where
 * it has one, right for them (cd_page_index_parse): a cheap check before a
 * restore starts; their contents are checked as they are read. */
int cd_page_files_check(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                        cd_err *err);

/* The record index of a compressed page file (docs/image-format.md,
 * `pages`): "pages-PID.idx" beside the streams, written by the dump, so a
 * restore knows where every record lies without reading the headers on
 * the way. Little-endian: a header of CD_PAGE_INDEX_HEAD bytes (u32 magic
 * CD_PAGE_INDEX_MAGIC, u32 version 1, u32 streams, u32 codec, u64 the
 * data's size, u64 the number of chunks), then per chunk, in chunk order,
 * a u32: its record's stored length (bits 0-23) and codec (bits 24-31). */
#define CD_PAGE_INDEX_MAGIC 0x49504443u /* "CDPI" */
#define CD_PAGE_INDEX_HEAD  32u
/* The index file of page file name ("pages-7.img" → "pages-7.idx"). */
int cd_page_index_name(const char *name, char *buf, size_t len, cd_err *err);
/* Checks len bytes of an index read from a file (untrusted) against the
 * layout l, the data's size and the sizes of its stream files (fsize[s],
 * l->streams of them): every field, every entry (stored length at most
 * its chunk's, the codec none or l's, a record stored as it is exactly
 * its chunk), and each stream's records, padded, adding up to its file.
 * On success *ret (malloc'd) holds one entry per chunk. */
int cd_page_index_parse(const void *buf, size_t len, const struct cd_page_layout *l, uint64_t size,
                        const uint64_t *fsize, uint32_t **ret, cd_err *err);

struct cd_page_writer;
int cd_pw_open(int dirfd, const char *name, struct cd_page_writer **ret, cd_err *err);
/* The same for a layout (NULL: plain); a streamed writer runs one thread
 * per stream until cd_pw_finish or cd_pw_free. */
int cd_pw_open_layout(int dirfd, const char *name, const struct cd_page_layout *layout,
                      struct cd_page_writer **ret, cd_err *err);
/* Free space at the buffer's end (a multiple of the page size, never 0). */
size_t cd_pw_reserve(struct cd_page_writer *pw, uint8_t **ret_dst);
/* Accepts len bytes written at the reserved place; flushes a full buffer. */
int cd_pw_commit(struct cd_page_writer *pw, size_t len, cd_err *err);
/* Flushes, fsyncs, returns total size and checksum. */
int cd_pw_finish(struct cd_page_writer *pw, uint64_t *ret_size, uint64_t *ret_csum, cd_err *err);
/* Time spent in write() and in fsync() so far (streamed: the longest
 * stream's, compression included). */
void cd_pw_times(const struct cd_page_writer *pw, uint64_t *ret_write_ns, uint64_t *ret_fsync_ns);
void cd_pw_free(struct cd_page_writer *pw);
static inline void cd_pw_freep(struct cd_page_writer **pw)
{
	cd_pw_free(*pw);
}

struct cd_page_reader;
int cd_pr_open(int dirfd, const char *name, struct cd_page_reader **ret, cd_err *err);
/* The page file name of size bytes in layout (NULL: plain). A streamed
 * reader checks that every stream file is there with its size, and reads
 * and checks the record index where there is one (then every record's
 * place is known, and a record's header and data come in one read), before
 * it returns, then decodes on demand, one chunk at a time, into a window of
 * its own (the chunks of the largest cd_pr_at request; cd_pr_next returns
 * at most to the end of a chunk); a bad record fails the call that needs
 * it, and cd_pr_check walks the framing of every record it skipped. A
 * pointer it returns is good until the next call on the reader. */
int cd_pr_open_layout(int dirfd, const char *name, uint64_t size,
                      const struct cd_page_layout *layout, struct cd_page_reader **ret,
                      cd_err *err);
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
/* For a reader that read its data with cd_pr_at only (the lazy server's):
 * every record of every stream well formed and nothing after the last
 * (cd_pr_check's framing check, without its position and sum). 0 when
 * plain. */
int cd_pr_check_ends(struct cd_page_reader *pr, cd_err *err);
void cd_pr_free(struct cd_page_reader *pr);
static inline void cd_pr_freep(struct cd_page_reader **pr)
{
	cd_pr_free(*pr);
}

/* Streamed page data, all at once (docs/engine.md, "Parallel streams"):
 * bytes [off, off+len) of the data go to `to` (the caller's address: the
 * premapped slots of a new task). Sorted by off, not overlapping. */
struct cd_page_dest {
	uint64_t off, len, to;
};
/* A piece of a decoded chunk: len bytes at src for `to`. */
struct cd_page_piece {
	const void *src;
	uint64_t len, to;
};
/* Called from the streams' writer threads at once, with the pieces of one
 * chunk; src is good until it returns. */
typedef int (*cd_page_put_fn)(void *arg, const struct cd_page_piece *p, size_t n, cd_err *err);
/* Reads the streams of page file name (size bytes, streamed layout l) in
 * one thread per stream, decodes each chunk a destination wants once into
 * one of that thread's two buffers and hands its pieces to put, which the
 * stream's writer thread calls while the next chunk is decoded into the
 * other buffer; a chunk nobody wants is stepped over unread (without a
 * record index its header is checked). Adds what it handed out to csum.
 * A bad record, a short stream or bytes after the last record
 * fail it. The threads run in the caller's process: never call it in a
 * task made by a raw clone3 (its libc state was not set up for threads). */
/* Whether the streams of layout l leave cores spare (fewer streams than
 * the CPUs this process may run on): then each stream gets a writer
 * thread beside its reader, and the waiting task faults its memory in
 * itself. Where the streams already take every core, the extra threads
 * only add switches and contention: measured slower with 4 streams on 2
 * cores (docs/engine.md, "Parallel streams"). */
bool cd_page_fill_spare(const struct cd_page_layout *l);
int cd_page_fill(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                 const struct cd_page_dest *d, size_t nd, cd_page_put_fn put, void *arg,
                 struct cd_csum_part *csum, cd_err *err);
/* The chunks of streams that lie in their stream files as they are (every
 * chunk with no codec; with one, the records stored as they are, found
 * through the record index): their bytes are read straight into a task's
 * memory, by the task and a controller thread in steps, as a plain page
 * file's are (mem.c), while the stream threads decode the rest
 * (cd_page_fill_coded). Opened (its stream files and index) by the
 * controller before the tasks exist; a task made by a raw clone uses its
 * copy and the inherited descriptors. *ret NULL: a codec and no index. */
struct cd_page_stored;
int cd_page_stored_open(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                        struct cd_page_stored **ret, cd_err *err);
void cd_page_stored_free(struct cd_page_stored *ps);
static inline void cd_page_stored_freep(struct cd_page_stored **ps)
{
	cd_page_stored_free(*ps);
}
/* Whether chunk k lies in its stream as it is. */
bool cd_page_stored_has(const struct cd_page_stored *ps, uint64_t k);
/* len bytes at offset off of the data, all in one such chunk, read into
 * dst, that chunk's header (with a codec) checked first. Allocates
 * nothing. */
int cd_page_stored_read(const struct cd_page_stored *ps, uint64_t off, void *dst, size_t len,
                        cd_err *err);
/* cd_page_fill for the compressed chunks only (those that lie as they are
 * are left to the steps). */
int cd_page_fill_coded(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                       const struct cd_page_dest *d, size_t nd, cd_page_put_fn put, void *arg,
                       struct cd_csum_part *csum, cd_err *err);
/* As cd_page_fill, for destinations that are a small part of the data (a
 * lazy restore's premapped mappings, the rest left to its server): in
 * this thread, only the chunks they want decoded, and of the others
 * nothing read with a record index, only the record headers that lead to
 * them without one, with no read-ahead (a walk of cd_page_fill reads
 * ahead over every chunk: the whole image). */
int cd_page_fill_sparse(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                        const struct cd_page_dest *d, size_t nd, cd_page_put_fn put, void *arg,
                        struct cd_csum_part *csum, cd_err *err);
/* The reader's files are read where asked, not ahead (a lazy restore's
 * faults jump). */
void cd_pr_advise_random(struct cd_page_reader *pr);
