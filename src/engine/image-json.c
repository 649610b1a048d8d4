/* Checked getters for the manifest decoder. The manifest is input from
 * outside the daemon (an image can be copied in, unpacked from an archive,
 * edited), so every value is checked here, once, against the range of the C
 * field it lands in and of its meaning; each refusal names the field. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image-fields.h"
#include "shared/cleanup.h"

int cd_json_int(json_t *j, const char *name, int64_t lo, int64_t hi, int64_t *ret, cd_err *err)
{
	json_int_t v;

	if (!j)
		return cd_err_set(err, EINVAL, "missing field \"%s\"", name);
	if (!json_is_integer(j))
		return cd_err_set(err, EINVAL, "field \"%s\": not an integer", name);
	v = json_integer_value(j);
	if (v < lo || v > hi)
		return cd_err_set(err, ERANGE,
		                  "field \"%s\": %" PRId64 " out of range [%" PRId64 ", %" PRId64
		                  "]",
		                  name, (int64_t)v, lo, hi);
	*ret = v;
	return 0;
}

int cd_json_get_int(json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *ret, cd_err *err)
{
	return cd_json_int(json_object_get(obj, key), key, lo, hi, ret, err);
}

int cd_json_get_bool(json_t *obj, const char *key, bool *ret, cd_err *err)
{
	json_t *j = json_object_get(obj, key);

	if (!json_is_boolean(j))
		return cd_err_set(err, EINVAL, "field \"%s\": missing or not a boolean", key);
	*ret = json_is_true(j);
	return 0;
}

int cd_json_get_str(json_t *obj, const char *key, size_t max, const char **ret, cd_err *err)
{
	json_t *j = json_object_get(obj, key);
	const char *s = json_string_value(j);

	if (!s)
		return cd_err_set(err, EINVAL, "field \"%s\": missing or not a string", key);
	/* JSON allows "\u0000"; C strings would silently end there */
	if (strlen(s) != json_string_length(j))
		return cd_err_set(err, EINVAL, "field \"%s\": contains a NUL byte", key);
	if (json_string_length(j) > max)
		return cd_err_set(err, E2BIG, "field \"%s\": longer than %zu bytes", key, max);
	*ret = s;
	return 0;
}

int cd_json_get_strdup(json_t *obj, const char *key, size_t max, char **ret, cd_err *err)
{
	const char *s = NULL;
	int r = cd_json_get_str(obj, key, max, &s, err);

	if (r < 0)
		return r;
	*ret = strdup(s);
	return *ret ? 0 : cd_err_set(err, ENOMEM, "out of memory");
}

int cd_json_array(json_t *a, const char *name, size_t min, size_t max, cd_err *err)
{
	if (!json_is_array(a))
		return cd_err_set(err, EINVAL, "field \"%s\": missing or not an array", name);
	if (json_array_size(a) >= min && json_array_size(a) <= max)
		return 0;
	if (min == max)
		return cd_err_set(err, EINVAL, "field \"%s\": %zu elements, expected %zu", name,
		                  json_array_size(a), min);
	return cd_err_set(err, E2BIG, "field \"%s\": %zu elements, expected %zu to %zu", name,
	                  json_array_size(a), min, max);
}

int cd_json_get_array(json_t *obj, const char *key, size_t min, size_t max, json_t **ret,
                      cd_err *err)
{
	json_t *a = json_object_get(obj, key);
	int r = cd_json_array(a, key, min, max, err);

	if (r == 0)
		*ret = a;
	return r;
}

int cd_json_get_object(json_t *obj, const char *key, json_t **ret, cd_err *err)
{
	json_t *o = json_object_get(obj, key);

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "field \"%s\": missing or not an object", key);
	*ret = o;
	return 0;
}

int cd_json_elem_int(json_t *a, const char *key, size_t i, int64_t lo, int64_t hi, int64_t *ret,
                     cd_err *err)
{
	char name[64];

	snprintf(name, sizeof(name), "%s[%zu]", key, i);
	return cd_json_int(json_array_get(a, i), name, lo, hi, ret, err);
}

int cd_json_u64s(json_t *a, const char *name, size_t min, size_t max, uint64_t *v, size_t *ret_n,
                 cd_err *err)
{
	int64_t x = 0;
	int r = cd_json_array(a, name, min, max, err);

	for (size_t i = 0; r == 0 && i < json_array_size(a); i++) {
		/* 64-bit values travel as their two's-complement signed value */
		r = cd_json_elem_int(a, name, i, INT64_MIN, INT64_MAX, &x, err);
		v[i] = (uint64_t)x;
	}
	if (r == 0 && ret_n)
		*ret_n = json_array_size(a);
	return r;
}

int cd_json_get_u64s(json_t *obj, const char *key, size_t min, size_t max, uint64_t *v,
                     size_t *ret_n, cd_err *err)
{
	return cd_json_u64s(json_object_get(obj, key), key, min, max, v, ret_n, err);
}

