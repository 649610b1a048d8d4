#include "engine/pageio.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <lz4.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
 * sixteenth, as it is otherwise (so incompressible data costs one copy). */
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
	if (n && n < len - len / 16) {
		h->codec = (uint8_t)w->st->codec;
	} else {
		memcpy(dst, in, len);
		n = len;
		h->codec = CD_CODEC_NONE;
	}
	h->stored_len = (uint32_t)n;
	size_t total = rec_size(n);
	memset(w->out + sizeof(*h), 0, REC_HEAD - sizeof(*h));
	memset(dst + n, 0, total - REC_HEAD - n);
	return total;
}

static int sw_write_chunk(struct sw_stream *w, cd_err *err)
{
	uint64_t t0 = cd_now_ns();
	int r;

	if (w->st->codec == CD_CODEC_NONE)
		r = write_all(w->fd, &w->direct, w->in, w->in_len, w->name, err);
	else
		r = write_all(w->fd, &w->direct, w->out, sw_encode(w, w->in, w->in_len), w->name,
		              err);
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
		ZSTD_freeCCtx(w->zc);
	}
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
	for (unsigned i = 0; i < l->streams; i++)
		st->s[i].fd = -1;
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

/* The reader maps the whole page file: pages come straight from the page
 * cache, with no copy into a buffer, and are checksummed on the way. */
struct stream_r;

struct cd_page_reader {
	uint8_t *map;
	size_t size, pos;
	struct cd_csum_part csum;
	struct stream_r *st; /* streamed: map is the whole data, put together */
	char name[64];
};

/* ---- the streamed reader ---- */

struct sr_stream {
	struct stream_r *st;
	unsigned idx;
	uint8_t *map; /* the stream file */
	size_t size;
	int fd;
	pthread_t th;
	bool started;
	char name[64];
};

struct stream_r {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned n;
	enum cd_page_codec codec;
	uint8_t *data; /* size bytes: chunk k at k * CD_STREAM_CHUNK */
	uint64_t size, nchunks;
	uint8_t *ready; /* per chunk, NULL when all are (no codec) */
	bool stop;
	int rc;
	cd_err err;
	struct sr_stream s[CD_STREAMS_MAX];
};

static int sr_decode(struct stream_r *st, struct sr_stream *f, uint64_t k, size_t *pos,
                     ZSTD_DCtx *dc, cd_err *err)
{
	struct rec_head h;
	uint64_t len = chunk_len(st->size, k);
	uint8_t *dst = st->data + k * CD_STREAM_CHUNK;

	if (f->size - *pos < REC_HEAD)
		return cd_err_set(err, EINVAL, "%s: truncated (corrupt image)", f->name);
	memcpy(&h, f->map + *pos, sizeof(h));
	if (h.magic != REC_MAGIC || h.raw_len != len ||
	    (h.codec != CD_CODEC_NONE && h.codec != st->codec) ||
	    h.stored_len > f->size - *pos - REC_HEAD || rec_size(h.stored_len) > f->size - *pos ||
	    (h.codec == CD_CODEC_NONE && h.stored_len != len))
		return cd_err_set(err, EINVAL, "%s: bad record at %zu (corrupt image)", f->name,
		                  *pos);
	const uint8_t *src = f->map + *pos + REC_HEAD;
	size_t got = len;
	if (h.codec == CD_CODEC_NONE) {
		/* from the page cache, no copy (a copy where mapping fails) */
		if (mmap(dst, len, PROT_READ, MAP_SHARED | MAP_FIXED, f->fd,
		         (off_t)(*pos + REC_HEAD)) == MAP_FAILED)
			memcpy(dst, src, len);
	} else if (h.codec == CD_CODEC_LZ4) {
		int n = LZ4_decompress_safe((const char *)src, (char *)dst, (int)h.stored_len,
		                            (int)len);
		got = n < 0 ? 0 : (size_t)n;
	} else {
		size_t n = ZSTD_decompressDCtx(dc, dst, len, src, h.stored_len);
		got = ZSTD_isError(n) ? 0 : n;
	}
	if (got != len)
		return cd_err_set(err, EINVAL, "%s: record at %zu does not decode (corrupt image)",
		                  f->name, *pos);
	*pos += rec_size(h.stored_len);
	return 0;
}

