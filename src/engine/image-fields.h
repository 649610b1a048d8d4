/* Internal to the image codec: table-driven encoding of scalar fields. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "engine/image.h"

struct cd_field {
	const char *name;
	size_t off;
	size_t size; /* 8, 4 (stored signed, so uint32 round-trips) or 1 */
};

#define CD_FIELD(type, member)                                                                     \
	{                                                                                          \
#member, offsetof(type, member), sizeof(((type *)0)->member)                       \
	}

int cd_fields_encode(json_t *obj, const struct cd_field *f, size_t n, const void *base);
int cd_fields_decode(json_t *obj, const struct cd_field *f, size_t n, void *base, cd_err *err);

json_t *cd_task_to_json(const struct cd_task *t);
int cd_task_from_json(json_t *obj, struct cd_task *t, cd_err *err);
void cd_task_free(struct cd_task *t);
