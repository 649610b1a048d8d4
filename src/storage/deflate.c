/* Parallel deflate for the gzip and zlib formats: deflate runs at about
 * 70 MiB/s per core on image pages, far below the disk, so the stream is cut
 * into blocks compressed by one worker per CPU (as pigz does). Each block is
 * raw deflate primed with the previous 32 KiB as dictionary and ended with a
 * sync flush, so the concatenation is one ordinary stream that any gunzip or
 * inflate reads; the checksums of the blocks are combined in order.
 *
 * lz4 uses the same blocks as the independent 1 MiB blocks of one LZ4 frame
 * (no dictionary, no checksums: the archive's CRC trailer covers the
 * content). A block whose first 64 KiB do not shrink by 1/16 is stored as
 * it is (an uncompressed block of the frame) without compressing the rest:
 * random pages cost a copy, not a compression, so lz4 is never much slower
 * than no compression (libarchive's single-threaded filter took 8.8 s where
 * none took 4.1 s for a 2 GiB dump). */
#include <errno.h>
#include <lz4.h>
#include <lz4frame.h>
#include <lz4hc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "storage/internal.h"

#define BLOCK_IN   ((size_t)1 << 20)
#define DICT_SIZE  ((size_t)32 << 10)
#define MAX_WORKER 16
#define LZ4_SAMPLE ((size_t)64 << 10)
#define LZ4_STORED 0x80000000u /* block size flag: not compressed */

enum block_state { BLOCK_FREE, BLOCK_QUEUED, BLOCK_WORKING, BLOCK_DONE };

typedef struct block {
	enum block_state state;
	uint64_t seq;
	bool last;
	uint8_t *in;
	size_t in_len;
	uint8_t dict[DICT_SIZE];
	size_t dict_len;
	uint8_t *out;
	size_t out_cap, out_len;
	uLong check; /* crc32 (gzip) or adler32 (zlib) of in */
	int error;
} block;

struct storage_deflate {
	storage_sink *sink;
	bool gzip;
	bool lz4;
	int level;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t workers[MAX_WORKER];
	size_t nworkers;
	block *blocks;
	size_t nblocks;
	uint64_t next_seq;  /* of the block being filled */
	uint64_t write_seq; /* next block to go to the sink */
	block *cur;
	uLong check;
	uint64_t total;
	bool stop;
};

static block *slot(storage_deflate *d, uint64_t seq)
{
	return &d->blocks[seq % d->nblocks];
}

