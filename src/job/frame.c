#include "job/frame.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shared/fdio.h"

uint32_t frame_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

int frame_write(int fd, char type, const void *data, size_t len)
{
	unsigned char hdr[FRAME_HEADER];
	int r;

	if (len > FRAME_MAX_DATA)
		return -EMSGSIZE;
	hdr[0] = (unsigned char)type;
	put_u32(hdr + 1, (uint32_t)len);
	r = fd_write_full(fd, hdr, sizeof(hdr));
	if (r == 0 && len)
		r = fd_write_full(fd, data, len);
	return r;
}

int frame_write_exit(int fd, int code)
{
	unsigned char p[4];

	put_u32(p, (uint32_t)code);
	return frame_write(fd, FRAME_EXIT, p, sizeof(p));
}

int frame_feed(struct frame_reader *r, const void *data, size_t len)
{
	if (len > sizeof(r->buf) - r->len)
		return -EPROTO;
	memcpy(r->buf + r->len, data, len);
	r->len += len;
	return 0;
}

int frame_next(struct frame_reader *r, char *ret_type, unsigned char *ret_data, size_t *ret_len)
{
	uint32_t len;

	if (r->len < FRAME_HEADER)
		return 0;
	len = frame_u32(r->buf + 1);
	if (len > FRAME_MAX_DATA)
		return -EPROTO;
	if (r->len < FRAME_HEADER + len)
		return 0;
	*ret_type = (char)r->buf[0];
	memcpy(ret_data, r->buf + FRAME_HEADER, len);
	*ret_len = len;
	memmove(r->buf, r->buf + FRAME_HEADER + len, r->len - FRAME_HEADER - len);
	r->len -= FRAME_HEADER + len;
	return 1;
}
