/* The manifest decoder: an image directory can come from anywhere (copied
 * in, unpacked from a user's archive), so its manifest is untrusted input.
 * What decodes must also encode and decode again, and the reader's own
 * read of the runs (cd_image_decode_manifest) must mean what jansson's
 * lists mean. */
#include <stdbool.h>
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

/* img encoded again (and checked to decode again); NULL where ok is false. */
static char *encoded(struct cd_image *img, bool ok)
{
	cd_err err = {0};
	char *s = NULL;

	if (ok) {
		round_trip(img);
		json_t *j = cd_image_to_json(img, &err);
		s = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
	}
	cd_image_free(img);
	return s;
}

/* The lazy restore's read (cd_image_decode_manifest_lazy): a mapping may
 * keep its runs as text, checked by their sums; once read from there they
 * must be the plain read's, and it must refuse what that refuses. */
static bool lazy_decoded(const uint8_t *data, size_t size, struct cd_image *img)
{
	cd_err err = {0};

	if (cd_image_decode_manifest_lazy((const char *)data, size, img, &err) < 0)
		return false;
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t k = 0; k < img->tasks[i].nvmas; k++)
			if (cd_vma_runs_load(&img->tasks[i].vmas[k], &err) < 0)
				abort(); /* a text its sums passed is refused */
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *plain = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct cd_image img = {0}, cut = {0};
	cd_err err = {0};
	char *a = encoded(&img, plain && cd_image_from_json(plain, &img, &err) == 0);
	char *b =
	    encoded(&cut, cd_image_decode_manifest((const char *)data, size, &cut, &err) == 0);
	struct cd_image later = {0};
	char *c = encoded(&later, lazy_decoded(data, size, &later));

	json_decref(plain);
	/* the cut lists are one level less deep for jansson: only its depth
	 * limit can refuse the plain text and not the cut one */
	if (a && (!b || strcmp(a, b)))
		abort();
	if (!b != !c || (b && strcmp(b, c)))
		abort();
	free(a);
	free(b);
	free(c);
	return 0;
}
