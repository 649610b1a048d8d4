/* API request bodies: any local user (or, over tcp, anyone who reaches the
 * port) sends them. Routing needs a live microhttpd connection, so this
 * drives what runs on a body before a handler acts: the body parser and
 * the decoders callable without a server (run options; the compression a
 * dump asks for). Kept to the exported entry points, so the handlers can
 * change underneath. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/api.h"
#include "storage/storage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_run(json_t *body)
{
	struct job_run_opts o = {0};
	cd_err err = {0};

	api_run_opts_from_json(body, &o, &err);
	free(o.argv);
	free(o.envp);
}

static void decode_dump(json_t *body)
{
	const char *comp = json_string_value(json_object_get(body, "compression"));
	storage_compression c;
	cd_err err = {0};

	if (comp)
		storage_compression_parse(comp, &c, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes, so a read past the body is caught */
	char *copy = malloc(size ? size : 1);
	struct api_request req = {.body = copy, .body_len = size, .too_large = size > API_BODY_MAX};
	json_t *body = NULL;
	cd_err err = {0};

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (api_parse_body(&req, &body, &err) == 0) {
		decode_run(body);
		decode_dump(body);
		json_decref(body);
	}
	free(copy);
	return 0;
}
