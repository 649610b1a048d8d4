/* Internal to the image codec: table-driven encoding of scalar fields and
 * the checked getters every decoder uses (src/engine/image-json.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/image.h"

struct cd_field {
	const char *name;
	size_t off;
	size_t size;    /* 8, 4 (stored signed, so uint32 round-trips) or 1 (a bool) */
	int64_t lo, hi; /* accepted on decode */
};

/* The range of what the encoder writes for a field of this size. */
#define CD_FIELD_LO(size) ((size) == 8 ? INT64_MIN : (size) == 4 ? INT32_MIN : 0)
#define CD_FIELD_HI(size) ((size) == 8 ? INT64_MAX : (size) == 4 ? INT32_MAX : 1)

#define CD_FIELD_RANGE(type, member, lo, hi)                                                       \
	{                                                                                          \
#member, offsetof(type, member), sizeof(((type *)0)->member), lo, hi               \
	}
#define CD_FIELD(type, member)                                                                     \
	CD_FIELD_RANGE(type, member, CD_FIELD_LO(sizeof(((type *)0)->member)),                     \
	               CD_FIELD_HI(sizeof(((type *)0)->member)))

int cd_fields_encode(json_t *obj, const struct cd_field *f, size_t n, const void *base);
int cd_fields_decode(json_t *obj, const struct cd_field *f, size_t n, void *base, cd_err *err);

/* Checked getters: a missing key, a wrong type or a value out of [lo, hi]
 * is refused with an error naming the field; *ret is set only on success. */
int cd_json_int(json_t *j, const char *name, int64_t lo, int64_t hi, int64_t *ret, cd_err *err);
int cd_json_get_int(json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *ret,
                    cd_err *err);
int cd_json_get_bool(json_t *obj, const char *key, bool *ret, cd_err *err);
/* A string without NUL bytes of at most max bytes; valid while obj lives. */
int cd_json_get_str(json_t *obj, const char *key, size_t max, const char **ret, cd_err *err);
int cd_json_get_strdup(json_t *obj, const char *key, size_t max, char **ret, cd_err *err);
/* An array of min to max elements. */
int cd_json_array(json_t *a, const char *name, size_t min, size_t max, cd_err *err);
int cd_json_get_array(json_t *obj, const char *key, size_t min, size_t max, json_t **ret,
                      cd_err *err);
int cd_json_get_object(json_t *obj, const char *key, json_t **ret, cd_err *err);
/* Element i of array a (named key[i] in errors). */
int cd_json_elem_int(json_t *a, const char *key, size_t i, int64_t lo, int64_t hi, int64_t *ret,
                     cd_err *err);
/* An array of min to max 64-bit values into v; *ret_n (if not NULL) its length. */
int cd_json_u64s(json_t *a, const char *name, size_t min, size_t max, uint64_t *v, size_t *ret_n,
                 cd_err *err);
int cd_json_get_u64s(json_t *obj, const char *key, size_t min, size_t max, uint64_t *v,
                     size_t *ret_n, cd_err *err);
/* An array of exactly n ids (uids, gids). */
int cd_json_get_u32s(json_t *obj, const char *key, size_t n, uint32_t *v, cd_err *err);

/* Sorts v; true with *ret set when a value occurs twice. */
bool cd_ints_sorted_repeat(int64_t *v, size_t n, int64_t *ret);
/* Whether sorted v holds x. */
bool cd_ints_sorted_has(const int64_t *v, size_t n, int64_t x);

/* A mapping's runs as text, [[page,npages,src],...] with no space and each
 * number JSON's form of an integer from 0 to INT64_MAX: how the manifest's
 * writer puts them (image.c, runs_text). The reader cuts such lists out of
 * the manifest before jansson sees it and puts each back as a string of the
 * same text (image.c, cut_runs), and image-task.c reads the runs from that. */
struct cd_runs_text {
	const char *p, *end;
	int state; /* 0 before the list, 1 inside it, 2 past its end */
};
/* The next triple into v: 1; 0 past the list's end (p after it); -1 where
 * the text is not such a list. */
int cd_runs_text_next(struct cd_runs_text *t, int64_t v[3]);
/* What a reader may keep of a list instead of its runs (a lazy restore's
 * mapping, cd_vma.later). placed: every triple in range (npages at least
 * 1, a known src) and in page order without overlap; then end is the page
 * after the last run. srcs: a bit (1 << src) per src present. */
struct cd_runs_sum {
	size_t nruns, ndata; /* runs, data runs */
	uint64_t data_pages, end;
	uint32_t srcs;
	bool placed;
};
/* The length of the list at s (len bytes at most), 0 where none starts
 * there, summing it in the same pass. */
size_t cd_runs_text_scan(const char *s, size_t len, struct cd_runs_sum *sum);

json_t *cd_task_to_json(const struct cd_task *t);
/* The same, with each mapping's non-empty "runs" left as the string
 * CD_RUNS_LATER, for cd_image_write_manifest to write as text in their
 * place (in the order of the tasks and their mappings). */
#define CD_RUNS_LATER "\x01"
json_t *cd_task_to_json_runs_later(const struct cd_task *t);
/* The lists of runs the reader cut out of the manifest's text (image.c,
 * cut_runs), borrowed from it: a mapping's "runs" placeholder "\u0001K"
 * names the K-th, read in place (cd_runs_text). NULL: none were cut. */
struct cd_runs_cut {
	const char *at;
	size_t len;
	struct cd_runs_sum sum;
};
struct cd_runs_cuts {
	const struct cd_runs_cut *cut;
	size_t n;
	/* a mapping a lazy restore may leave to its server keeps its list as
	 * text (cd_vma.later) instead of its runs */
	bool later;
};
int cd_task_from_json(json_t *obj, const struct cd_runs_cuts *cuts, struct cd_task *t, cd_err *err);
void cd_task_free(struct cd_task *t);

/* The "plugins" list (image-plugins.c): encoded only when not empty;
 * decoded after the tasks, whose pids it names. */
json_t *cd_image_plugins_to_json(const struct cd_image *img);
int cd_image_plugins_from_json(json_t *root, struct cd_image *img, cd_err *err);
void cd_image_plugins_free(struct cd_image *img);
/* The entry for name, added (with no pids) when absent; NULL when out of
 * memory or full. */
struct cd_image_plugin *cd_image_plugin_get(struct cd_image *img, const char *name);
