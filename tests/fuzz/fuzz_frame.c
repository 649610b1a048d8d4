/* The attach frame reader: the daemon reads frames from any client that
 * may attach. The first input byte sets the size of the reads the bytes
 * arrive in, as a socket would cut them. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char payload[FRAME_MAX_DATA];

/* Pops every complete frame; -1 once the stream is refused. */
static int drain(struct frame_reader *r)
{
	char type;
	size_t len;
	int n;

	while ((n = frame_next(r, &type, payload, &len)) == 1)
		if (len > FRAME_MAX_DATA || r->len > sizeof(r->buf))
			abort();
	return n < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct frame_reader r;
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] * 64 + 1;
	data++;
	size--;
	memset(&r, 0, sizeof(r));
	while (size) {
		size_t n = chunk < frame_reader_room(&r) ? chunk : frame_reader_room(&r);
		n = n < size ? n : size;
		if (n == 0 || frame_feed(&r, data, n) < 0)
			abort(); /* room() promised space after a drain */
		data += n;
		size -= n;
		if (drain(&r) < 0)
			return 0;
	}
	return 0;
}