static void *sr_main(void *arg)
{
	struct sr_stream *f = arg;
	struct stream_r *st = f->st;
	ZSTD_DCtx *dc = st->codec == CD_CODEC_ZSTD ? ZSTD_createDCtx() : NULL;
	cd_err err = {0};
	size_t pos = 0;
	int r = st->codec == CD_CODEC_ZSTD && !dc ? cd_err_set(&err, ENOMEM, "out of memory") : 0;

	for (uint64_t k = f->idx; k < st->nchunks && r >= 0; k += st->n) {
		if (__atomic_load_n(&st->stop, __ATOMIC_RELAXED))
			break;
		r = sr_decode(st, f, k, &pos, dc, &err);
		if (r < 0)
			break;
		pthread_mutex_lock(&st->lock);
		__atomic_store_n(&st->ready[k], 1, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&st->cond);
		pthread_mutex_unlock(&st->lock);
	}
	if (r >= 0 && !__atomic_load_n(&st->stop, __ATOMIC_RELAXED) && pos != f->size)
		r = cd_err_set(&err, EINVAL, "%s: %zu bytes after the last record (corrupt image)",
		               f->name, f->size - pos);
	ZSTD_freeDCtx(dc);
	if (r < 0) {
		pthread_mutex_lock(&st->lock);
		if (!st->rc) {
			st->rc = r;
			st->err = err;
		}
		pthread_cond_broadcast(&st->cond);
		pthread_mutex_unlock(&st->lock);
	}
	return NULL;
}

/* Waits until the bytes [off, off+len) are decoded. */
static int sr_wait(struct stream_r *st, uint64_t off, uint64_t len, cd_err *err)
{
	if (!st || !st->ready || !len)
		return 0;
	for (uint64_t k = off / CD_STREAM_CHUNK; k <= (off + len - 1) / CD_STREAM_CHUNK; k++) {
		if (__atomic_load_n(&st->ready[k], __ATOMIC_ACQUIRE))
			continue;
		pthread_mutex_lock(&st->lock);
		while (!__atomic_load_n(&st->ready[k], __ATOMIC_ACQUIRE) && !st->rc)
			pthread_cond_wait(&st->cond, &st->lock);
		int r = st->ready[k] ? 0 : st->rc;
		if (r)
			*err = st->err;
		pthread_mutex_unlock(&st->lock);
		if (r)
			return r;
	}
	return 0;
}

