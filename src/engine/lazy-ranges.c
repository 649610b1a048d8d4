/* The missing ranges of a lazy restore's mm (lazy-ranges.h). Ends stay in
 * order with the empty ranges among them (a range only ever shrinks within
 * where it was), so the binary searches pass over the empty ones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/lazy-ranges.h"
#include "shared/prefault.h"

/* Empty ranges are swept out once there are more than this many and they
 * are half of the array: a sweep is a pass over it. */
#define SWEEP_MIN 64

/* The first range that ends after x: by address, or (by_off, s in file
 * order) by page file offset. */
static size_t find_end(const struct cd_lazy_ranges *s, uint64_t x, bool by_off)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct cd_lazy_range *r = &s->r[mid];
		if ((by_off ? r->off : r->addr) + r->len > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int grow(struct cd_lazy_ranges *s, size_t want)
{
	if (want <= s->cap)
		return 0;
	size_t cap = s->cap ? 2 * s->cap : 16;
	cap = cap < want ? want : cap;
	struct cd_lazy_range *r = realloc(s->r, cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	s->r = r;
	s->cap = cap;
	return 0;
}

int cd_lr_reserve(struct cd_lazy_ranges *s, size_t more)
{
	size_t had = s->cap;

	if (grow(s, s->n + more) < 0)
		return -ENOMEM;
	if (s->cap > had)
		cd_prefault(&s->r[had], (s->cap - had) * sizeof(*s->r));
	return 0;
}

static int insert_at(struct cd_lazy_ranges *s, size_t i, const struct cd_lazy_range *x)
{
	if (grow(s, s->n + 1) < 0)
		return -ENOMEM;
	memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
	s->r[i] = *x;
	s->n++;
	s->by_off_known = false;
	return 0;
}

static void sweep(struct cd_lazy_ranges *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->n; i++)
		if (s->r[i].len)
			s->r[k++] = s->r[i];
	s->n = k;
	s->empty = 0;
}

int cd_lr_add(struct cd_lazy_ranges *s, const struct cd_lazy_range *x)
{
	size_t i = s->n;

	while (i > 0 && s->r[i - 1].addr > x->addr)
		i--;
	return insert_at(s, i, x);
}

int cd_lr_cut(struct cd_lazy_ranges *s, uint64_t a, uint64_t b, struct cd_lazy_ranges *moved)
{
	for (size_t i = find_end(s, a, false); i < s->n && s->r[i].addr < b; i++) {
		struct cd_lazy_range x = s->r[i];
		if (!x.len)
			continue;
		uint64_t end = x.addr + x.len;
		uint64_t lo = x.addr > a ? x.addr : a, hi = end < b ? end : b;
		if (moved && cd_lr_add(moved, &(struct cd_lazy_range){lo, hi - lo,
		                                                      x.off + (lo - x.addr)}) < 0)
			return -ENOMEM;
		/* what is left: the part before and the part after */
		struct cd_lazy_range tail = {hi, end - hi, x.off + (hi - x.addr)};
		s->r[i].len = lo - x.addr;
		if (lo > x.addr && hi < end) {
			if (insert_at(s, i + 1, &tail) < 0)
				return -ENOMEM;
			i++;
		} else if (hi < end) {
			s->r[i] = tail;
		} else if (lo == x.addr) {
			s->empty++;
		}
	}
	if (s->empty > SWEEP_MIN && s->empty > s->n / 2)
		sweep(s);
	return 0;
}

static int by_addr(const void *a, const void *b)
{
	const struct cd_lazy_range *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static bool sorted(const struct cd_lazy_ranges *s)
{
	for (size_t i = 1; i < s->n; i++)
		if (s->r[i - 1].addr > s->r[i].addr)
			return false;
	return true;
}

/* sorted add into sorted s, which has room: from the ends down, so that
 * nothing of s is overwritten before it is moved */
static void merge_sorted(struct cd_lazy_ranges *s, const struct cd_lazy_ranges *add)
{
	size_t i = s->n, j = add->n, k = s->n + add->n;

	while (j > 0) {
		if (i > 0 && s->r[i - 1].addr > add->r[j - 1].addr)
			s->r[--k] = s->r[--i];
		else
			s->r[--k] = add->r[--j];
	}
	s->n += add->n;
}

/* A remap may move thousands of ranges, a mapping made from its text
 * (lazy.c) hundreds of thousands: in one linear merge when they are in
 * order (a mapping's always are), else one sort. */
int cd_lr_merge(struct cd_lazy_ranges *s, const struct cd_lazy_ranges *add)
{
	if (!add->n)
		return 0;
	sweep(s);
	if (grow(s, s->n + add->n) < 0)
		return -ENOMEM;
	if (sorted(add)) {
		merge_sorted(s, add);
	} else {
		memcpy(&s->r[s->n], add->r, add->n * sizeof(*add->r));
		s->n += add->n;
		qsort(s->r, s->n, sizeof(*s->r), by_addr);
	}
	s->empty = 0;
	for (size_t i = 0; i < s->n; i++)
		s->empty += !s->r[i].len;
	s->by_off_known = false;
	return 0;
}

int cd_lr_clone(struct cd_lazy_ranges *dst, const struct cd_lazy_ranges *s)
{
	*dst = *s;
	dst->r = NULL;
	dst->cap = 0;
	if (!s->n)
		return 0;
	if (!(dst->r = malloc(s->n * sizeof(*dst->r)))) {
		dst->n = 0;
		return -ENOMEM;
	}
	memcpy(dst->r, s->r, s->n * sizeof(*dst->r));
	dst->cap = s->n;
	return 0;
}

const struct cd_lazy_range *cd_lr_at(const struct cd_lazy_ranges *s, uint64_t addr)
{
	size_t i = find_end(s, addr, false);

	return i < s->n && s->r[i].len && s->r[i].addr <= addr ? &s->r[i] : NULL;
}

/* Whether s is in page file order too: as registered (each task's mappings
 * in order), until a remap moves some out of it. The empty ranges count:
 * the search passes over them. */
static bool in_off_order(const struct cd_lazy_ranges *s)
{
	uint64_t next = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (s->r[i].off < next)
			return false;
		next = s->r[i].off + s->r[i].len;
	}
	return true;
}

const struct cd_lazy_range *cd_lr_of_off(struct cd_lazy_ranges *s, uint64_t off, uint64_t len)
{
	if (!s->by_off_known) {
		s->by_off = in_off_order(s);
		s->by_off_known = true;
	}
	const struct cd_lazy_range *found = NULL;
	for (size_t i = s->by_off ? find_end(s, off, true) : 0; i < s->n; i++) {
		const struct cd_lazy_range *x = &s->r[i];
		if (s->by_off && x->off >= off + len)
			break;
		if (x->len && x->off < off + len && off < x->off + x->len) {
			found = x;
			break;
		}
	}
	return found;
}

void cd_lr_free(struct cd_lazy_ranges *s)
{
	free(s->r);
	*s = (struct cd_lazy_ranges){0};
}
