/* The ranges a lazy restore still has to fill (src/engine/lazy-ranges.c),
 * checked against a model of one page file offset per page: random cuts,
 * remaps and clones, every lookup compared with the model, and the whole
 * set checked after each change. Then the pass's pattern over hundreds of
 * thousands of ranges (a many-run mapping): quadratic work there, a list
 * searched from its start and moved on every fill, is what made the 4 GiB
 * `mix` pass take 73-103 s (docs/engine.md, "Many runs"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/lazy-ranges.h"

#define PG     4096u
#define NPAGES 2048u
#define NONE   UINT64_MAX

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(uint64_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state % n;
}

/* The model: the page file offset of each page still missing, or NONE. */
struct model {
	uint64_t off[NPAGES];
};

static void check_same(const struct cd_lazy_ranges *s, const struct model *m)
{
	uint64_t pages = 0, prev_end = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct cd_lazy_range *x = &s->r[i];
		if (!x->len)
			continue;
		assert_true(x->addr >= prev_end);
		assert_int_equal(x->addr % PG, 0);
		assert_int_equal(x->len % PG, 0);
		for (uint64_t a = x->addr; a < x->addr + x->len; a += PG)
			assert_int_equal(m->off[a / PG], x->off + (a - x->addr));
		pages += x->len / PG;
		prev_end = x->addr + x->len;
	}
	uint64_t want = 0;
	for (size_t p = 0; p < NPAGES; p++)
		want += m->off[p] != NONE;
	assert_int_equal(pages, want);
	for (size_t p = 0; p < NPAGES; p++) {
		const struct cd_lazy_range *x = cd_lr_at(s, p * PG + rnd(PG));
		if (m->off[p] == NONE) {
			assert_null(x);
			continue;
		}
		assert_non_null(x);
		assert_true(x->addr <= p * PG && p * PG < x->addr + x->len);
	}
}

/* cd_lr_of_off against the model: the range of lowest address holding
 * bytes of [off, off+len). */
static void check_of_off(struct cd_lazy_ranges *s, const struct model *m, uint64_t off,
                         uint64_t len)
{
	const struct cd_lazy_range *x = cd_lr_of_off(s, off, len);
	size_t first = NPAGES;

	for (size_t p = 0; p < NPAGES && first == NPAGES; p++)
		if (m->off[p] != NONE && m->off[p] < off + len && off < m->off[p] + PG)
			first = p;
	if (first == NPAGES) {
		assert_null(x);
		return;
	}
	assert_non_null(x);
	assert_true(x->addr <= first * PG && first * PG < x->addr + x->len);
}

/* Ranges of 1-8 pages with gaps, offsets in order, as registered. */
static void fill(struct cd_lazy_ranges *s, struct model *m)
{
	uint64_t off = 0;

	for (size_t p = 0; p < NPAGES; p++)
		m->off[p] = NONE;
	for (size_t p = rnd(3); p < NPAGES;) {
		size_t n = 1 + rnd(8);
		if (p + n > NPAGES)
			n = NPAGES - p;
		assert_int_equal(cd_lr_add(s, &(struct cd_lazy_range){p * PG, n * PG, off}), 0);
		for (size_t k = 0; k < n; k++)
			m->off[p + k] = off + k * PG;
		off += n * PG;
		p += n + rnd(3);
	}
}

static void cut(struct cd_lazy_ranges *s, struct model *m, size_t a, size_t b)
{
	assert_int_equal(cd_lr_cut(s, a * PG, b * PG, NULL), 0);
	for (size_t p = a; p < b; p++)
		m->off[p] = NONE;
}