static void sr_free(struct stream_r *st)
{
	if (!st)
		return;
	__atomic_store_n(&st->stop, true, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < st->n; i++) {
		if (st->s[i].started)
			pthread_join(st->s[i].th, NULL);
		if (st->s[i].map)
			munmap(st->s[i].map, st->s[i].size);
		if (st->s[i].fd >= 0)
			close(st->s[i].fd);
	}
	if (st->data)
		munmap(st->data, st->size);
	free(st->ready);
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* The bytes stream s holds with no codec: its chunks, whole. */
static uint64_t sr_raw_size(const struct stream_r *st, unsigned s)
{
	uint64_t n = 0;

	for (uint64_t k = s; k < st->nchunks; k += st->n)
		n += chunk_len(st->size, k);
	return n;
}

/* Opens and maps stream s's file, checking its size. */
static int sr_stream_open(struct stream_r *st, int dirfd, const char *name, unsigned s, cd_err *err)
{
	struct sr_stream *f = &st->s[s];
	_cleanup_close_ int fd = -1;
	struct stat st_buf;
	int r;

	f->st = st;
	f->idx = s;
	if ((r = cd_page_stream_name(name, s, f->name, sizeof(f->name), err)) < 0)
		return r;
	fd = openat(dirfd, f->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "open %s (a stream of %s)", f->name, name);
	if (fstat(fd, &st_buf) < 0)
		return cd_err_sys(err, errno, "stat %s", f->name);
	f->size = (size_t)st_buf.st_size;
	uint64_t raw = sr_raw_size(st, s), records = (st->nchunks + st->n - 1 - s) / st->n;
	/* a record takes a page at least */
	if (st->codec == CD_CODEC_NONE ? f->size != raw : f->size < records * CD_PAGE_SIZE)
		return cd_err_set(err, EINVAL,
		                  "%s: %zu bytes, expected %s%" PRIu64 " (corrupt image)", f->name,
		                  f->size, st->codec ? "records for " : "", raw);
	if (st->codec == CD_CODEC_NONE) {
		/* each chunk mapped in its place: the data straight from the cache */
		for (uint64_t k = s, off = 0; k < st->nchunks; k += st->n) {
			uint64_t len = chunk_len(st->size, k);
			void *p = mmap(st->data + k * CD_STREAM_CHUNK, len, PROT_READ,
			               MAP_SHARED | MAP_FIXED, fd, (off_t)off);
			if (p == MAP_FAILED)
				return cd_err_sys(err, errno, "map %s", f->name);
			off += len;
		}
		posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
		return 0;
	}
	if (f->size) {
		void *p = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return cd_err_sys(err, errno, "map %s", f->name);
		madvise(p, f->size, MADV_SEQUENTIAL);
		f->map = p;
	}
	f->fd = TAKE_FD(fd);
	return 0;
}

static int sr_open(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                   struct stream_r **ret, cd_err *err)
{
	struct stream_r *st = calloc(1, sizeof(*st));
	int r = 0;

	if (!st)
		return cd_err_set(err, ENOMEM, "out of memory");
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	st->n = l->streams;
	st->codec = l->codec;
	st->size = size;
	st->nchunks = (size + CD_STREAM_CHUNK - 1) / CD_STREAM_CHUNK;
	for (unsigned i = 0; i < CD_STREAMS_MAX; i++)
		st->s[i].fd = -1;
	if (size) {
		/* reserved in one piece; the chunks land (or are mapped) in it */
		void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED) {
			free(st);
			return cd_err_sys(err, errno, "reserve %" PRIu64 " bytes for %s", size,
			                  name);
		}
		st->data = p;
	}
	if (l->codec != CD_CODEC_NONE && !(st->ready = calloc(st->nchunks + 1, 1)))
		r = cd_err_set(err, ENOMEM, "out of memory");
	for (unsigned i = 0; i < st->n && r >= 0; i++)
		r = sr_stream_open(st, dirfd, name, i, err);
	for (unsigned i = 0; i < st->n && r >= 0 && st->ready; i++) {
		struct sr_stream *f = &st->s[i];
		if ((r = pthread_create(&f->th, NULL, sr_main, f)))
			r = cd_err_set(err, r, "start the reader of %s", f->name);
		f->started = r >= 0;
	}
	if (r < 0) {
		sr_free(st);
		return r;
	}
	*ret = st;
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
	pr->map = pr->st->data;
	pr->size = (size_t)size;
	*ret = TAKE_PTR(pr);
	return 0;
}

int cd_page_files_check(int dirfd, const char *name, uint64_t size, const struct cd_page_layout *l,
                        cd_err *err)
{
	uint64_t nchunks = (size + CD_STREAM_CHUNK - 1) / CD_STREAM_CHUNK;
	struct stream_r st = {.n = l->streams, .codec = l->codec, .size = size, .nchunks = nchunks};
	int r = cd_page_layout_check(l, err);

	for (unsigned s = 0; s < l->streams && r >= 0; s++) {
		uint64_t raw = sr_raw_size(&st, s),
		         records = (nchunks + l->streams - 1 - s) / l->streams;
		char file[64];
		struct stat sb;
		if ((r = cd_page_stream_name(name, s, file, sizeof(file), err)) < 0)
			break;
		if (fstatat(dirfd, file, &sb, 0) < 0)
			return cd_err_sys(err, errno, "stat %s (a stream of %s)", file, name);
		if (l->codec == CD_CODEC_NONE ? (uint64_t)sb.st_size != raw
		                              : (uint64_t)sb.st_size < records * CD_PAGE_SIZE)
			return cd_err_set(err, EINVAL, "%s: truncated or corrupt (%jd bytes)", file,
			                  (intmax_t)sb.st_size);
	}
	return r;
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
	int r = sr_wait(pr->st, pr->pos, n, err);
	if (r < 0)
		return r;
	*ret_src = pr->map + pr->pos;
	*ret_len = n;
	cd_csum_part_add(&pr->csum, *ret_src, n, pr->pos, pr->size);
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
	/* every stream decoded to its end, also where bytes were skipped */
	int r = sr_wait(pr->st, 0, pr->size, err);
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
	int r = sr_wait(pr->st, off, len, err);
	if (r < 0)
		return r;
	*ret_src = pr->map + off;
	return 0;
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
