/* Parallel deflate for the gzip and zlib formats: deflate runs at about
 * 70 MiB/s per core on image pages, far below the disk, so the stream is cut
 * into blocks compressed by one worker per CPU (as pigz does). Each block is
 * raw deflate primed with the previous 32 KiB as dictionary and ended with a
 * sync flush, so the concatenation is one ordinary stream that any gunzip or
 * inflate reads; the checksums of the blocks are combined in order. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "storage/internal.h"

#define BLOCK_IN   ((size_t)1 << 20)
#define DICT_SIZE  ((size_t)32 << 10)
#define MAX_WORKER 16

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
		int e = init == Z_OK ? compress_block(&z, b) : EINVAL;
		uLong check = d->gzip ? crc32(0, NULL, 0) : adler32(0, NULL, 0);
		check = d->gzip ? crc32(check, b->in, (uInt)b->in_len)
		                : adler32(check, b->in, (uInt)b->in_len);
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
			r = cd_err_set(err, b->error, "deflate failed");
		else
			r = storage_sink_write(d->sink, b->out, b->out_len, err);
		d->check = d->gzip ? crc32_combine(d->check, b->check, (z_off_t)b->in_len)
		                   : adler32_combine(d->check, b->check, (z_off_t)b->in_len);
		pthread_mutex_lock(&d->lock);
		b->state = BLOCK_FREE;
		d->write_seq++;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

static int write_header(storage_deflate *d, cd_err *err)
{
	uint8_t h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}; /* no name, no mtime, Unix */

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
	uint8_t t[8];

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
	if (prev) {
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

		/* deflateBound-like worst case for stored data, plus the flush */
		b->out_cap = BLOCK_IN + BLOCK_IN / 1000 + 64 * 1024;
		b->in = malloc(BLOCK_IN);
		b->out = malloc(b->out_cap);
		if (!b->in || !b->out)
			return -ENOMEM;
	}
	return 0;
}

int storage_deflate_start(storage_sink *sink, bool gzip, int level, storage_deflate **ret,
                          cd_err *err)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	storage_deflate *d;
	int r;

	if (level < 1 || level > 9)
		return cd_err_set(err, EINVAL, "bad compression level %d (1-9)", level);
	d = calloc(1, sizeof(*d));
	if (!d)
		return cd_err_sys(err, ENOMEM, "deflate");
	d->sink = sink;
	d->gzip = gzip;
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
