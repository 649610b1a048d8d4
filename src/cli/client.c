#include "cli/client.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
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

/* libcurl is loaded on the first call, not linked: with the libraries it
 * pulls in (TLS, Kerberos, LDAP, IDN: about 30) it made every start of
 * the binary 30-80 ms slower, restore --no-server and the daemon's own
 * start included, which never talk to a daemon over HTTP. */
struct curl_api {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_perform)(CURL *);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	void (*easy_cleanup)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
};

static struct curl_api curl_api;
static char curl_load_error[256];
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static bool curl_sym(void *lib, const char *name, void *ret)
{
	void *f = dlsym(lib, name);

	if (!f)
		snprintf(curl_load_error, sizeof(curl_load_error), "%s", dlerror());
	memcpy(ret, &f, sizeof(f)); /* object to function pointer (POSIX dlsym) */
	return f != NULL;
}

static void curl_load(void)
{
	/* never closed: the process keeps it until it exits */
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	struct curl_api a;

	if (!lib) {
		snprintf(curl_load_error, sizeof(curl_load_error), "%s", dlerror());
		return;
	}
	if (curl_sym(lib, "curl_easy_init", &a.easy_init) &&
	    curl_sym(lib, "curl_easy_setopt", &a.easy_setopt) &&
	    curl_sym(lib, "curl_easy_perform", &a.easy_perform) &&
	    curl_sym(lib, "curl_easy_getinfo", &a.easy_getinfo) &&
	    curl_sym(lib, "curl_easy_cleanup", &a.easy_cleanup) &&
	    curl_sym(lib, "curl_easy_strerror", &a.easy_strerror) &&
	    curl_sym(lib, "curl_slist_append", &a.slist_append) &&
	    curl_sym(lib, "curl_slist_free_all", &a.slist_free_all))
		curl_api = a;
}

static const struct curl_api *curl_get(cd_err *err)
{
	pthread_once(&curl_once, curl_load);
	if (!curl_api.easy_init) {
		cd_err_set(err, ENOSYS, "talking to the daemon needs libcurl: %s", curl_load_error);
		return NULL;
	}
	return &curl_api;
}

/* RFC 3986 unreserved characters stay; every other byte is %XX. */
char *client_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			*o++ = (char)*p;
			continue;
		}
		*o++ = '%';
		*o++ = hex[*p >> 4];
		*o++ = hex[*p & 15];
	}
	*o = '\0';
	return out;
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

static int perform(const struct curl_api *c, CURL *curl, const struct cd_config *cfg,
                   long *ret_status, cd_err *err)
{
	CURLcode rc = c->easy_perform(curl);

	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		return unreachable(cfg, err);
	if (rc != CURLE_OK)
		return cd_err_set(err, EIO, "daemon at %s: %s", cfg->address, c->easy_strerror(rc));
	c->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, ret_status);
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
	const struct curl_api *c = curl_get(err);
	CURL *curl;
	int r;

	if (!c)
		return -err->code;
	curl = c->easy_init();
	if (!curl)
		return cd_err_set(err, ENOMEM, "curl_easy_init failed");
	if (strcmp(cfg->protocol, "unix") == 0) {
		c->easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, cfg->address);
		snprintf(url, sizeof(url), "http://localhost%s", path);
	} else {
		snprintf(url, sizeof(url), "http://%s%s", cfg->address, path);
	}
	c->easy_setopt(curl, CURLOPT_URL, url);
	c->easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	c->easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	c->easy_setopt(curl, CURLOPT_WRITEDATA, &out);
	c->easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	headers = c->slist_append(headers, "Content-Type: application/json");
	headers = c->slist_append(headers, "Expect:");
	c->easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		c->easy_setopt(curl, CURLOPT_POSTFIELDS, text ? text : "{}");
	}
	r = perform(c, curl, cfg, &status, err);
	c->slist_free_all(headers);
	c->easy_cleanup(curl);
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
