#include "engine/pageio.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <lz4.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zstd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

struct stream_w;

struct cd_page_writer {
	int fd;
	bool direct;
	uint8_t *buf;
	size_t len, cap;
	struct stream_w *st; /* streamed: the threads that write the files */
	uint64_t total;
	struct cd_csum csum;
	uint64_t write_ns, fsync_ns;
	char name[64];
};

static int alloc_buf(uint8_t **ret, size_t size, cd_err *err)
{
	void *p;
	int r = posix_memalign(&p, CD_PAGE_SIZE, size);

	if (r)
		return cd_err_set(err, r, "allocate page buffer");
	*ret = p;
	return 0;
}

/* ---- layouts ---- */

static const char *const codec_names[CD_CODEC_COUNT] = {"none", "lz4", "zstd"};

const char *cd_page_codec_name(enum cd_page_codec c)
{
	return (unsigned)c < CD_CODEC_COUNT ? codec_names[c] : NULL;
}

int cd_page_codec_parse(const char *name, enum cd_page_codec *ret, cd_err *err)
{
	for (unsigned i = 0; name && i < CD_CODEC_COUNT; i++) {
		if (!strcmp(name, codec_names[i])) {
			*ret = (enum cd_page_codec)i;
			return 0;
		}
	}
	return cd_err_set(err, EINVAL, "unknown page codec '%s' (expected none, lz4 or zstd)",
	                  name ? name : "");
}

int cd_page_layout_check(const struct cd_page_layout *l, cd_err *err)
{
	if (l->streams < 1 || l->streams > CD_STREAMS_MAX)
		return cd_err_set(err, EINVAL, "streams %u out of range (1..%u)", l->streams,
		                  CD_STREAMS_MAX);
	if ((unsigned)l->codec >= CD_CODEC_COUNT)
		return cd_err_set(err, EINVAL, "unknown page codec %u", (unsigned)l->codec);
	return 0;
}

bool cd_page_layout_plain(const struct cd_page_layout *l)
{
	return !l || (l->streams <= 1 && l->codec == CD_CODEC_NONE);
}

int cd_page_stream_name(const char *name, unsigned s, char *buf, size_t len, cd_err *err)
{
	size_t n = strlen(name);
	int k;

	if (n > 4 && !strcmp(name + n - 4, ".img"))
		n -= 4;
	k = snprintf(buf, len, "%.*s.%u.img", (int)n, name, s);
	if (k < 0 || (size_t)k >= len)
		return cd_err_set(err, ENAMETOOLONG, "%s: stream file name too long", name);
	return 0;
}

static uint64_t chunk_len(uint64_t size, uint64_t k)
{
	uint64_t off = k * CD_STREAM_CHUNK;

	return size - off < CD_STREAM_CHUNK ? size - off : CD_STREAM_CHUNK;
}

/* A record of a compressed stream: this header in a page of its own, the
 * stored bytes, zeros up to the next page: the files can be written
 * O_DIRECT, and a chunk stored as it is can be mapped where it belongs. */
#define REC_HEAD  CD_PAGE_SIZE
#define REC_MAGIC 0x53504443u /* "CDPS" */
struct rec_head {
	uint32_t magic;
	uint32_t raw_len;    /* the chunk's length */
	uint32_t stored_len; /* what follows */
	uint8_t codec;       /* CD_CODEC_NONE: stored as it is */
	uint8_t pad[3];
};

static size_t rec_size(size_t stored)
{
	return REC_HEAD + ((stored + CD_PAGE_SIZE - 1) & ~(CD_PAGE_SIZE - 1));
}

static int pread_full(int fd, void *dst, size_t len, uint64_t off, const char *name, cd_err *err);

/* ---- the record index ---- */

#define IDX_LEN_MASK          0xffffffu
#define IDX_CODEC(e)          ((e) >> 24)
#define IDX_LEN(e)            ((e)&IDX_LEN_MASK)
#define IDX_ENTRY(len, codec) ((uint32_t)(len) | (uint32_t)(codec) << 24)

_Static_assert(CD_STREAM_CHUNK <= IDX_LEN_MASK, "a chunk's length fits an index entry");

static uint64_t nchunks_of(uint64_t size)
{
	return (size + CD_STREAM_CHUNK - 1) / CD_STREAM_CHUNK;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

int cd_page_index_name(const char *name, char *buf, size_t len, cd_err *err)
{
	size_t n = strlen(name);
	int k;

	if (n > 4 && !strcmp(name + n - 4, ".img"))
		n -= 4;
	k = snprintf(buf, len, "%.*s.idx", (int)n, name);
	if (k < 0 || (size_t)k >= len)
		return cd_err_set(err, ENAMETOOLONG, "%s: index file name too long", name);
	return 0;
}

/* Whether entry e is a record this layout may hold for a chunk of len
 * bytes (as rec_check_head asks of a header). */
static bool idx_entry_ok(uint32_t e, enum cd_page_codec codec, uint64_t len)
{
	uint32_t c = IDX_CODEC(e);

	if (c != CD_CODEC_NONE && c != (uint32_t)codec)
		return false;
	return c == CD_CODEC_NONE ? IDX_LEN(e) == len : IDX_LEN(e) <= len;
}

static int idx_check_head(const uint8_t *buf, size_t len, const struct cd_page_layout *l,
                          uint64_t size, cd_err *err)
{
	uint64_t n = nchunks_of(size);

	if (len < CD_PAGE_INDEX_HEAD || get_le32(buf) != CD_PAGE_INDEX_MAGIC ||
	    get_le32(buf + 4) != 1)
		return cd_err_set(err, EINVAL, "not a record index of version 1");
	if (get_le32(buf + 8) != l->streams || get_le32(buf + 12) != (uint32_t)l->codec)
		return cd_err_set(err, EINVAL, "its streams and codec are not the manifest's");
	if (get_le64(buf + 16) != size || get_le64(buf + 24) != n)
		return cd_err_set(err, EINVAL, "its size or chunk count is not the manifest's");
	if ((len - CD_PAGE_INDEX_HEAD) / 4 != n || (len - CD_PAGE_INDEX_HEAD) % 4)
		return cd_err_set(err, EINVAL, "%zu bytes, expected %" PRIu64, len,
		                  CD_PAGE_INDEX_HEAD + 4 * n);
	return 0;
}

int cd_page_index_parse(const void *buf, size_t len, const struct cd_page_layout *l, uint64_t size,
                        const uint64_t *fsize, uint32_t **ret, cd_err *err)
{
	uint64_t sum[CD_STREAMS_MAX] = {0};
	const uint8_t *p = buf;
	_cleanup_free_ uint32_t *ent = NULL;
	int r;

	if ((r = cd_page_layout_check(l, err)) < 0)
		return r;
	if (l->codec == CD_CODEC_NONE)
		return cd_err_set(err, EINVAL, "a record index for streams with no codec");
	if ((r = idx_check_head(p, len, l, size, err)) < 0)
		return r;
	uint64_t n = nchunks_of(size);
	if (!(ent = malloc((size_t)n * sizeof(*ent) + 1)))
		return cd_err_set(err, ENOMEM, "out of memory");
	for (uint64_t k = 0; k < n; k++) {
		ent[k] = get_le32(p + CD_PAGE_INDEX_HEAD + 4 * k);
		if (!idx_entry_ok(ent[k], l->codec, chunk_len(size, k)))
			return cd_err_set(err, EINVAL, "bad entry for chunk %" PRIu64, k);
		sum[k % l->streams] += rec_size(IDX_LEN(ent[k]));
	}
	for (unsigned s = 0; s < l->streams; s++)
		if (sum[s] != fsize[s])
			return cd_err_set(err, EINVAL,
			                  "stream %u: records of %" PRIu64
			                  " bytes, its file %" PRIu64,
			                  s, sum[s], fsize[s]);
	*ret = TAKE_PTR(ent);
	return 0;
}

/* The index of page file name, checked (cd_page_index_parse) against the
 * stream files' sizes fsize; *ret NULL where there is none (an image
 * written before the index: its headers are walked). */
static int idx_load(int dirfd, const char *name, const struct cd_page_layout *l, uint64_t size,
                    const uint64_t *fsize, uint32_t **ret, cd_err *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	uint64_t want = CD_PAGE_INDEX_HEAD + 4 * nchunks_of(size);
	char file[64];
	struct stat sb;
	int r;

	*ret = NULL;
	if ((r = cd_page_index_name(name, file, sizeof(file), err)) < 0)
		return r;
	if ((fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", file);
	if (fstat(fd, &sb) < 0)
		return cd_err_sys(err, errno, "stat %s", file);
	/* its size is known from the manifest: nothing bigger is read */
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != want)
		return cd_err_set(err, EINVAL,
		                  "%s: %jd bytes, expected %" PRIu64 " (corrupt image)", file,
		                  (intmax_t)sb.st_size, want);
	if (!(buf = malloc((size_t)want)))
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((r = pread_full(fd, buf, (size_t)want, 0, file, err)) < 0)
		return r;
	if ((r = cd_page_index_parse(buf, (size_t)want, l, size, fsize, ret, err)) < 0)
		return cd_err_wrap(err, "%s (corrupt image)", file);
	return 0;
}

static int write_all(int fd, bool *direct, const uint8_t *buf, size_t len, const char *name,
                     cd_err *err)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && *direct) {
			/* the filesystem refuses O_DIRECT after all: go buffered */
			*direct = false;
			if (fcntl(fd, F_SETFL, 0) < 0)
				return cd_err_sys(err, errno, "write %s", name);
			continue;
		}
		if (n < 0)
			return cd_err_sys(err, errno, "write %s", name);
		off += (size_t)n;
	}
	return 0;
}