static int compress_block(z_stream *z, block *b)
{
	int zr;

	if (deflateReset(z) != Z_OK)
		return EINVAL;
	if (b->dict_len && deflateSetDictionary(z, b->dict, (uInt)b->dict_len) != Z_OK)
		return EINVAL;
	z->next_in = b->in;
	z->avail_in = (uInt)b->in_len;
	z->next_out = b->out;
	z->avail_out = (uInt)b->out_cap;
	zr = deflate(z, b->last ? Z_FINISH : Z_SYNC_FLUSH);
	if (zr == Z_STREAM_ERROR || z->avail_in != 0 || (b->last && zr != Z_STREAM_END))
		return EIO;
	b->out_len = b->out_cap - z->avail_out;
	return 0;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int lz4_compress(const uint8_t *in, size_t len, uint8_t *out, size_t cap, int level)
{
	if (level >= 3)
		return LZ4_compress_HC((const char *)in, (char *)out, (int)len, (int)cap, level);
	return LZ4_compress_default((const char *)in, (char *)out, (int)len, (int)cap);
}

/* One block of the LZ4 frame: its size word, then its data, compressed or
 * (when it would not shrink; the sample says so cheaply) stored. */
static int lz4_block(block *b, int level)
{
	size_t sample = b->in_len < LZ4_SAMPLE ? b->in_len : LZ4_SAMPLE;
	size_t cap = b->out_cap - 4;
	int n = 0;

	b->out_len = 0;
	if (!b->in_len)
		return 0;
	int s = lz4_compress(b->in, sample, b->out + 4, cap, level);
	if (s > 0 && (size_t)s <= sample - sample / 16)
		n = lz4_compress(b->in, b->in_len, b->out + 4, cap, level);
	if (n > 0 && (size_t)n < b->in_len) {
		put_le32(b->out, (uint32_t)n);
		b->out_len = 4 + (size_t)n;
		return 0;
	}
	put_le32(b->out, (uint32_t)b->in_len | LZ4_STORED);
	memcpy(b->out + 4, b->in, b->in_len);
	b->out_len = 4 + b->in_len;
	return 0;
}

/* Takes the oldest queued block, so output drains in order. */
static block *next_queued(storage_deflate *d)
{
	for (uint64_t s = d->write_seq; s < d->next_seq; s++)
		if (slot(d, s)->state == BLOCK_QUEUED)
			return slot(d, s);
	return NULL;
}

static void *worker_main(void *arg)
{
	storage_deflate *d = arg;
	z_stream z = {0};
	int init = deflateInit2(&z, d->level, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);

	pthread_mutex_lock(&d->lock);
	for (;;) {
		block *b;

		while (!(b = next_queued(d)) && !d->stop)
			pthread_cond_wait(&d->cond, &d->lock);
		if (!b)
			break;
		b->state = BLOCK_WORKING;
		pthread_mutex_unlock(&d->lock);
		int e = d->lz4         ? lz4_block(b, d->level)
		        : init == Z_OK ? compress_block(&z, b)
		                       : EINVAL;
		uLong check = 0;
		if (!d->lz4) {
			check = d->gzip ? crc32(0, NULL, 0) : adler32(0, NULL, 0);
			check = d->gzip ? crc32(check, b->in, (uInt)b->in_len)
			                : adler32(check, b->in, (uInt)b->in_len);
		}
		pthread_mutex_lock(&d->lock);
		b->check = check;
		b->error = e;
		b->state = BLOCK_DONE;
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
	if (init == Z_OK)
		deflateEnd(&z);
	return NULL;
}

/* Writes finished blocks in order; with wait, until block seq is written. */
static int drain(storage_deflate *d, uint64_t upto, cd_err *err)
{
	int r = 0;

	pthread_mutex_lock(&d->lock);
	while (r == 0 && d->write_seq < upto) {
		block *b = slot(d, d->write_seq);

		if (b->state != BLOCK_DONE) {
			pthread_cond_wait(&d->cond, &d->lock);
			continue;
		}
		pthread_mutex_unlock(&d->lock);
		if (b->error)
			r = cd_err_set(err, b->error, "%s failed", d->lz4 ? "lz4" : "deflate");
		else
			r = storage_sink_write(d->sink, b->out, b->out_len, err);
		if (!d->lz4)
			d->check = d->gzip
			               ? crc32_combine(d->check, b->check, (z_off_t)b->in_len)
			               : adler32_combine(d->check, b->check, (z_off_t)b->in_len);
		pthread_mutex_lock(&d->lock);
		b->state = BLOCK_FREE;
		d->write_seq++;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

/* The frame header liblz4 writes for independent 1 MiB blocks without
 * checksums (the blocks that follow are ours). */
static int lz4_header(storage_deflate *d, cd_err *err)
{
	LZ4F_preferences_t prefs = {
	    .frameInfo = {.blockSizeID = LZ4F_max1MB, .blockMode = LZ4F_blockIndependent},
	    .compressionLevel = d->level,
	};
	LZ4F_cctx *cctx = NULL;
	uint8_t h[LZ4F_HEADER_SIZE_MAX];

	if (LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)))
		return cd_err_set(err, ENOMEM, "lz4 context");
	size_t n = LZ4F_compressBegin(cctx, h, sizeof(h), &prefs);
	LZ4F_freeCompressionContext(cctx);
	if (LZ4F_isError(n))
		return cd_err_set(err, EINVAL, "lz4 header: %s", LZ4F_getErrorName(n));
	return storage_sink_write(d->sink, h, n, err);
}

static int write_header(storage_deflate *d, cd_err *err)
{
	uint8_t h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}; /* no name, no mtime, Unix */

	if (d->lz4)
		return lz4_header(d, err);
	if (d->gzip) {
		h[8] = d->level == 1 ? 4 : d->level == 9 ? 2 : 0;
		return storage_sink_write(d->sink, h, sizeof(h), err);
	}
	/* CMF: deflate, 32 KiB window; FLG: the level class and its check */
	unsigned flevel = d->level <= 1 ? 0 : d->level <= 5 ? 1 : d->level == 6 ? 2 : 3;
	unsigned cmf = 0x78, flg = flevel << 6;
	flg += 31 - ((cmf << 8) | flg) % 31;
	uint8_t z[2] = {(uint8_t)cmf, (uint8_t)flg};
	return storage_sink_write(d->sink, z, sizeof(z), err);
}

static int write_trailer(storage_deflate *d, cd_err *err)
{
	uint8_t t[8] = {0};

	if (d->lz4) /* the end mark: a block of size 0 */
		return storage_sink_write(d->sink, t, 4, err);
	if (d->gzip) {
		for (int i = 0; i < 4; i++) {
			t[i] = (uint8_t)(d->check >> (8 * i));
			t[4 + i] = (uint8_t)(d->total >> (8 * i));
		}
		return storage_sink_write(d->sink, t, 8, err);
	}
	for (int i = 0; i < 4; i++)
		t[i] = (uint8_t)(d->check >> (24 - 8 * i));
	return storage_sink_write(d->sink, t, 4, err);
}

/* Makes the next slot the one being filled, once its old content is out. */
static int next_block(storage_deflate *d, cd_err *err)
{
	block *prev = d->cur;
	int r = 0;

	if (d->next_seq >= d->nblocks)
		r = drain(d, d->next_seq - d->nblocks + 1, err);
	if (r < 0)
		return r;
	d->cur = slot(d, d->next_seq);
	d->cur->seq = d->next_seq;
	d->cur->in_len = 0;
	d->cur->last = false;
	d->cur->dict_len = 0;
	if (prev && !d->lz4) {
		size_t keep = prev->in_len < DICT_SIZE ? prev->in_len : DICT_SIZE;

		memcpy(d->cur->dict, prev->in + prev->in_len - keep, keep);
		d->cur->dict_len = keep;
	}
	return 0;
}

static void submit(storage_deflate *d)
{
	pthread_mutex_lock(&d->lock);
	d->cur->state = BLOCK_QUEUED;
	d->next_seq++;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

int storage_deflate_write(storage_deflate *d, const void *data, size_t n, cd_err *err)
{
	const uint8_t *p = data;

	d->total += n;
	while (n > 0) {
		size_t take = BLOCK_IN - d->cur->in_len;

		if (take > n)
			take = n;
		memcpy(d->cur->in + d->cur->in_len, p, take);
		d->cur->in_len += take;
		p += take;
		n -= take;
		if (d->cur->in_len == BLOCK_IN) {
			submit(d);
			int r = next_block(d, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int storage_deflate_finish(storage_deflate *d, cd_err *err)
{
	int r;

	d->cur->last = true;
	submit(d);
	r = drain(d, d->next_seq, err);
	return r < 0 ? r : write_trailer(d, err);
}

/* Two blocks per worker (one compressing, one queued) and one filling. */
static int alloc_blocks(storage_deflate *d, size_t workers)
{
	d->nblocks = 2 * workers + 1;
	d->blocks = calloc(d->nblocks, sizeof(*d->blocks));
	if (!d->blocks)
		return -ENOMEM;
	for (size_t i = 0; i < d->nblocks; i++) {
		block *b = &d->blocks[i];

		/* deflateBound-like worst case for stored data, plus the flush
		 * (above LZ4_compressBound and a block's size word) */
		b->out_cap = BLOCK_IN + BLOCK_IN / 1000 + 64 * 1024;
		b->in = malloc(BLOCK_IN);
		b->out = malloc(b->out_cap);
		if (!b->in || !b->out)
			return -ENOMEM;
	}
	return 0;
}

int storage_deflate_start(storage_sink *sink, storage_compression fmt, int level,
                          storage_deflate **ret, cd_err *err)
{
	const bool gzip = fmt == STORAGE_GZIP;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	storage_deflate *d;
	int r;

	if (level < 1 || level > 9)
		return cd_err_set(err, EINVAL, "bad compression level %d (1-9)", level);
	if (fmt != STORAGE_GZIP && fmt != STORAGE_ZLIB && fmt != STORAGE_LZ4)
		return cd_err_set(err, EINVAL, "not a block compression: %s",
		                  storage_compression_name(fmt));
	d = calloc(1, sizeof(*d));
	if (!d)
		return cd_err_sys(err, ENOMEM, "deflate");
	d->sink = sink;
	d->gzip = gzip;
	d->lz4 = fmt == STORAGE_LZ4;
	d->level = level;
	d->check = gzip ? crc32(0, NULL, 0) : adler32(0, NULL, 0);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	r = alloc_blocks(d, ncpu < 1 ? 1 : ncpu > MAX_WORKER ? MAX_WORKER : (size_t)ncpu);
	if (r < 0)
		r = cd_err_sys(err, r, "deflate buffers");
	for (size_t i = 0; r == 0 && i < d->nblocks / 2; i++) {
		int e = pthread_create(&d->workers[i], NULL, worker_main, d);
		if (e)
			r = cd_err_sys(err, e, "deflate thread");
		else
			d->nworkers++;
	}
	if (r == 0)
		r = next_block(d, err);
	if (r == 0)
		r = write_header(d, err);
	if (r < 0) {
		storage_deflate_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

void storage_deflate_free(storage_deflate *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	for (size_t i = 0; d->blocks && i < d->nblocks; i++) {
		free(d->blocks[i].in);
		free(d->blocks[i].out);
	}
	free(d->blocks);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}
