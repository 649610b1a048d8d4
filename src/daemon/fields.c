#include "daemon/fields.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "daemon/mhd-dl.h"

/* The field, or NULL when absent or null. */
static json_t *get(json_t *body, const char *name)
{
	json_t *v = json_object_get(body, name);

	return json_is_null(v) ? NULL : v;
}

int field_string(json_t *body, const char *name, const char **ret, cd_err *err)
{
	json_t *v = get(body, name);

	if (!v)
		return 0;
	if (!json_is_string(v))
		return cd_err_set(err, EINVAL, "\"%s\" must be a string", name);
	*ret = json_string_value(v);
	return 0;
}

int field_bool(json_t *body, const char *name, bool *ret, cd_err *err)
{
	json_t *v = get(body, name);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return cd_err_set(err, EINVAL, "\"%s\" must be a boolean (true or false)", name);
	*ret = json_is_true(v);
	return 0;
}

static int int_range_error(const char *name, json_int_t lo, json_int_t hi, cd_err *err)
{
	return cd_err_set(err, EINVAL, "\"%s\" must be an integer in [%lld, %lld]", name,
	                  (long long)lo, (long long)hi);
}

int field_int(json_t *body, const char *name, json_int_t lo, json_int_t hi, json_int_t *ret,
              cd_err *err)
{
	json_t *v = get(body, name);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return int_range_error(name, lo, hi, err);
	*ret = json_integer_value(v);
	return 0;
}

int field_int_required(json_t *body, const char *name, json_int_t lo, json_int_t hi,
                       json_int_t *ret, cd_err *err)
{
	if (!get(body, name))
		return int_range_error(name, lo, hi, err);
	return field_int(body, name, lo, hi, ret, err);
}

int field_strings(json_t *body, const char *name, bool required, char ***ret, cd_err *err)
{
	json_t *arr = get(body, name), *s;
	char **v;
	size_t i;

	*ret = NULL;
	if (!arr && !required)
		return 0;
	if (!json_is_array(arr) || (required && json_array_size(arr) == 0))
		return cd_err_set(err, EINVAL, "\"%s\" must be %s array of strings", name,
		                  required ? "a non-empty" : "an");
	v = calloc(json_array_size(arr) + 1, sizeof(*v));
	if (!v)
		return cd_err_sys(err, ENOMEM, "%s", name);
	json_array_foreach(arr, i, s)
	{
		if (!json_is_string(s)) {
			free(v);
			return cd_err_set(err, EINVAL, "\"%s\" must hold only strings", name);
		}
		v[i] = (char *)json_string_value(s);
	}
	*ret = v;
	return 0;
}

int query_int(struct MHD_Connection *conn, const char *name, long long lo, long long hi,
              long long *ret, cd_err *err)
{
	const char *s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
	char *end;
	long long n;

	if (!s)
		return 0;
	errno = 0;
	n = strtoll(s, &end, 10);
	/* the whole value: "12abc", " 12", "+1", "" and overflow are refused */
	if ((!isdigit((unsigned char)*s) && *s != '-') || *end || errno || n < lo || n > hi)
		return cd_err_set(err, EINVAL,
		                  "query parameter \"%s\" must be an integer in [%lld, %lld]", name,
		                  lo, hi);
	*ret = n;
	return 0;
}

int query_bool(struct MHD_Connection *conn, const char *name, bool *ret, cd_err *err)
{
	long long n = *ret;

	if (query_int(conn, name, 0, 1, &n, err) < 0)
		return cd_err_set(err, EINVAL, "query parameter \"%s\" must be 0 or 1", name);
	*ret = n != 0;
	return 0;
}