/* a (alen bytes) then b (blen) with one writev where it writes it all;
 * what a short write leaves, as write_all does. */
static int write_two(int fd, bool *direct, const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen, const char *name, cd_err *err)
{
	struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
	ssize_t n;

	do
		n = writev(fd, iov, 2);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		n = 0; /* write_all reports it, or goes buffered (EINVAL) */
	if ((size_t)n < alen) {
		int r = write_all(fd, direct, a + n, alen - (size_t)n, name, err);
		return r < 0 ? r : write_all(fd, direct, b, blen, name, err);
	}
	n -= (ssize_t)alen;
	return write_all(fd, direct, b + n, blen - (size_t)n, name, err);
}

static int open_out(int dirfd, const char *name, bool *ret_direct, cd_err *err)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
	int fd = openat(dirfd, name, flags | O_DIRECT, 0600);

	*ret_direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = openat(dirfd, name, flags, 0600);
	if (fd < 0)
		return cd_err_sys(err, errno, "create %s", name);
	return fd;
}

/* ---- the streamed writer: one thread per stream file ---- */

struct sw_stream {
	struct stream_w *st;
	int fd;
	bool direct, busy, started;
	uint8_t *in, *out; /* the chunk handed over; its record */
	size_t in_len, out_cap;
	ZSTD_CCtx *zc;
	/* its records' index entries, in order (a codec only) */
	uint32_t *ent;
	size_t nent, ent_cap;
	pthread_t th;
	uint64_t write_ns;
	int rc;
	cd_err err;
	char name[64];
};

struct stream_w {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	unsigned n;
	enum cd_page_codec codec;
	uint64_t next; /* the next chunk's number */
	int idx_fd;    /* the record index (a codec only; else -1) */
	char idx_name[64];
	struct sw_stream s[CD_STREAMS_MAX];
};

/* Whether samples of the chunk (4 × 16 KiB, spread over it) all fail to
 * shrink under lz4, the fastest codec: then random data costs no full
 * compression attempt, even with zstd. */
static bool incompressible(const uint8_t *in, size_t len, uint8_t *scratch, size_t cap)
{
	const size_t sample = 16u << 10;

	if (len < 4 * sample)
		return false;
	for (size_t i = 0; i < 4; i++) {
		size_t off = (len - sample) / 3 * i;
		int k = LZ4_compress_default((const char *)in + off, (char *)scratch, (int)sample,
		                             (int)cap);
		if (k > 0 && (size_t)k < sample - sample / 16)
			return false;
	}
	return true;
}

/* The record of in[0..len) in out: compressed when that saves at least a
 * sixteenth; otherwise only its header is in out (0 returned), and the
 * chunk is written from in as it is: incompressible data costs no copy. */
static size_t sw_encode(struct sw_stream *w, const uint8_t *in, size_t len)
{
	struct rec_head *h = (struct rec_head *)w->out;
	uint8_t *dst = w->out + REC_HEAD;
	size_t cap = w->out_cap - REC_HEAD, n = 0;

	if (incompressible(in, len, dst, cap)) {
		n = 0;
	} else if (w->st->codec == CD_CODEC_LZ4) {
		int k = LZ4_compress_default((const char *)in, (char *)dst, (int)len, (int)cap);
		n = k > 0 ? (size_t)k : 0;
	} else {
		size_t k = ZSTD_compressCCtx(w->zc, dst, cap, in, len, 1);
		n = ZSTD_isError(k) ? 0 : k;
	}
	*h = (struct rec_head){.magic = REC_MAGIC, .raw_len = (uint32_t)len};
	memset(w->out + sizeof(*h), 0, REC_HEAD - sizeof(*h));
	if (!n || n >= len - len / 16) {
		h->stored_len = (uint32_t)len;
		h->codec = CD_CODEC_NONE;
		return 0;
	}
	h->codec = (uint8_t)w->st->codec;
	h->stored_len = (uint32_t)n;
	size_t total = rec_size(n);
	memset(dst + n, 0, total - REC_HEAD - n);
	return total;
}

/* The index entry of the record just encoded (its header in w->out). */
static int sw_note(struct sw_stream *w, cd_err *err)
{
	const struct rec_head *h = (const struct rec_head *)w->out;

	if (w->nent == w->ent_cap) {
		size_t cap = w->ent_cap ? 2 * w->ent_cap : 256;
		uint32_t *p = realloc(w->ent, cap * sizeof(*p));
		if (!p)
			return cd_err_set(err, ENOMEM, "out of memory");
		w->ent = p;
		w->ent_cap = cap;
	}
	w->ent[w->nent++] = IDX_ENTRY(h->stored_len, h->codec);
	return 0;
}

static int sw_write_chunk(struct sw_stream *w, cd_err *err)
{
	uint64_t t0 = cd_now_ns();
	size_t rec = w->st->codec == CD_CODEC_NONE ? 0 : sw_encode(w, w->in, w->in_len);
	int r = w->st->codec == CD_CODEC_NONE ? 0 : sw_note(w, err);

	if (r < 0)
		return r;

	if (rec) {
		r = write_all(w->fd, &w->direct, w->out, rec, w->name, err);
	} else if (w->st->codec != CD_CODEC_NONE) {
		/* stored as it is: its header, then the chunk from where it is
		 * (a whole number of pages: still O_DIRECT), in one write: two
		 * would make each record two synchronous I/Os, the small one
		 * extending the file on its own */
		r = write_two(w->fd, &w->direct, w->out, REC_HEAD, w->in, w->in_len, w->name, err);
	} else {
		r = write_all(w->fd, &w->direct, w->in, w->in_len, w->name, err);
	}
	w->write_ns += cd_now_ns() - t0;
	return r;
}

