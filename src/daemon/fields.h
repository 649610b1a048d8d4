/* Typed fields of a request: its JSON body and its query string. A wrong
 * type must not pass as "not given" (a client that sent "attachable": "yes"
 * would get a job it cannot attach to, without a word), so every handler
 * reads its fields through these. A field that is absent, or null, leaves
 * *ret as it was; one of another type fails with EINVAL and a message that
 * names the field and the type expected, which the API answers with 400.
 * Unknown fields are ignored. */
#pragma once

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "shared/error.h"

int field_string(json_t *body, const char *name, const char **ret, cd_err *err);
int field_bool(json_t *body, const char *name, bool *ret, cd_err *err);
/* An integer in [lo, hi]. */
int field_int(json_t *body, const char *name, json_int_t lo, json_int_t hi, json_int_t *ret,
              cd_err *err);
/* As field_int, and absent is an error too. */
int field_int_required(json_t *body, const char *name, json_int_t lo, json_int_t hi,
                       json_int_t *ret, cd_err *err);
/* An array of strings as a NULL-terminated vector borrowing them (*ret is
 * malloc'd; NULL when absent). required: present and not empty. */
int field_strings(json_t *body, const char *name, bool required, char ***ret, cd_err *err);

/* A query parameter: the whole value a decimal integer in [lo, hi]. */
int query_int(struct MHD_Connection *conn, const char *name, long long lo, long long hi,
              long long *ret, cd_err *err);
/* A query parameter that is "0" or "1" (false or true); absent: *ret untouched. */
int query_bool(struct MHD_Connection *conn, const char *name, bool *ret, cd_err *err);
