/* Configuration parsing: config.json and --config are written by users
 * (and CEDANA_* variables come from the environment). Input: a JSON text to
 * merge, or after a first line "set KEY VALUE" one config_set call. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void set_one(struct cd_config *cfg, char *line)
{
	char *key = line + 4, *value = strchr(key, ' ');
	cd_err err = {0};

	if (!value)
		return;
	*value++ = '\0';
	config_set(cfg, key, value, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cd_config cfg = {0};
	cd_err err = {0};
	char *text = malloc(size + 1), *out;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_init_defaults(&cfg, &err) == 0) {
		if (strncmp(text, "set ", 4) == 0)
			set_one(&cfg, text);
		else
			config_merge_json(&cfg, text, "fuzz", &err);
		out = config_to_json(&cfg);
		free(out);
	}
	config_free(&cfg);
	free(text);
	return 0;
}