static void *sw_main(void *arg)
{
	struct sw_stream *w = arg;
	struct stream_w *st = w->st;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		while (!w->busy && !st->stop)
			pthread_cond_wait(&st->cond, &st->lock);
		if (!w->busy)
			break;
		pthread_mutex_unlock(&st->lock);
		cd_err err = {0};
		int r = w->rc ? 0 : sw_write_chunk(w, &err);
		pthread_mutex_lock(&st->lock);
		if (r < 0) {
			w->rc = r;
			w->err = err;
		}
		w->busy = false;
		pthread_cond_broadcast(&st->cond);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

static void sw_stop(struct stream_w *st)
{
	pthread_mutex_lock(&st->lock);
	st->stop = true;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	for (unsigned i = 0; i < st->n; i++) {
		if (st->s[i].started)
			pthread_join(st->s[i].th, NULL);
		st->s[i].started = false;
	}
}

static void sw_free(struct stream_w *st)
{
	if (!st)
		return;
	sw_stop(st);
	for (unsigned i = 0; i < st->n; i++) {
		struct sw_stream *w = &st->s[i];
		if (w->fd >= 0)
			close(w->fd);
		free(w->in);
		free(w->out);
		free(w->ent);
		ZSTD_freeCCtx(w->zc);
	}
	if (st->idx_fd >= 0)
		close(st->idx_fd);
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

static int sw_stream_open(struct stream_w *st, struct sw_stream *w, int dirfd, const char *name,
                          unsigned i, cd_err *err)
{
	size_t bound = LZ4_compressBound(CD_STREAM_CHUNK);
	int r;

	if (ZSTD_compressBound(CD_STREAM_CHUNK) > bound)
		bound = ZSTD_compressBound(CD_STREAM_CHUNK);
	w->st = st;
	if ((r = cd_page_stream_name(name, i, w->name, sizeof(w->name), err)) < 0 ||
	    (r = alloc_buf(&w->in, CD_STREAM_CHUNK, err)) < 0)
		return r;
	if (st->codec != CD_CODEC_NONE) {
		w->out_cap = rec_size(bound);
		if ((r = alloc_buf(&w->out, w->out_cap, err)) < 0)
			return r;
	}
	if (st->codec == CD_CODEC_ZSTD && !(w->zc = ZSTD_createCCtx()))
		return cd_err_set(err, ENOMEM, "out of memory");
	if ((w->fd = open_out(dirfd, w->name, &w->direct, err)) < 0)
		return w->fd;
	if ((r = pthread_create(&w->th, NULL, sw_main, w)))
		return cd_err_set(err, r, "start the writer of %s", w->name);
	w->started = true;
	return 0;
}

static int sw_open(int dirfd, const char *name, const struct cd_page_layout *l,
                   struct stream_w **ret, cd_err *err)
{
	struct stream_w *st = calloc(1, sizeof(*st));
	int r = 0;

	if (!st)
		return cd_err_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	st->codec = l->codec;
	st->idx_fd = -1;
	for (unsigned i = 0; i < l->streams; i++)
		st->s[i].fd = -1;
	if (st->codec != CD_CODEC_NONE &&
	    (r = cd_page_index_name(name, st->idx_name, sizeof(st->idx_name), err)) >= 0 &&
	    (st->idx_fd =
	         openat(dirfd, st->idx_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		r = cd_err_sys(err, errno, "create %s", st->idx_name);
	for (unsigned i = 0; i < l->streams && r >= 0; i++) {
		st->n = i + 1;
		r = sw_stream_open(st, &st->s[i], dirfd, name, i, err);
	}
	if (r < 0) {
		sw_free(st);
		return r;
	}
	*ret = st;
	return 0;
}

/* Hands the full buffer to its stream's thread, taking that thread's
 * spare buffer in exchange. */
static int sw_hand_over(struct cd_page_writer *pw, cd_err *err)
{
	struct stream_w *st = pw->st;
	struct sw_stream *w = &st->s[st->next++ % st->n];
	int r = 0;

	cd_csum_update(&pw->csum, pw->buf, pw->len);
	pthread_mutex_lock(&st->lock);
	while (w->busy)
		pthread_cond_wait(&st->cond, &st->lock);
	if (w->rc) {
		r = w->rc;
		*err = w->err;
	} else {
		uint8_t *spare = w->in;
		w->in = pw->buf;
		w->in_len = pw->len;
		w->busy = true;
		pw->buf = spare;
		pthread_cond_broadcast(&st->cond);
	}
	pthread_mutex_unlock(&st->lock);
	pw->total += pw->len;
	pw->len = 0;
	return r;
}

/* Writes and fsyncs the record index of the streams' records, once
 * their threads are done: chunk k is stream k mod n's record k / n. */
static int sw_write_index(struct cd_page_writer *pw, cd_err *err)
{
	struct stream_w *st = pw->st;
	uint64_t n = nchunks_of(pw->total);
	size_t len = CD_PAGE_INDEX_HEAD + 4 * (size_t)n;
	_cleanup_free_ uint8_t *buf = calloc(1, len);
	bool direct = false;
	int r;

	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	put_le32(buf, CD_PAGE_INDEX_MAGIC);
	put_le32(buf + 4, 1);
	put_le32(buf + 8, st->n);
	put_le32(buf + 12, (uint32_t)st->codec);
	put_le64(buf + 16, pw->total);
	put_le64(buf + 24, n);
	for (uint64_t k = 0; k < n; k++) {
		const struct sw_stream *w = &st->s[k % st->n];
		if (k / st->n >= w->nent)
			return cd_err_set(err, EIO, "%s: chunk %" PRIu64 " has no record",
			                  st->idx_name, k);
		put_le32(buf + CD_PAGE_INDEX_HEAD + 4 * k, w->ent[k / st->n]);
	}
	if ((r = write_all(st->idx_fd, &direct, buf, len, st->idx_name, err)) < 0)
		return r;
	if (fsync(st->idx_fd) < 0)
		return cd_err_sys(err, errno, "fsync %s", st->idx_name);
	return 0;
}

static int sw_finish(struct cd_page_writer *pw, cd_err *err)
{
	struct stream_w *st = pw->st;
	int r = pw->len ? sw_hand_over(pw, err) : 0;

	sw_stop(st);
	for (unsigned i = 0; i < st->n && r >= 0; i++) {
		struct sw_stream *w = &st->s[i];
		if (w->rc) {
			*err = w->err;
			return w->rc;
		}
		uint64_t t0 = cd_now_ns();
		if (fsync(w->fd) < 0)
			return cd_err_sys(err, errno, "fsync %s", w->name);
		pw->fsync_ns += cd_now_ns() - t0;
		/* the streams write at once: the longest is the time spent */
		if (w->write_ns > pw->write_ns)
			pw->write_ns = w->write_ns;
	}
	if (r >= 0 && st->idx_fd >= 0)
		r = sw_write_index(pw, err);
	return r;
}

int cd_pw_open_layout(int dirfd, const char *name, const struct cd_page_layout *layout,
                      struct cd_page_writer **ret, cd_err *err)
{
	_cleanup_free_ struct cd_page_writer *pw = NULL;
	int r;

	if (cd_page_layout_plain(layout))
		return cd_pw_open(dirfd, name, ret, err);
	if ((r = cd_page_layout_check(layout, err)) < 0)
		return r;
	if (!(pw = calloc(1, sizeof(*pw))))
		return cd_err_set(err, ENOMEM, "out of memory");
	snprintf(pw->name, sizeof(pw->name), "%s", name);
	pw->fd = -1;
	pw->cap = CD_STREAM_CHUNK;
	if ((r = alloc_buf(&pw->buf, pw->cap, err)) < 0)
		return r;
	if ((r = sw_open(dirfd, name, layout, &pw->st, err)) < 0) {
		free(pw->buf);
		return r;
	}
	cd_csum_init(&pw->csum);
	*ret = TAKE_PTR(pw);
	return 0;
}

/* ---- the plain writer ---- */

int cd_pw_open(int dirfd, const char *name, struct cd_page_writer **ret, cd_err *err)
{
	_cleanup_free_ struct cd_page_writer *pw = calloc(1, sizeof(*pw));
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;

	if (!pw)
		return cd_err_set(err, ENOMEM, "out of memory");
	snprintf(pw->name, sizeof(pw->name), "%s", name);
	pw->fd = openat(dirfd, name, flags | O_DIRECT, 0600);
	pw->direct = pw->fd >= 0;
	if (pw->fd < 0 && errno == EINVAL)
		pw->fd = openat(dirfd, name, flags, 0600);
	if (pw->fd < 0)
		return cd_err_sys(err, errno, "create %s", name);
	pw->cap = CD_PAGEIO_BUF;
	int r = alloc_buf(&pw->buf, pw->cap, err);
	if (r < 0) {
		close(pw->fd);
		return r;
	}
	cd_csum_init(&pw->csum);
	*ret = TAKE_PTR(pw);
	return 0;
}

size_t cd_pw_reserve(struct cd_page_writer *pw, uint8_t **ret_dst)
{
	*ret_dst = pw->buf + pw->len;
	return pw->cap - pw->len;
}

static int pw_flush(struct cd_page_writer *pw, cd_err *err)
{
	uint64_t t0;

	if (pw->st)
		return sw_hand_over(pw, err);
	cd_csum_update(&pw->csum, pw->buf, pw->len);
	t0 = cd_now_ns();
	int r = write_all(pw->fd, &pw->direct, pw->buf, pw->len, pw->name, err);
	if (r < 0)
		return r;
	pw->write_ns += cd_now_ns() - t0;
	pw->total += pw->len;
	pw->len = 0;
	return 0;
}

int cd_pw_commit(struct cd_page_writer *pw, size_t len, cd_err *err)
{
	pw->len += len;
	if (pw->len < pw->cap)
		return 0;
	return pw_flush(pw, err);
}

int cd_pw_finish(struct cd_page_writer *pw, uint64_t *ret_size, uint64_t *ret_csum, cd_err *err)
{
	int r = pw->st ? sw_finish(pw, err) : pw_flush(pw, err);

	if (r < 0)
		return r;
	if (pw->st) {
		*ret_size = pw->total;
		*ret_csum = cd_csum_final(&pw->csum);
		return 0;
	}
	uint64_t t0 = cd_now_ns();
	if (fsync(pw->fd) < 0)
		return cd_err_sys(err, errno, "fsync %s", pw->name);
	pw->fsync_ns += cd_now_ns() - t0;
	*ret_size = pw->total;
	*ret_csum = cd_csum_final(&pw->csum);
	return 0;
}

void cd_pw_times(const struct cd_page_writer *pw, uint64_t *ret_write_ns, uint64_t *ret_fsync_ns)
{
	*ret_write_ns = pw->write_ns;
	*ret_fsync_ns = pw->fsync_ns;
}

void cd_pw_free(struct cd_page_writer *pw)
{
	if (!pw)
		return;
	sw_free(pw->st);
	if (pw->fd >= 0)
		close(pw->fd);
	free(pw->buf);
	free(pw);
}

/* The plain reader maps the whole page file: pages come straight from the
 * page cache, with no copy into a buffer, and are checksummed on the way.
 * The streamed one decodes one chunk at a time into a window (below). */
struct stream_r;

struct cd_page_reader {
	uint8_t *map; /* plain: the file; streamed: NULL (st's window) */
	size_t size, pos;
	struct cd_csum_part csum;
	struct stream_r *st;
	char name[64];
};

/* ---- reading streamed page data ---- */

/* One stream file, read with pread: no mapping, so what a reader keeps
 * resident is its buffers, whatever the size of the data. */
struct sr_file {
	int fd;
	uint64_t size;
	char name[64];
};

/* What one decoder needs: a record's header page and stored bytes,
 * zstd's context. */
struct sr_dec {
	uint8_t *head, *in;
	ZSTD_DCtx *dc;
};

struct stream_r {
	unsigned n;
	enum cd_page_codec codec;
	uint64_t size, nchunks;
	struct sr_file f[CD_STREAMS_MAX];
	/* on demand (cd_pr_*): chunks [win_k, win_k + win_n) decoded at win,
	 * which has room for win_cap chunks */
	uint8_t *win;
	uint64_t win_k, win_n, win_cap;
	uint64_t *rec;                    /* per chunk: its record's offset, once walked */
	uint64_t walk_k[CD_STREAMS_MAX];  /* per stream: the first chunk not walked */
	uint64_t walk_at[CD_STREAMS_MAX]; /* and its record's offset */
	/* per chunk, its record's index entry (NULL: no index, the headers
	 * are walked); with it, rec is known for every chunk at open */
	uint32_t *ient;
	struct sr_dec dec;
};

static int pread_full(int fd, void *dst, size_t len, uint64_t off, const char *name, cd_err *err)
{
	uint8_t *p = dst;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cd_err_sys(err, errno, "read %s", name);
		if (n == 0)
			return cd_err_set(err, EINVAL, "%s: truncated (corrupt image)", name);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* pread_full into the n buffers of iov (which it moves on). */
static int preadv_full(int fd, struct iovec *iov, int n, uint64_t off, const char *name,
                       cd_err *err)
{
	while (n > 0) {
		ssize_t k = preadv(fd, iov, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return cd_err_sys(err, errno, "read %s", name);
		if (k == 0 && iov->iov_len)
			return cd_err_set(err, EINVAL, "%s: truncated (corrupt image)", name);
		off += (uint64_t)k;
		for (; n > 0 && (size_t)k >= iov->iov_len; iov++, n--)
			k -= (ssize_t)iov->iov_len;
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int sr_dec_init(struct sr_dec *d, enum cd_page_codec codec, cd_err *err)
{
	*d = (struct sr_dec){0};
	if (codec != CD_CODEC_NONE &&
	    (!(d->in = malloc(CD_STREAM_CHUNK)) || !(d->head = malloc(REC_HEAD))))
		return cd_err_set(err, ENOMEM, "out of memory");
	if (codec == CD_CODEC_ZSTD && !(d->dc = ZSTD_createDCtx()))
		return cd_err_set(err, ENOMEM, "out of memory");
	return 0;
}

static void sr_dec_free(struct sr_dec *d)
{
	free(d->in);
	free(d->head);
	ZSTD_freeDCtx(d->dc);
	*d = (struct sr_dec){0};
}

/* Whether h, read at pos of f, is chunk k's record: checked against the
 * file, the layout and, where there is one, the index (a lying index is
 * refused like a bad header). */
static int rec_check_head(const struct stream_r *st, const struct sr_file *f, uint64_t pos,
                          uint64_t k, const struct rec_head *h, cd_err *err)
{
	uint64_t len = chunk_len(st->size, k);

	if (h->magic != REC_MAGIC || h->raw_len != len || h->stored_len > len ||
	    (h->codec != CD_CODEC_NONE && h->codec != st->codec) ||
	    rec_size(h->stored_len) > f->size - pos ||
	    (h->codec == CD_CODEC_NONE && h->stored_len != len) ||
	    (st->ient && st->ient[k] != IDX_ENTRY(h->stored_len, h->codec)))
		return cd_err_set(err, EINVAL, "%s: bad record at %" PRIu64 " (corrupt image)",
		                  f->name, pos);
	return 0;
}

/* The header of chunk k's record, at pos of f, checked. */
static int rec_read_head(const struct stream_r *st, const struct sr_file *f, uint64_t pos,
                         uint64_t k, struct rec_head *h, cd_err *err)
{
	int r;

	if (pos > f->size || f->size - pos < REC_HEAD)
		return cd_err_set(err, EINVAL, "%s: truncated (corrupt image)", f->name);
	if ((r = pread_full(f->fd, h, sizeof(*h), pos, f->name, err)) < 0)
		return r;
	return rec_check_head(st, f, pos, k, h, err);
}

/* Decodes the stored bytes of the record at pos (header h), read into
 * d->in, into dst: h->raw_len bytes. */
static int rec_unpack(const struct sr_file *f, uint64_t pos, const struct rec_head *h,
                      struct sr_dec *d, uint8_t *dst, cd_err *err)
{
	size_t len = h->raw_len, got;

	if (h->codec == CD_CODEC_LZ4) {
		int n = LZ4_decompress_safe((const char *)d->in, (char *)dst, (int)h->stored_len,
		                            (int)len);
		got = n < 0 ? 0 : (size_t)n;
	} else {
		size_t n = ZSTD_decompressDCtx(d->dc, dst, len, d->in, h->stored_len);
		got = ZSTD_isError(n) ? 0 : n;
	}
	if (got != len)
		return cd_err_set(err, EINVAL,
		                  "%s: record at %" PRIu64 " does not decode (corrupt image)",
		                  f->name, pos);
	return 0;
}

/* Decodes the record at pos (header h) into dst, h->raw_len bytes: a
 * record stored as it is is read straight there. */
static int rec_decode(const struct sr_file *f, uint64_t pos, const struct rec_head *h,
                      struct sr_dec *d, uint8_t *dst, cd_err *err)
{
	int r;

	if (h->codec == CD_CODEC_NONE)
		return pread_full(f->fd, dst, h->raw_len, pos + REC_HEAD, f->name, err);
	if ((r = pread_full(f->fd, d->in, h->stored_len, pos + REC_HEAD, f->name, err)) < 0)
		return r;
	return rec_unpack(f, pos, h, d, dst, err);
}

/* Chunk k's record, its place known from the index: header and stored
 * bytes in one read (a record stored as it is straight into dst), the
 * header checked, then decoded into dst. */
static int rec_read_indexed(const struct stream_r *st, uint64_t k, struct sr_dec *d, uint8_t *dst,
                            cd_err *err)
{
	const struct sr_file *f = &st->f[k % st->n];
	uint32_t e = st->ient[k];
	uint64_t pos = st->rec[k];
	struct iovec iov[2] = {{d->head, REC_HEAD},
	                       {IDX_CODEC(e) == CD_CODEC_NONE ? dst : d->in, IDX_LEN(e)}};
	struct rec_head h;
	int r;

	/* the index was checked against the file's size: the read is inside */
	if ((r = preadv_full(f->fd, iov, 2, pos, f->name, err)) < 0)
		return r;
	assert(d->head); /* an index means a codec: sr_dec_init allocated it */
	memcpy(&h, d->head, sizeof(h));
	if ((r = rec_check_head(st, f, pos, k, &h, err)) < 0)
		return r;
	return h.codec == CD_CODEC_NONE ? 0 : rec_unpack(f, pos, &h, d, dst, err);
}

/* Chunk k with no codec: at its place in its stream (every chunk but the
 * data's last is whole). */
static int raw_read(const struct stream_r *st, uint64_t k, uint8_t *dst, cd_err *err)
{
	const struct sr_file *f = &st->f[k % st->n];

	return pread_full(f->fd, dst, chunk_len(st->size, k), k / st->n * CD_STREAM_CHUNK, f->name,
	                  err);
}

/* Whether chunk k's bytes lie in its stream as they are, where the
 * steps can read them in place: always with no codec, else where the
 * index says its record was stored as it is. */
static bool chunk_in_place(const struct stream_r *st, uint64_t k)
{
	if (k >= st->nchunks)
		return false;
	return st->codec == CD_CODEC_NONE || (st->ient && IDX_CODEC(st->ient[k]) == CD_CODEC_NONE);
}

/* Where chunk k's bytes begin in its stream: at its place with no codec,
 * after its record's header with one (the index tells where). */
static uint64_t chunk_data_at(const struct stream_r *st, uint64_t k)
{
	return st->codec == CD_CODEC_NONE ? k / st->n * CD_STREAM_CHUNK : st->rec[k] + REC_HEAD;
}

/* The bytes stream s holds with no codec: its chunks, whole. */
static uint64_t sr_raw_size(const struct stream_r *st, unsigned s)
{
	uint64_t n = 0;

	for (uint64_t k = s; k < st->nchunks; k += st->n)
		n += chunk_len(st->size, k);
	return n;
}

/* Whether stream s's file can hold its part: exactly its chunks with no
 * codec, a page a record at least with one. */
static int sr_check_size(const struct stream_r *st, unsigned s, uint64_t fsize, const char *file,
                         cd_err *err)
{
	uint64_t raw = sr_raw_size(st, s), records = (st->nchunks + st->n - 1 - s) / st->n;

	if (st->codec == CD_CODEC_NONE ? fsize != raw : fsize < records * CD_PAGE_SIZE)
		return cd_err_set(err, EINVAL,
		                  "%s: %" PRIu64 " bytes, expected %s%" PRIu64 " (corrupt image)",
		                  file, fsize, st->codec ? "records for " : "", raw);
	return 0;
}

static void sr_free(struct stream_r *st)
{
	if (!st)
		return;
	for (unsigned i = 0; i < st->n; i++)
		if (st->f[i].fd >= 0)
			close(st->f[i].fd);
	sr_dec_free(&st->dec);
	free(st->win);
	free(st->rec);
	free(st->ient);
	free(st);
}

/* Opens stream s's file, checking its size. */
static int sr_file_open(struct stream_r *st, int dirfd, const char *name, unsigned s, cd_err *err)
{
	struct sr_file *f = &st->f[s];
	_cleanup_close_ int fd = -1;
	struct stat sb;
	int r;

	if ((r = cd_page_stream_name(name, s, f->name, sizeof(f->name), err)) < 0)
		return r;
	fd = openat(dirfd, f->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "open %s (a stream of %s)", f->name, name);
	if (fstat(fd, &sb) < 0)
		return cd_err_sys(err, errno, "stat %s", f->name);
	f->size = (uint64_t)sb.st_size;
	if ((r = sr_check_size(st, s, f->size, f->name, err)) < 0)
		return r;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	f->fd = TAKE_FD(fd);
	return 0;
}

/* Where each record lies (st->rec), from the index where the image has
 * one: then nothing is left to walk. */
static int sr_open_index(struct stream_r *st, int dirfd, const char *name, cd_err *err)
{
	const struct cd_page_layout l = {.streams = st->n, .codec = st->codec};
	uint64_t fsize[CD_STREAMS_MAX], at[CD_STREAMS_MAX] = {0};
	int r;

	if (!(st->rec = calloc(st->nchunks + 1, sizeof(*st->rec))))
		return cd_err_set(err, ENOMEM, "out of memory");
	for (unsigned s = 0; s < st->n; s++)
		fsize[s] = st->f[s].size;
	if ((r = idx_load(dirfd, name, &l, st->size, fsize, &st->ient, err)) < 0 || !st->ient)
		return r;
	for (uint64_t k = 0; k < st->nchunks; k++) {
		st->rec[k] = at[k % st->n];
		at[k % st->n] += rec_size(IDX_LEN(st->ient[k]));
	}
	for (unsigned s = 0; s < st->n; s++) {
		st->walk_k[s] = st->nchunks + s;
		st->walk_at[s] = st->f[s].size; /* the index adds up to it */
	}
	return 0;
}

/* The layout's files of page file name (size bytes), every one opened and
 * its size checked, and the record index read and checked where there is
 * one: a missing or short stream, or a bad index, fails here. */
static int sr_open(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                   struct stream_r **ret, cd_err *err)
{
	struct stream_r *st = calloc(1, sizeof(*st));
	int r = 0;

	if (!st)
		return cd_err_set(err, ENOMEM, "out of memory");
	st->n = l->streams;
	st->codec = l->codec;
	st->size = size;
	st->nchunks = (size + CD_STREAM_CHUNK - 1) / CD_STREAM_CHUNK;
	for (unsigned i = 0; i < CD_STREAMS_MAX; i++) {
		st->f[i].fd = -1;
		st->walk_k[i] = i;
	}
	for (unsigned i = 0; i < st->n && r >= 0; i++)
		r = sr_file_open(st, dirfd, name, i, err);
	if (r >= 0 && st->codec != CD_CODEC_NONE)
		r = sr_open_index(st, dirfd, name, err);
	if (r < 0) {
		sr_free(st);
		return r;
	}
	*ret = st;
	return 0;
}

/* ---- on demand: the window ---- */

/* Walks stream s's record headers up to chunk k's record. */
static int sr_walk(struct stream_r *st, unsigned s, uint64_t k, cd_err *err)
{
	while (st->walk_k[s] <= k && st->walk_k[s] < st->nchunks) {
		struct rec_head h = {0};
		uint64_t j = st->walk_k[s];
		int r = rec_read_head(st, &st->f[s], st->walk_at[s], j, &h, err);
		if (r < 0)
			return r;
		st->rec[j] = st->walk_at[s];
		st->walk_at[s] += rec_size(h.stored_len);
		st->walk_k[s] += st->n;
	}
	return 0;
}

/* Decodes chunk k into dst. */
static int sr_chunk(struct stream_r *st, uint64_t k, uint8_t *dst, cd_err *err)
{
	const struct sr_file *f = &st->f[k % st->n];
	struct rec_head h = {0};
	int r;

	if (st->codec == CD_CODEC_NONE)
		return raw_read(st, k, dst, err);
	if (st->ient)
		return rec_read_indexed(st, k, &st->dec, dst, err);
	if ((r = sr_walk(st, (unsigned)(k % st->n), k, err)) < 0 ||
	    (r = rec_read_head(st, f, st->rec[k], k, &h, err)) < 0)
		return r;
	return rec_decode(f, st->rec[k], &h, &st->dec, dst, err);
}

/* Makes the window hold chunks k0..k1: what it holds already of them is
 * kept (a read that goes on where the last ended decodes nothing twice),
 * the rest decoded. The window is as big as the largest request. */
static int sr_load(struct stream_r *st, uint64_t k0, uint64_t k1, cd_err *err)
{
	uint64_t need = k1 - k0 + 1, keep = 0;
	int r;

	if (st->win_n && k0 >= st->win_k && k1 < st->win_k + st->win_n)
		return 0;
	if (need > st->win_cap) {
		uint8_t *p = realloc(st->win, need * CD_STREAM_CHUNK);
		if (!p)
			return cd_err_set(err, ENOMEM, "out of memory");
		st->win = p;
		st->win_cap = need;
	}
	if (st->win_n && k0 >= st->win_k && k0 < st->win_k + st->win_n) {
		keep = st->win_k + st->win_n - k0;
		keep = keep < need ? keep : need;
		memmove(st->win, st->win + (k0 - st->win_k) * CD_STREAM_CHUNK,
		        keep * CD_STREAM_CHUNK);
	}
	st->win_k = k0;
	st->win_n = keep;
	for (uint64_t k = k0 + keep; k <= k1; k++) {
		if ((r = sr_chunk(st, k, st->win + (k - k0) * CD_STREAM_CHUNK, err)) < 0)
			return r;
		st->win_n++;
	}
	return 0;
}

/* Where [off, off+len) of the data is, decoded (len > 0). */
static int sr_at(struct stream_r *st, uint64_t off, uint64_t len, const uint8_t **ret, cd_err *err)
{
	int r = sr_load(st, off / CD_STREAM_CHUNK, (off + len - 1) / CD_STREAM_CHUNK, err);

	if (r < 0)
		return r;
	*ret = st->win + (off - st->win_k * CD_STREAM_CHUNK);
	return 0;
}

/* Every record of every stream is well formed and the streams end with
 * their last record: what was skipped was decoded by someone else
 * (cd_page_fill), but its framing is checked here too. */
static int sr_check_ends(struct stream_r *st, cd_err *err)
{
	if (st->codec == CD_CODEC_NONE)
		return 0; /* sizes checked at open */
	for (unsigned s = 0; s < st->n; s++) {
		int r = sr_walk(st, s, UINT64_MAX, err);
		if (r < 0)
			return r;
		if (st->walk_at[s] != st->f[s].size)
			return cd_err_set(err, EINVAL,
			                  "%s: %" PRIu64
			                  " bytes after the last record (corrupt image)",
			                  st->f[s].name, st->f[s].size - st->walk_at[s]);
	}
	return 0;
}

int cd_pr_open_layout(int dirfd, const char *name, uint64_t size,
                      const struct cd_page_layout *layout, struct cd_page_reader **ret, cd_err *err)
{
	_cleanup_free_ struct cd_page_reader *pr = NULL;
	int r;

	if (cd_page_layout_plain(layout))
		return cd_pr_open(dirfd, name, ret, err);
	if ((r = cd_page_layout_check(layout, err)) < 0)
		return r;
	if (size > SIZE_MAX / 2)
		return cd_err_set(err, EINVAL, "%s: %" PRIu64 " bytes of pages", name, size);
	if (!(pr = calloc(1, sizeof(*pr))))
		return cd_err_set(err, ENOMEM, "out of memory");
	snprintf(pr->name, sizeof(pr->name), "%s", name);
	if ((r = sr_open(dirfd, name, size, layout, &pr->st, err)) < 0)
		return r;
	pr->size = (size_t)size;
	if (layout->codec != CD_CODEC_NONE &&
	    (r = sr_dec_init(&pr->st->dec, layout->codec, err)) < 0) {
		sr_free(pr->st);
		return r;
	}
	*ret = TAKE_PTR(pr);
	return 0;
}

int cd_page_files_check(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                        cd_err *err)
{
	uint64_t nchunks = nchunks_of(size), fsize[CD_STREAMS_MAX];
	struct stream_r st = {.n = l->streams, .codec = l->codec, .size = size, .nchunks = nchunks};
	_cleanup_free_ uint32_t *ent = NULL;
	int r = cd_page_layout_check(l, err);

	for (unsigned s = 0; s < l->streams && r >= 0; s++) {
		char file[64];
		struct stat sb;
		if ((r = cd_page_stream_name(name, s, file, sizeof(file), err)) < 0)
			break;
		if (fstatat(dirfd, file, &sb, 0) < 0)
			return cd_err_sys(err, errno, "stat %s (a stream of %s)", file, name);
		fsize[s] = (uint64_t)sb.st_size;
		r = sr_check_size(&st, s, fsize[s], file, err);
	}
	/* a bad index is refused here, before any task exists */
	if (r >= 0 && l->codec != CD_CODEC_NONE)
		r = idx_load(dirfd, name, l, size, fsize, &ent, err);
	return r;
}

/* ---- all at once: cd_page_fill ---- */

struct fill {
	struct stream_r *st;
	const struct cd_page_dest *d;
	size_t nd;
	cd_page_put_fn put;
	void *arg;
	pthread_mutex_t lock;
	struct cd_csum_part csum;
	bool stop;
	bool writers; /* a writer thread per stream (cd_page_fill_spare) */
	bool coded;   /* chunks stored as they are left to someone else */
	int rc;
	cd_err err;
};

struct fill_thread {
	struct fill *f;
	unsigned s;
	pthread_t th;
	bool started;
};

/* How far ahead of its position a stream thread has the kernel read. */
#define FILL_AHEAD (8u << 20)
/* At most a piece a page of a chunk, and the one before it. */
#define FILL_PIECES (CD_STREAM_CHUNK / CD_PAGE_SIZE + 1)

/* The pieces of chunk [c0, c0+len), decoded at buf, that the
 * destinations want; *di walks the destinations (chunks come in order). */
static size_t fill_pieces(const struct fill *f, uint64_t c0, uint64_t len, size_t *di,
                          const uint8_t *buf, struct cd_page_piece *pc)
{
	uint64_t c1 = c0 + len;
	size_t np = 0;

	while (*di < f->nd && f->d[*di].off + f->d[*di].len <= c0)
		(*di)++;
	for (size_t j = *di; j < f->nd && f->d[j].off < c1 && np < FILL_PIECES; j++) {
		const struct cd_page_dest *d = &f->d[j];
		uint64_t lo = d->off > c0 ? d->off : c0, hi = d->off + d->len;
		hi = hi < c1 ? hi : c1;
		pc[np++] = (struct cd_page_piece){buf + (lo - c0), hi - lo, d->to + (lo - d->off)};
	}
	return np;
}

/* Chunk k for thread s: its record walked past at *pos, decoded into buf
 * when a destination wants part of it; *ret_np: the pieces in pc, summed. */
static int fill_chunk(struct fill *f, struct sr_dec *dec, uint64_t k, uint64_t *pos, size_t *di,
                      uint8_t *buf, struct cd_page_piece *pc, size_t *ret_np,
                      struct cd_csum_part *sum, cd_err *err)
{
	struct stream_r *st = f->st;
	const struct sr_file *file = &st->f[k % st->n];
	uint64_t c0 = k * CD_STREAM_CHUNK, len = chunk_len(st->size, k);
	size_t np = fill_pieces(f, c0, len, di, buf, pc);
	struct rec_head h = {0};
	int r = 0;

	*ret_np = 0;
	if (f->coded && chunk_in_place(st, k)) {
		/* the steps read it, each reader with the kernel's read-ahead on
		 * files of its own; asked for from here, ahead of them, the whole
		 * image would be read into the cache at once, whatever its size
		 * (and explicit read-ahead measured slower: docs/engine.md) */
		np = 0;
	} else {
		/* what comes next is read while this chunk is decoded and written */
		posix_fadvise(
		    file->fd,
		    (off_t)(st->codec != CD_CODEC_NONE ? *pos : k / st->n * CD_STREAM_CHUNK),
		    FILL_AHEAD, POSIX_FADV_WILLNEED);
	}
	if (st->ient) {
		/* its place known: read in one go where wanted, else not at all */
		if (np)
			r = rec_read_indexed(st, k, dec, buf, err);
		*pos += rec_size(IDX_LEN(st->ient[k]));
	} else if (st->codec != CD_CODEC_NONE) {
		if ((r = rec_read_head(st, file, *pos, k, &h, err)) < 0)
			return r;
		if (np)
			r = rec_decode(file, *pos, &h, dec, buf, err);
		*pos += rec_size(h.stored_len);
	} else if (np) {
		r = raw_read(st, k, buf, err);
	}
	if (r < 0 || !np)
		return r;
	for (size_t i = 0; i < np; i++)
		cd_csum_part_add(sum, pc[i].src, (size_t)pc[i].len,
		                 c0 + (uint64_t)((const uint8_t *)pc[i].src - buf), st->size);
	*ret_np = np;
	return 0;
}

/* A stream's writer: puts the pieces of one chunk while its reader reads
 * and decodes the next into its other buffer, so reading (the copy out of
 * the page cache, the decoding, the sums) and writing into the task (the
 * copy into fresh memory) run on two cores (docs/engine.md, "Parallel
 * streams"). */
struct fill_out {
	struct fill *f;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool busy, stop, started;
	const struct cd_page_piece *pc;
	size_t np;
	pthread_t th;
	int rc;
	cd_err err;
};

static void *fill_out_main(void *arg)
{
	struct fill_out *o = arg;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		while (!o->busy && !o->stop)
			pthread_cond_wait(&o->cond, &o->lock);
		if (!o->busy)
			break;
		pthread_mutex_unlock(&o->lock);
		cd_err err = {0};
		int r = o->rc ? 0 : o->f->put(o->f->arg, o->pc, o->np, &err);
		pthread_mutex_lock(&o->lock);
		if (r < 0) {
			o->rc = r;
			o->err = err;
		}
		o->busy = false;
		pthread_cond_broadcast(&o->cond);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* Waits until the writer is done with what it was handed, then hands it
 * pc (np pieces; none: only the wait). Fails with the writer's error. */
static int fill_out_put(struct fill_out *o, const struct cd_page_piece *pc, size_t np, cd_err *err)
{
	int r = 0;

	pthread_mutex_lock(&o->lock);
	while (o->busy)
		pthread_cond_wait(&o->cond, &o->lock);
	if (o->rc) {
		r = o->rc;
		*err = o->err;
	} else if (np) {
		o->pc = pc;
		o->np = np;
		o->busy = true;
		pthread_cond_signal(&o->cond);
	}
	pthread_mutex_unlock(&o->lock);
	return r;
}

static int fill_out_start(struct fill_out *o, struct fill *f, cd_err *err)
{
	int r;

	*o = (struct fill_out){.f = f};
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	if ((r = pthread_create(&o->th, NULL, fill_out_main, o)))
		return cd_err_set(err, r, "start a writer of premapped pages");
	o->started = true;
	return 0;
}

static void fill_out_stop(struct fill_out *o)
{
	pthread_mutex_lock(&o->lock);
	o->stop = true;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
	if (o->started)
		pthread_join(o->th, NULL);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
}

/* Stream s's chunks, in order: each decoded into one of two buffers, in
 * turns, and handed to the writer (out; NULL: put here, one buffer). */
static int fill_chunks(struct fill *f, unsigned s, struct fill_out *out, uint8_t *buf[2],
                       struct cd_page_piece *pc[2], struct cd_csum_part *sum, cd_err *err)
{
	struct stream_r *st = f->st;
	struct sr_dec dec = {0};
	uint64_t pos = 0;
	size_t di = 0, np, cur = 0;
	int r = sr_dec_init(&dec, st->codec, err);

	for (uint64_t k = s; k < st->nchunks && r >= 0; k += st->n) {
		if (__atomic_load_n(&f->stop, __ATOMIC_RELAXED))
			break;
		r = fill_chunk(f, &dec, k, &pos, &di, buf[cur], pc[cur], &np, sum, err);
		if (r >= 0 && np && !out) {
			r = f->put(f->arg, pc[cur], np, err);
		} else if (r >= 0 && np) {
			r = fill_out_put(out, pc[cur], np, err);
			cur ^= 1;
		}
	}
	sr_dec_free(&dec);
	if (r >= 0 && st->codec != CD_CODEC_NONE && !__atomic_load_n(&f->stop, __ATOMIC_RELAXED) &&
	    pos != st->f[s].size)
		r = cd_err_set(err, EINVAL,
		               "%s: %" PRIu64 " bytes after the last record (corrupt image)",
		               st->f[s].name, st->f[s].size - pos);
	return r;
}

static int fill_stream(struct fill *f, unsigned s, struct cd_csum_part *sum, cd_err *err)
{
	_cleanup_free_ uint8_t *buf0 = malloc(CD_STREAM_CHUNK);
	_cleanup_free_ uint8_t *buf1 = malloc(CD_STREAM_CHUNK);
	_cleanup_free_ struct cd_page_piece *pc0 = calloc(FILL_PIECES, sizeof(*pc0));
	_cleanup_free_ struct cd_page_piece *pc1 = calloc(FILL_PIECES, sizeof(*pc1));
	uint8_t *buf[2] = {buf0, buf1};
	struct cd_page_piece *pc[2] = {pc0, pc1};
	struct fill_out out;
	int r;

	if (!buf0 || !buf1 || !pc0 || !pc1)
		return cd_err_set(err, ENOMEM, "out of memory");
	if (!f->writers)
		return fill_chunks(f, s, NULL, buf, pc, sum, err);
	if ((r = fill_out_start(&out, f, err)) >= 0) {
		r = fill_chunks(f, s, &out, buf, pc, sum, err);
		/* the last chunk handed over is written, or its error known */
		cd_err last = {0};
		int w = fill_out_put(&out, NULL, 0, &last);
		if (r >= 0 && w < 0) {
			r = w;
			*err = last;
		}
	}
	fill_out_stop(&out);
	return r;
}

static void *fill_main(void *arg)
{
	struct fill_thread *t = arg;
	struct fill *f = t->f;
	struct cd_csum_part sum = {0};
	cd_err err = {0};
	int r = fill_stream(f, t->s, &sum, &err);

	pthread_mutex_lock(&f->lock);
	cd_csum_part_merge(&f->csum, &sum);
	if (r < 0 && !f->rc) {
		f->rc = r;
		f->err = err;
	}
	if (r < 0)
		__atomic_store_n(&f->stop, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

bool cd_page_fill_spare(const struct cd_page_layout *l)
{
	cpu_set_t set;
	int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;

	return l->streams < (unsigned)n;
}

static int page_fill(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                     const struct cd_page_dest *d, size_t nd, cd_page_put_fn put, void *arg,
                     bool coded, struct cd_csum_part *csum, cd_err *err)
{
	struct fill f = {.d = d,
	                 .nd = nd,
	                 .put = put,
	                 .arg = arg,
	                 .writers = cd_page_fill_spare(l),
	                 .coded = coded};
	struct fill_thread th[CD_STREAMS_MAX] = {0};
	int r;

	if ((r = cd_page_layout_check(l, err)) < 0 ||
	    (r = sr_open(dirfd, name, size, l, &f.st, err)) < 0)
		return r;
	pthread_mutex_init(&f.lock, NULL);
	for (unsigned s = 0; s < f.st->n; s++) {
		th[s] = (struct fill_thread){.f = &f, .s = s};
		if ((r = pthread_create(&th[s].th, NULL, fill_main, &th[s]))) {
			r = cd_err_set(err, r, "start the reader of %s", f.st->f[s].name);
			__atomic_store_n(&f.stop, true, __ATOMIC_RELAXED);
			break;
		}
		th[s].started = true;
	}
	for (unsigned s = 0; s < f.st->n; s++)
		if (th[s].started)
			pthread_join(th[s].th, NULL);
	pthread_mutex_destroy(&f.lock);
	sr_free(f.st);
	if (r < 0)
		return r;
	if (f.rc) {
		*err = f.err;
		return f.rc;
	}
	cd_csum_part_merge(csum, &f.csum);
	return 0;
}

int cd_page_fill(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                 const struct cd_page_dest *d, size_t nd, cd_page_put_fn put, void *arg,
                 struct cd_csum_part *csum, cd_err *err)
{
	return page_fill(dirfd, name, size, l, d, nd, put, arg, false, csum, err);
}

int cd_page_fill_coded(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                       const struct cd_page_dest *d, size_t nd, cd_page_put_fn put, void *arg,
                       struct cd_csum_part *csum, cd_err *err)
{
	return page_fill(dirfd, name, size, l, d, nd, put, arg, true, csum, err);
}

/* ---- stored records, read in place ---- */

struct cd_page_stored {
	struct stream_r *st;
};

int cd_page_stored_open(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                        struct cd_page_stored **ret, cd_err *err)
{
	struct stream_r *st = NULL;
	int r;

	*ret = NULL;
	if ((r = sr_open(dirfd, name, size, l, &st, err)) < 0)
		return r;
	/* compressed streams with no index: where a record lies is known only
	 * by walking the headers, which the stream threads do */
	bool placed = st->codec == CD_CODEC_NONE || st->ient;
	if (!placed || !(*ret = calloc(1, sizeof(**ret)))) {
		sr_free(st);
		return placed ? cd_err_set(err, ENOMEM, "out of memory") : 0;
	}
	(*ret)->st = st;
	return 0;
}

void cd_page_stored_free(struct cd_page_stored *ps)
{
	if (!ps)
		return;
	sr_free(ps->st);
	free(ps);
}

bool cd_page_stored_has(const struct cd_page_stored *ps, uint64_t k)
{
	return chunk_in_place(ps->st, k);
}

/* Record k's header and the first len bytes of its chunk (stored as it
 * is) in one read, the header checked: the readers take chunks in turns,
 * so each comes to its record from elsewhere in the file, where a read of
 * the header alone waited for an I/O of its own before the chunk's
 * (docs/engine.md, "Parallel streams": lz4 was 7-13 % behind no codec on
 * random memory for it). */
static int rec_read_joined(const struct stream_r *st, const struct sr_file *f, uint64_t k,
                           void *dst, size_t len, cd_err *err)
{
	uint8_t head[REC_HEAD];
	struct iovec iov[2] = {{head, REC_HEAD}, {dst, len}};
	struct rec_head h;
	int r;

	/* the index was checked against the file's size: the read is inside */
	if ((r = preadv_full(f->fd, iov, 2, st->rec[k], f->name, err)) < 0)
		return r;
	memcpy(&h, head, sizeof(h));
	return rec_check_head(st, f, st->rec[k], k, &h, err);
}

int cd_page_stored_read(const struct cd_page_stored *ps, uint64_t off, void *dst, size_t len,
                        cd_err *err)
{
	const struct stream_r *st = ps->st;
	uint64_t k = off / CD_STREAM_CHUNK, in = off % CD_STREAM_CHUNK;
	const struct sr_file *f = &st->f[k % st->n];
	struct rec_head h;
	int r;

	if (!cd_page_stored_has(ps, k) || in + len > chunk_len(st->size, k))
		return cd_err_set(err, EINVAL, "%s: no stored record for %" PRIu64 "+%zu", f->name,
		                  off, len);
	if (st->codec == CD_CODEC_NONE)
		return pread_full(f->fd, dst, len, chunk_data_at(st, k) + in, f->name, err);
	if (in == 0)
		return rec_read_joined(st, f, k, dst, len, err);
	if ((r = rec_read_head(st, f, st->rec[k], k, &h, err)) < 0)
		return r;
	return pread_full(f->fd, dst, len, chunk_data_at(st, k) + in, f->name, err);
}

/* ---- the plain reader ---- */

int cd_pr_open(int dirfd, const char *name, struct cd_page_reader **ret, cd_err *err)
{
	_cleanup_free_ struct cd_page_reader *pr = calloc(1, sizeof(*pr));
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (!pr)
		return cd_err_set(err, ENOMEM, "out of memory");
	snprintf(pr->name, sizeof(pr->name), "%s", name);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", name);
	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "stat %s", name);
	pr->size = (size_t)st.st_size;
	if (pr->size) {
		void *p = mmap(NULL, pr->size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return cd_err_sys(err, errno, "map %s", name);
		madvise(p, pr->size, MADV_SEQUENTIAL);
		pr->map = p;
	}
	*ret = TAKE_PTR(pr);
	return 0;
}

int cd_pr_next(struct cd_page_reader *pr, size_t want, const void **ret_src, size_t *ret_len,
               cd_err *err)
{
	if (pr->pos == pr->size)
		return cd_err_set(err, EINVAL, "%s: truncated", pr->name);
	size_t n = pr->size - pr->pos < want ? pr->size - pr->pos : want;
	const uint8_t *src = pr->map + pr->pos;
	if (pr->st) {
		/* streamed: up to the end of the chunk, decoded once */
		size_t in_chunk = CD_STREAM_CHUNK - pr->pos % CD_STREAM_CHUNK;
		n = n < in_chunk ? n : in_chunk;
		int r = sr_at(pr->st, pr->pos, n, &src, err);
		if (r < 0)
			return r;
	}
	*ret_src = src;
	*ret_len = n;
	cd_csum_part_add(&pr->csum, src, n, pr->pos, pr->size);
	pr->pos += n;
	return 0;
}

int cd_pr_skip(struct cd_page_reader *pr, uint64_t len, cd_err *err)
{
	if (len > pr->size - pr->pos)
		return cd_err_set(err, EINVAL, "%s: truncated", pr->name);
	pr->pos += len;
	return 0;
}

int cd_pr_check(const struct cd_page_reader *pr, const struct cd_csum_part *other, uint64_t csum,
                cd_err *err)
{
	struct cd_csum_part sum = pr->csum;

	if (pr->pos != pr->size)
		return cd_err_set(err, EINVAL, "%s: %zu bytes never read (corrupt image)", pr->name,
		                  pr->size - pr->pos);
	int r = pr->st ? sr_check_ends(pr->st, err) : 0;
	if (r < 0)
		return r;
	if (other)
		cd_csum_part_merge(&sum, other);
	if (cd_csum_part_final(&sum, pr->size) != csum)
		return cd_err_set(err, EINVAL, "%s: checksum mismatch (corrupt image)", pr->name);
	return 0;
}

int cd_pr_at(struct cd_page_reader *pr, uint64_t off, size_t len, const void **ret_src, cd_err *err)
{
	if (off > pr->size || len > pr->size - off)
		return cd_err_set(err, EINVAL, "%s: truncated", pr->name);
	const uint8_t *src = pr->map + off;
	int r = pr->st && len ? sr_at(pr->st, off, len, &src, err) : 0;
	if (r < 0)
		return r;
	*ret_src = src;
	return 0;
}

void cd_pr_advise_random(struct cd_page_reader *pr)
{
	if (!pr->st) {
		if (pr->map)
			(void)madvise(pr->map, pr->size, MADV_RANDOM);
		return;
	}
	for (unsigned s = 0; s < pr->st->n; s++)
		(void)posix_fadvise(pr->st->f[s].fd, 0, 0, POSIX_FADV_RANDOM);
}

/* Before a walk of a compressed stream's headers up to chunk last: each
 * header is where it lies if every record before it was stored as it is
 * (incompressible data: the usual case for a large image), so those pages
 * are asked for at once, and the walk, one header after the other, finds
 * them read. A guess that is wrong costs a page read for nothing. */
static void guess_heads(const struct stream_r *st, uint64_t last)
{
	if (st->codec == CD_CODEC_NONE)
		return; /* no headers: a chunk's place is known */
	for (uint64_t k = 0; k <= last && k < st->nchunks; k++)
		(void)posix_fadvise(st->f[k % st->n].fd,
		                    (off_t)(k / st->n * rec_size(CD_STREAM_CHUNK)), REC_HEAD,
		                    POSIX_FADV_WILLNEED);
}

int cd_page_fill_sparse(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                        const struct cd_page_dest *d, size_t nd, cd_page_put_fn put, void *arg,
                        struct cd_csum_part *csum, cd_err *err)
{
	_cleanup_(cd_pr_freep) struct cd_page_reader *pr = NULL;
	int r = cd_pr_open_layout(dirfd, name, size, l, &pr, err);

	if (r < 0)
		return r;
	assert(pr); /* set on success: the analyzer cannot see that cd_err_set is negative */
	cd_pr_advise_random(pr);
	if (pr->st && !pr->st->ient && nd)
		guess_heads(pr->st, (d[nd - 1].off + d[nd - 1].len - 1) / CD_STREAM_CHUNK);
	for (size_t i = 0; i < nd; i++) {
		for (uint64_t at = d[i].off, end = d[i].off + d[i].len; at < end;) {
			/* one chunk at a time: the window holds one */
			uint64_t n = CD_STREAM_CHUNK - at % CD_STREAM_CHUNK;
			n = n < end - at ? n : end - at;
			const void *src = NULL;
			if ((r = cd_pr_at(pr, at, (size_t)n, &src, err)) < 0)
				return r;
			cd_csum_part_add(csum, src, (size_t)n, at, size);
			struct cd_page_piece pc = {src, n, d[i].to + (at - d[i].off)};
			if ((r = put(arg, &pc, 1, err)) < 0)
				return r;
			at += n;
		}
	}
	return 0;
}

int cd_pr_check_ends(struct cd_page_reader *pr, cd_err *err)
{
	return pr->st ? sr_check_ends(pr->st, err) : 0;
}

void cd_pr_free(struct cd_page_reader *pr)
{
	if (!pr)
		return;
	if (pr->st)
		sr_free(pr->st);
	else if (pr->map)
		munmap(pr->map, pr->size);
	free(pr);
}
