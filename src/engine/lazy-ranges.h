/* The ranges of one mm a lazy restore still has to fill (lazy.c): where
 * they are and where their bytes are in the page file. A mapping of many
 * runs (zero and written pages alternating) makes hundreds of thousands,
 * so every lookup is a binary search and a range filled costs no move of
 * the others. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cd_lazy_range {
	uint64_t addr, len, off; /* off: in the page file */
};

/* Sorted by address, none overlapping. A range filled is left in r with
 * len 0 where it was (empty); they are swept out once they are half of r. */
struct cd_lazy_ranges {
	struct cd_lazy_range *r;
	size_t n, cap;
	size_t empty;
	bool by_off;       /* r is in page file order too: searched so */
	bool by_off_known; /* by_off is up to date */
};

/* Makes room for more ranges at once (a mapping's, before they are added
 * one by one), its memory faulted in with one call. -ENOMEM. */
int cd_lr_reserve(struct cd_lazy_ranges *s, size_t more);
/* Adds x, which overlaps none; -ENOMEM. Cheapest in address order. */
int cd_lr_add(struct cd_lazy_ranges *s, const struct cd_lazy_range *x);
/* Removes [a, b); with moved, what was removed is added to it. -ENOMEM. */
int cd_lr_cut(struct cd_lazy_ranges *s, uint64_t a, uint64_t b, struct cd_lazy_ranges *moved);
/* Adds every range of add, which overlap none of s's (a remap). -ENOMEM. */
int cd_lr_merge(struct cd_lazy_ranges *s, const struct cd_lazy_ranges *add);
/* A copy of s (a fork's). -ENOMEM. */
int cd_lr_clone(struct cd_lazy_ranges *dst, const struct cd_lazy_ranges *s);
/* The range that holds addr, or NULL. */
const struct cd_lazy_range *cd_lr_at(const struct cd_lazy_ranges *s, uint64_t addr);
/* The range of lowest address that holds page file bytes of [off, off+len),
 * or NULL. */
const struct cd_lazy_range *cd_lr_of_off(struct cd_lazy_ranges *s, uint64_t off, uint64_t len);
void cd_lr_free(struct cd_lazy_ranges *s);