int cd_json_get_u32s(json_t *obj, const char *key, size_t n, uint32_t *v, cd_err *err)
{
	json_t *a = NULL;
	int64_t x = 0;
	int r = cd_json_get_array(obj, key, n, n, &a, err);

	/* (uid_t)-1 means "leave unchanged" to set*id(): never a real id */
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = cd_json_elem_int(a, key, i, 0, UINT32_MAX - 1, &x, err);
		v[i] = (uint32_t)x;
	}
	return r;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int cd_json_hex_decode(json_t *obj, const char *key, size_t max, uint8_t **ret, size_t *ret_len,
                       cd_err *err)
{
	const char *s = NULL;
	size_t n;
	int r = cd_json_get_str(obj, key, 2 * max, &s, err);

	if (r < 0)
		return r;
	n = strlen(s);
	if (n % 2)
		return cd_err_set(err, EINVAL, "field \"%s\": odd hex length", key);
	_cleanup_free_ uint8_t *buf = malloc(n / 2 + 1);
	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return cd_err_set(err, EINVAL, "field \"%s\": bad hex", key);
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	*ret = TAKE_PTR(buf);
	*ret_len = n / 2;
	return 0;
}

int cd_fields_decode(json_t *obj, const struct cd_field *f, size_t n, void *base, cd_err *err)
{
	for (size_t i = 0; i < n; i++) {
		char *p = (char *)base + f[i].off;
		int64_t v = 0;
		int r = cd_json_get_int(obj, f[i].name, f[i].lo, f[i].hi, &v, err);
		if (r < 0)
			return r;
		switch (f[i].size) {
		case 8:
			*(int64_t *)p = v;
			break;
		case 4:
			*(int32_t *)p = (int32_t)v;
			break;
		default:
			*(uint8_t *)p = (uint8_t)v;
		}
	}
	return 0;
}

static int cmp_int(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

bool cd_ints_sorted_repeat(int64_t *v, size_t n, int64_t *ret)
{
	/* sorted, so that a manifest of a million entries costs n log n, not n^2 */
	qsort(v, n, sizeof(*v), cmp_int);
	for (size_t i = 1; i < n; i++)
		if (v[i] == v[i - 1]) {
			*ret = v[i];
			return true;
		}
	return false;
}

bool cd_ints_sorted_has(const int64_t *v, size_t n, int64_t x)
{
	return bsearch(&x, v, n, sizeof(*v), cmp_int) != NULL;
}

/* One number of a runs text at p: digits, no leading zero (JSON), at most
 * INT64_MAX; the byte after it, or NULL. */
static inline const char *runs_text_num(const char *p, const char *end, int64_t *ret)
{
	const char *s = p;
	uint64_t x = 0;

	for (; s < end && (unsigned)(*s - '0') < 10; s++)
		x = x * 10 + (uint64_t)(*s - '0');
	/* none; a leading zero; more than 19 digits (may have wrapped) or 19
	 * past INT64_MAX (a 19-digit number is below 10^19 < 2^64: no wrap) */
	size_t n = (size_t)(s - p);
	if (!n || (n > 1 && *p == '0') || n > 19 || x > (uint64_t)INT64_MAX)
		return NULL;
	*ret = (int64_t)x;
	return s;
}

/* One [page,npages,src] at p into v: the byte after it, or NULL. The
 * manifest's runs are megabytes of these: inline, no state between. */
static inline const char *runs_text_triple(const char *p, const char *end, int64_t v[3])
{
	if (p == end || *p++ != '[')
		return NULL;
	for (int k = 0; k < 3; k++) {
		if (!(p = runs_text_num(p, end, &v[k])) || p == end || *p++ != (k < 2 ? ',' : ']'))
			return NULL;
	}
	return p;
}

int cd_runs_text_next(struct cd_runs_text *t, int64_t v[3])
{
	const char *p = t->p;

	if (t->state == 2)
		return 0;
	if (t->state == 0) {
		if (p == t->end || *p != '[')
			return -1;
		t->p = ++p;
		t->state = 1;
		if (p < t->end && *p == ']') {
			t->p = p + 1;
			t->state = 2;
			return 0;
		}
	} else {
		if (p < t->end && *p == ']') {
			t->p = p + 1;
			t->state = 2;
			return 0;
		}
		if (p == t->end || *p++ != ',')
			return -1;
	}
	if (!(p = runs_text_triple(p, t->end, v)))
		return -1;
	t->p = p;
	return 1;
}

static void runs_sum_add(struct cd_runs_sum *sum, const int64_t v[3])
{
	/* the text's numbers are 0..INT64_MAX: page + npages cannot wrap */
	sum->placed &= v[1] >= 1 && v[2] <= CD_RUN_PREV && (uint64_t)v[0] >= sum->end;
	if (!sum->placed)
		return;
	sum->end = (uint64_t)(v[0] + v[1]);
	sum->srcs |= 1u << v[2];
	sum->nruns++;
	if (v[2] == CD_RUN_DATA) {
		sum->ndata++;
		sum->data_pages += (uint64_t)v[1];
	}
}

/* The grammar of cd_runs_text_next, in one loop: the cut of a 4 GiB
 * process's manifest scans 5.7 MB of it before the tree runs. */
size_t cd_runs_text_scan(const char *s, size_t len, struct cd_runs_sum *sum)
{
	const char *p = s, *end = s + len;
	int64_t v[3];

	*sum = (struct cd_runs_sum){.placed = true};
	if (p == end || *p++ != '[')
		return 0;
	if (p < end && *p == ']')
		return 2;
	for (;;) {
		if (!(p = runs_text_triple(p, end, v)))
			return 0;
		runs_sum_add(sum, v);
		if (p == end)
			return 0;
		if (*p == ']')
			return (size_t)(p + 1 - s);
		if (*p++ != ',')
			return 0;
	}
}
