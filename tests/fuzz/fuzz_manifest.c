/* The manifest decoder: an image directory can come from anywhere (copied
 * in, unpacked from a user's archive), so its manifest is untrusted input.
 * What decodes must also encode and decode again, and the reader's own
 * parse of the runs (cd_image_parse_manifest) must mean what jansson's
 * lists mean. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const struct cd_image *img)
{
	struct cd_image again;
	cd_err err = {0};
	json_t *j = cd_image_to_json(img, &err);

	if (!j || cd_image_from_json(j, &again, &err) < 0)
		abort(); /* the encoder wrote what the decoder refuses */
	cd_image_free(&again);
	json_decref(j);
}

/* The image root decodes to, encoded again; NULL where it is refused. */
static char *decoded(json_t *root)
{
	struct cd_image img;
	cd_err err = {0};
	char *s = NULL;

	if (!root)
		return NULL;
	if (cd_image_from_json(root, &img, &err) == 0) {
		round_trip(&img);
		json_t *j = cd_image_to_json(&img, &err);
		s = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
	}
	cd_image_free(&img);
	json_decref(root);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *plain = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	json_t *quoted = NULL;
	cd_err err = {0};

	(void)cd_image_parse_manifest((const char *)data, size, &quoted, &err);
	char *a = decoded(plain), *b = decoded(quoted);
	/* the quoted lists are one level less deep: only jansson's depth
	 * limit can refuse the plain text and not the quoted one */
	if (a && (!b || strcmp(a, b)))
		abort();
	free(a);
	free(b);
	return 0;
}
