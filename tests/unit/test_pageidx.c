/* The record index of compressed page streams (pages-PID.idx,
 * docs/image-format.md `pages`): cd_page_index_parse takes the bytes of a
 * file a user may have written, and must refuse anything the layout, the
 * data's size and the stream files' sizes do not allow. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/pageio.h"

#define MIB             (1024u * 1024u)
#define ENT(len, codec) ((uint32_t)(len) | (uint32_t)(codec) << 24)

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t rec(uint32_t stored)
{
	return 4096 + (stored + 4095) / 4096 * 4096;
}

/* An index as the dump writes it: 2 lz4 streams, 5 chunks of 9 MiB data
 * (the last 1 MiB), chunk 1 compressed to 1000 bytes, the rest stored. */
struct fixture {
	struct cd_page_layout l;
	uint64_t size, fsize[CD_STREAMS_MAX];
	uint8_t buf[CD_PAGE_INDEX_HEAD + 4 * 5];
	size_t len;
};

static void make(struct fixture *f)
{
	uint32_t e[5] = {ENT(2 * MIB, 0), ENT(1000, CD_CODEC_LZ4), ENT(2 * MIB, 0), ENT(2 * MIB, 0),
	                 ENT(1 * MIB, 0)};

	memset(f, 0, sizeof(*f));
	f->l = (struct cd_page_layout){.streams = 2, .codec = CD_CODEC_LZ4};
	f->size = 9 * MIB;
	f->len = sizeof(f->buf);
	put32(f->buf, CD_PAGE_INDEX_MAGIC);
	put32(f->buf + 4, 1);
	put32(f->buf + 8, 2);
	put32(f->buf + 12, CD_CODEC_LZ4);
	put64(f->buf + 16, f->size);
	put64(f->buf + 24, 5);
	for (int k = 0; k < 5; k++) {
		put32(f->buf + CD_PAGE_INDEX_HEAD + 4 * k, e[k]);
		f->fsize[k % 2] += rec(e[k] & 0xffffff);
	}
}

static int parse(struct fixture *f, uint32_t **ent, cd_err *err)
{
	return cd_page_index_parse(f->buf, f->len, &f->l, f->size, f->fsize, ent, err);
}

static void refused(struct fixture *f, const char *what)
{
	uint32_t *ent = NULL;
	cd_err err = {0};

	assert_int_equal(parse(f, &ent, &err), -EINVAL);
	assert_null(ent);
	if (!strstr(err.msg, what))
		fail_msg("'%s' does not say '%s'", err.msg, what);
}

static void test_accepted(void **state)
{
	struct fixture f;
	uint32_t *ent = NULL;
	cd_err err = {0};

	(void)state;
	make(&f);
	assert_int_equal(parse(&f, &ent, &err), 0);
	assert_non_null(ent);
	assert_int_equal(ent[1], ENT(1000, CD_CODEC_LZ4));
	assert_int_equal(ent[4], ENT(1 * MIB, 0));
	free(ent);
}

static void test_header_refused(void **state)
{
	struct fixture f;

	(void)state;
	make(&f);
	f.buf[0] ^= 1;
	refused(&f, "version 1");
	make(&f);
	put32(f.buf + 4, 2);
	refused(&f, "version 1");
	make(&f);
	put32(f.buf + 8, 3);
	refused(&f, "streams and codec");
	make(&f);
	put32(f.buf + 12, CD_CODEC_ZSTD);
	refused(&f, "streams and codec");
	make(&f);
	put64(f.buf + 16, 9 * MIB + 4096);
	refused(&f, "size or chunk count");
	make(&f);
	put64(f.buf + 24, 4);
	refused(&f, "size or chunk count");
	make(&f);
	f.len = 3;
	refused(&f, "version 1");
}

static void test_length_refused(void **state)
{
	struct fixture f;

	(void)state;
	make(&f);
	f.len -= 4;
	refused(&f, "expected 52");
	make(&f);
	f.len -= 1;
	refused(&f, "expected 52");
	/* bytes after the last entry */
	uint8_t big[sizeof(f.buf) + 4] = {0};
	memcpy(big, f.buf, sizeof(f.buf));
	uint32_t *ent = NULL;
	cd_err err = {0};
	make(&f);
	memcpy(big, f.buf, sizeof(f.buf));
	assert_int_equal(cd_page_index_parse(big, sizeof(big), &f.l, f.size, f.fsize, &ent, &err),
	                 -EINVAL);
	assert_null(ent);
}

static void test_entries_refused(void **state)
{
	struct fixture f;

	(void)state;
	/* stored longer than its chunk */
	make(&f);
	put32(f.buf + CD_PAGE_INDEX_HEAD + 4, ENT(2 * MIB + 1, CD_CODEC_LZ4));
	refused(&f, "chunk 1");
	/* stored as it is, but not its chunk's length */
	make(&f);
	put32(f.buf + CD_PAGE_INDEX_HEAD + 4 * 4, ENT(1 * MIB - 4096, 0));
	refused(&f, "chunk 4");
	/* a codec not the image's */
	make(&f);
	put32(f.buf + CD_PAGE_INDEX_HEAD + 4, ENT(1000, CD_CODEC_ZSTD));
	refused(&f, "chunk 1");
	make(&f);
	put32(f.buf + CD_PAGE_INDEX_HEAD + 4, ENT(1000, 7));
	refused(&f, "chunk 1");
}

static void test_sums_refused(void **state)
{
	struct fixture f;

	(void)state;
	/* a valid entry, but its stream's records no longer fill the file */
	make(&f);
	put32(f.buf + CD_PAGE_INDEX_HEAD + 4, ENT(9000, CD_CODEC_LZ4));
	refused(&f, "stream 1");
	make(&f);
	f.fsize[0] += 4096;
	refused(&f, "stream 0");
	/* within a page the padding hides it: the headers catch that */
	make(&f);
	put32(f.buf + CD_PAGE_INDEX_HEAD + 4, ENT(1001, CD_CODEC_LZ4));
	uint32_t *ent = NULL;
	cd_err err = {0};
	assert_int_equal(parse(&f, &ent, &err), 0);
	free(ent);
}

static void test_layout_refused(void **state)
{
	struct fixture f;

	(void)state;
	make(&f);
	f.l.codec = CD_CODEC_NONE;
	refused(&f, "no codec");
	make(&f);
	f.l.streams = 17;
	refused(&f, "out of range");
}

/* No data: no chunk, a header alone, stream files empty. */
static void test_empty(void **state)
{
	struct fixture f;
	uint32_t *ent = NULL;
	cd_err err = {0};

	(void)state;
	make(&f);
	put64(f.buf + 16, 0);
	put64(f.buf + 24, 0);
	f.size = 0;
	f.len = CD_PAGE_INDEX_HEAD;
	f.fsize[0] = f.fsize[1] = 0;
	assert_int_equal(parse(&f, &ent, &err), 0);
	free(ent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepted),       cmocka_unit_test(test_header_refused),
	    cmocka_unit_test(test_length_refused), cmocka_unit_test(test_entries_refused),
	    cmocka_unit_test(test_sums_refused),   cmocka_unit_test(test_layout_refused),
	    cmocka_unit_test(test_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
