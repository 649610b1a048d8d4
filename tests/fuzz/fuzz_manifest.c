/* The manifest decoder: an image directory can come from anywhere (copied
 * in, unpacked from a user's archive), so its manifest is untrusted input.
 * What decodes must also encode and decode again. */
#include <stdint.h>
#include <stdlib.h>

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct cd_image img;
	cd_err err = {0};

	if (!root)
		return 0;
	if (cd_image_from_json(root, &img, &err) == 0)
		round_trip(&img);
	cd_image_free(&img);
	json_decref(root);
	return 0;
}
