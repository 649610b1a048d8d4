/* The record index of a compressed page file (pages-PID.idx): read from
 * an image a user may have written, before any task exists. The first
 * input byte picks the layout (streams, codec) and whether the stream
 * files' sizes are the ones the entries add up to (so that inputs get past
 * the sums too); the rest is the index. The data's size is the index's
 * own (the header's) where it has one. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pageio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cd_page_layout l;
	uint64_t fsize[CD_STREAMS_MAX] = {0}, dsize = 0;
	uint32_t *ent = NULL;
	cd_err err = {0};

	if (size < 1)
		return 0;
	l.streams = (data[0] & 15) + 1;
	l.codec = (data[0] & 16) ? CD_CODEC_ZSTD : CD_CODEC_LZ4;
	bool add_up = data[0] & 32;
	data++;
	size--;
	if (size >= CD_PAGE_INDEX_HEAD)
		dsize = le(data + 16, 8);
	for (size_t k = 0; add_up && size >= CD_PAGE_INDEX_HEAD && k < (size - 32) / 4; k++) {
		uint64_t stored = le(data + 32 + 4 * k, 4) & 0xffffff;
		fsize[k % l.streams] += 4096 + (stored + 4095) / 4096 * 4096;
	}
	if (cd_page_index_parse(data, size, &l, dsize, fsize, &ent, &err) < 0) {
		if (ent || !err.msg[0])
			abort();
		return 0;
	}
	/* accepted: one entry a chunk, each a record that fits its chunk */
	uint64_t n = (dsize + CD_STREAM_CHUNK - 1) / CD_STREAM_CHUNK;
	if (size != CD_PAGE_INDEX_HEAD + 4 * n)
		abort();
	for (uint64_t k = 0; k < n; k++) {
		uint64_t len = dsize - k * CD_STREAM_CHUNK;
		len = len < CD_STREAM_CHUNK ? len : CD_STREAM_CHUNK;
		if ((ent[k] & 0xffffff) > len || (ent[k] >> 24) > (uint32_t)l.codec)
			abort();
	}
	free(ent);
	return 0;
}
