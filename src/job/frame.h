/* Framing of the attach stream, both directions, after the HTTP upgrade:
 * one type byte, a 32-bit big-endian length, then the payload. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FRAME_OUTPUT 'o' /* daemon -> client: job output */
#define FRAME_EXIT   'x' /* daemon -> client: 4-byte big-endian exit code; stream ends */
#define FRAME_INPUT  'i' /* client -> daemon: bytes for the job's terminal */
#define FRAME_RESIZE 'w' /* client -> daemon: rows, cols as 16-bit big-endian */

#define FRAME_HEADER   5
#define FRAME_MAX_DATA 65536

struct frame_reader {
	unsigned char buf[FRAME_HEADER + FRAME_MAX_DATA];
	size_t len;
};

/* Writes a whole frame to a blocking fd; negative errno on failure. */
int frame_write(int fd, char type, const void *data, size_t len);
int frame_write_exit(int fd, int code);

/* How many bytes the reader can take now. It never holds more than the
 * start of one frame after frame_next() has popped what is complete, so this
 * is at least 1: read no more than this, or a fast stream overflows it. */
static inline size_t frame_reader_room(const struct frame_reader *r)
{
	return sizeof(r->buf) - r->len;
}

/* Appends received bytes; returns -EPROTO when they exceed what fits. */
int frame_feed(struct frame_reader *r, const void *data, size_t len);

/* Pops one complete frame: returns 1 with type/data/len set (data valid
 * until the next call), 0 when more bytes are needed, -EPROTO on a frame
 * too large. */
int frame_next(struct frame_reader *r, char *ret_type, unsigned char *ret_data, size_t *ret_len);

uint32_t frame_u32(const unsigned char *p);