/* mremap of n pages from a to b (b's old pages unmapped by it). */
static void remap(struct cd_lazy_ranges *s, struct model *m, size_t a, size_t b, size_t n)
{
	struct cd_lazy_ranges moved = {0};
	uint64_t keep[NPAGES];

	assert_int_equal(cd_lr_cut(s, a * PG, (a + n) * PG, &moved), 0);
	assert_int_equal(cd_lr_cut(s, b * PG, (b + n) * PG, NULL), 0);
	for (size_t i = 0; i < moved.n; i++)
		moved.r[i].addr = moved.r[i].addr - a * PG + b * PG;
	/* ranges in order are merged, others sorted in: both ways */
	if (moved.n > 1 && rnd(2)) {
		struct cd_lazy_range x = moved.r[0];
		moved.r[0] = moved.r[moved.n - 1];
		moved.r[moved.n - 1] = x;
	}
	assert_int_equal(cd_lr_merge(s, &moved), 0);
	cd_lr_free(&moved);
	memcpy(keep, &m->off[a], n * sizeof(*keep));
	for (size_t p = a; p < a + n; p++)
		m->off[p] = NONE;
	memcpy(&m->off[b], keep, n * sizeof(*keep));
}

static void test_matches_model(void **state)
{
	(void)state;
	for (int round = 0; round < 40; round++) {
		struct cd_lazy_ranges s = {0};
		struct model m;
		fill(&s, &m);
		check_same(&s, &m);
		for (int op = 0; op < 300; op++) {
			size_t a = rnd(NPAGES), n = 1 + rnd(round % 2 ? 8 : 300);
			n = a + n > NPAGES ? NPAGES - a : n;
			switch (rnd(6)) {
			case 0: {
				size_t b = rnd(NPAGES - n + 1);
				if (b + n <= a || a + n <= b)
					remap(&s, &m, a, b, n);
				break;
			}
			case 1: {
				struct cd_lazy_ranges c;
				assert_int_equal(cd_lr_clone(&c, &s), 0);
				cd_lr_free(&s);
				s = c;
				break;
			}
			default:
				cut(&s, &m, a, a + n);
			}
			check_same(&s, &m);
			uint64_t off = rnd(NPAGES * PG), len = PG * (1 + rnd(64));
			check_of_off(&s, &m, off, len);
		}
		cd_lr_free(&s);
	}
}

/* The pass over a 300,000-run mapping: each 1 MiB of the file, the range
 * that holds its first missing byte is filled, until none is left; a
 * fault in between fills from its page to its range's end. */
static void test_pass_over_many_ranges(void **state)
{
	enum { RUNS = 300000, STEP = 1u << 20 };
	struct cd_lazy_ranges s = {0};
	uint64_t off = 0, filled = 0;

	(void)state;
	for (uint64_t i = 0; i < RUNS; i++) {
		uint64_t n = 1 + i % 3;
		assert_int_equal(
		    cd_lr_add(&s, &(struct cd_lazy_range){(2 * i * 4) * PG, n * PG, off}), 0);
		off += n * PG;
	}
	for (uint64_t at = 0; at < off; at += STEP) {
		const struct cd_lazy_range *x;
		while ((x = cd_lr_of_off(&s, at, STEP))) {
			uint64_t lo = x->off > at ? x->off : at;
			uint64_t hi = x->off + x->len < at + STEP ? x->off + x->len : at + STEP;
			uint64_t addr = x->addr + (lo - x->off);
			assert_int_equal(cd_lr_cut(&s, addr, addr + (hi - lo), NULL), 0);
			filled += hi - lo;
		}
		/* a fault further on, in the middle of a range */
		const struct cd_lazy_range *f = cd_lr_at(&s, (at / PG + 9000) * 8 * PG + PG);
		if (f) {
			uint64_t a = (at / PG + 9000) * 8 * PG + PG;
			filled += f->addr + f->len - a;
			assert_int_equal(cd_lr_cut(&s, a, f->addr + f->len, NULL), 0);
		}
	}
	assert_int_equal(filled, off);
	for (size_t i = 0; i < s.n; i++)
		assert_int_equal(s.r[i].len, 0);
	cd_lr_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_matches_model),
	    cmocka_unit_test(test_pass_over_many_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
