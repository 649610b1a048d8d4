#include "cli/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "shared/cleanup.h"

struct buf {
	char *data;
	size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;
	char *grown = realloc(b->data, b->len + n + 1);

	if (!grown)
		return 0;
	memcpy(grown + b->len, ptr, n);
	b->len += n;
	grown[b->len] = '\0';
	b->data = grown;
	return n;
}

char *client_escape(const char *s)
{
	char *esc = curl_easy_escape(NULL, s, 0);
	char *copy = esc ? strdup(esc) : NULL;

	curl_free(esc);
	return copy;
}

/* The hint names the address when it is not the default, so that copying
 * it starts a daemon where this CLI looks. */
static int unreachable(const struct cd_config *cfg, cd_err *err)
{
	bool tcp = strcmp(cfg->protocol, "tcp") == 0;
	bool dflt = !tcp && strcmp(cfg->address, CONFIG_DEFAULT_SOCK) == 0;

	return cd_err_set(err, ECONNREFUSED,
	                  "cannot reach the daemon at %s: is it running? start it with: sudo "
	                  "cedana daemon start%s%s%s",
	                  cfg->address, tcp ? " --protocol tcp" : "", dflt ? "" : " --address ",
	                  dflt ? "" : cfg->address);
}

static int status_errno(long status)
{
	switch (status) {
	case 400:
		return EINVAL;
	case 403:
		return EPERM;
	case 404:
		return ENOENT;
	case 409:
		return EEXIST;
	default:
		return EIO;
	}
}

static int reply_error(long status, json_t *reply, cd_err *err)
{
	const char *msg = json_string_value(json_object_get(reply, "error"));

	if (msg)
		return cd_err_set(err, status_errno(status), "%s", msg);
	return cd_err_set(err, status_errno(status), "the daemon answered HTTP %ld", status);
}

static int perform(CURL *curl, const struct cd_config *cfg, long *ret_status, cd_err *err)
{
	CURLcode rc = curl_easy_perform(curl);

	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		return unreachable(cfg, err);
	if (rc != CURLE_OK)
		return cd_err_set(err, EIO, "daemon at %s: %s", cfg->address,
		                  curl_easy_strerror(rc));
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, ret_status);
	return 0;
}

int client_call(const struct cd_config *cfg, const char *method, const char *path, json_t *body,
                json_t **ret, cd_err *err)
{
	struct curl_slist *headers = NULL;
	_cleanup_free_ char *text = NULL;
	struct buf out = {0};
	json_t *reply = NULL;
	char url[4096];
	long status = 0;
	CURL *curl;
	int r;

	curl = curl_easy_init();
	if (!curl)
		return cd_err_set(err, ENOMEM, "curl_easy_init failed");
	if (strcmp(cfg->protocol, "unix") == 0) {
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, cfg->address);
		snprintf(url, sizeof(url), "http://localhost%s", path);
	} else {
		snprintf(url, sizeof(url), "http://%s%s", cfg->address, path);
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Expect:");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text ? text : "{}");
	}
	r = perform(curl, cfg, &status, err);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	if (r < 0)
		goto out;
	if (out.len)
		reply = json_loadb(out.data, out.len, 0, NULL);
	if (status < 200 || status >= 300)
		r = reply_error(status, reply, err);
	else if (out.len && !reply)
		r = cd_err_set(err, EPROTO, "the daemon sent malformed JSON");
	if (r == 0 && ret)
		*ret = TAKE_PTR(reply);
out:
	json_decref(reply);
	free(out.data);
	return r;
}
