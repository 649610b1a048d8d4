#include "shared/config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/cleanup.h"
#include "shared/log.h"

typedef int (*config_check_fn)(const char *value);

struct config_field {
	const char *key; /* dotted JSON path */
	const char *env;
	const char *def;
	size_t offset;
	config_check_fn check;
	const char *allowed; /* shown in the error when check fails */
};

static int check_protocol(const char *v)
{
	return strcmp(v, "unix") == 0 || strcmp(v, "tcp") == 0;
}

static int check_compression(const char *v)
{
	static const char *const names[] = {"none", "tar", "gzip", "lz4", "zlib", "zstd"};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(v, names[i]) == 0)
			return 1;
	return 0;
}

/* 1..16, the engine's page data streams (CD_STREAMS_MAX) */
static int check_streams(const char *v)
{
	char *end;
	long n = strtol(v, &end, 10);

	return v[0] >= '0' && v[0] <= '9' && !*end && n >= 1 && n <= 16;
}

static int check_log_level(const char *v)
{
	return log_level_parse(v) >= 0;
}

static int check_nonempty(const char *v)
{
	return v[0] != '\0';
}

/* empty: the build's default directory */
static int check_any(const char *v)
{
	return 1;
}

#define FIELD(k, e, d, member, fn, allowed)                                                        \
	{                                                                                          \
		k, e, d, offsetof(struct cd_config, member), fn, allowed                           \
	}

static const struct config_field fields[] = {
    FIELD("address", "CEDANA_ADDRESS", CONFIG_DEFAULT_SOCK, address, check_nonempty, "a path"),
    FIELD("protocol", "CEDANA_PROTOCOL", "unix", protocol, check_protocol, "unix|tcp"),
    FIELD("log_level", "CEDANA_LOG_LEVEL", "info", log_level, check_log_level,
          "error|warn|info|debug|trace"),
    FIELD("db.path", "CEDANA_DB_PATH", "/tmp/cedana.db", db_path, check_nonempty, "a path"),
    FIELD("checkpoint.dir", "CEDANA_CHECKPOINT_DIR", "/tmp", checkpoint_dir, check_nonempty,
          "a path"),
    FIELD("checkpoint.compression", "CEDANA_CHECKPOINT_COMPRESSION", "none", checkpoint_compression,
          check_compression, "none|tar|gzip|lz4|zlib|zstd"),
    FIELD("checkpoint.streams", "CEDANA_CHECKPOINT_STREAMS", "1", checkpoint_streams, check_streams,
          "1..16"),
    FIELD("job.log_dir", "CEDANA_JOB_LOG_DIR", "/var/log", job_log_dir, check_nonempty, "a path"),
    FIELD("plugins.dir", "CEDANA_PLUGINS_DIR", "", plugins_dir, check_any,
          "a path, or empty for the default"),
};

static char **field_slot(struct cd_config *cfg, const struct config_field *f)
{
	return (char **)((char *)cfg + f->offset);
}

static const struct config_field *field_find(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (strcmp(fields[i].key, key) == 0)
			return &fields[i];
	return NULL;
}

static int replace_str(char **slot, const char *value, cd_err *err)
{
	char *copy = strdup(value);

	if (!copy)
		return cd_err_sys(err, ENOMEM, "config");
	free(*slot);
	*slot = copy;
	return 0;
}

int config_init_defaults(struct cd_config *cfg, cd_err *err)
{
	int r;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		r = replace_str(field_slot(cfg, &fields[i]), fields[i].def, err);
		if (r < 0)
			return r;
	}
	return replace_str(&cfg->config_dir, CONFIG_DEFAULT_DIR, err);
}

void config_free(struct cd_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		free(*field_slot(cfg, &fields[i]));
		*field_slot(cfg, &fields[i]) = NULL;
	}
	free(cfg->config_dir);
	cfg->config_dir = NULL;
}

int config_set(struct cd_config *cfg, const char *key, const char *value, cd_err *err)
{
	const struct config_field *f = field_find(key);

	if (!f)
		return cd_err_set(err, EINVAL, "unknown config key \"%s\"", key);
	if (!f->check(value))
		return cd_err_set(err, EINVAL, "invalid value \"%s\" for %s (expected %s)", value,
		                  key, f->allowed);
	return replace_str(field_slot(cfg, f), value, err);
}

/* Walks a JSON object, joining nested keys with dots. */
static int merge_object(struct cd_config *cfg, json_t *obj, const char *prefix, cd_err *err)
{
	const char *name;
	json_t *value;

	json_object_foreach(obj, name, value)
	{
		char key[256];
		int r;

		if (prefix)
			snprintf(key, sizeof(key), "%s.%s", prefix, name);
		else
			snprintf(key, sizeof(key), "%s", name);
		if (json_is_object(value))
			r = merge_object(cfg, value, key, err);
		else if (json_is_string(value))
			r = config_set(cfg, key, json_string_value(value), err);
		else if (!field_find(key))
			r = cd_err_set(err, EINVAL, "unknown config key \"%s\"", key);
		else
			r = cd_err_set(err, EINVAL, "config key \"%s\" must be a string", key);
		if (r < 0)
			return r;
	}
	return 0;
}

static int merge_root(struct cd_config *cfg, json_t *root, const char *origin, cd_err *err)
{
	int r;

	if (!json_is_object(root))
		return cd_err_set(err, EINVAL, "%s: expected a JSON object", origin);
	r = merge_object(cfg, root, NULL, err);
	if (r < 0)
		return cd_err_wrap(err, "%s", origin);
	return 0;
}

int config_merge_json(struct cd_config *cfg, const char *text, const char *origin, cd_err *err)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	int r;

	if (!root)
		return cd_err_set(err, EINVAL, "%s: malformed JSON: %s (line %d)", origin,
		                  jerr.text, jerr.line);
	r = merge_root(cfg, root, origin, err);
	json_decref(root);
	return r;
}

int config_merge_file(struct cd_config *cfg, const char *path, cd_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	json_error_t jerr;
	json_t *root;
	int r;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return cd_err_sys(err, errno, "config file %s", path);
	}
	root = json_loadfd(fd, 0, &jerr);
	if (!root)
		return cd_err_set(err, EINVAL, "config file %s: malformed JSON: %s (line %d)", path,
		                  jerr.text, jerr.line);
	r = merge_root(cfg, root, path, err);
	json_decref(root);
	if (r < 0)
		return cd_err_wrap(err, "config file");
	return 0;
}

static const char *env_lookup(char **envp, const char *name)
{
	size_t len = strlen(name);

	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}

int config_merge_env(struct cd_config *cfg, char **envp, cd_err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *v = env_lookup(envp, fields[i].env);
		int r;

		if (!v)
			continue;
		r = config_set(cfg, fields[i].key, v, err);
		if (r < 0)
			return cd_err_wrap(err, "environment %s", fields[i].env);
	}
	return 0;
}

int config_load(struct cd_config *cfg, const struct config_sources *src, cd_err *err)
{
	const char *dir = src->config_dir;
	char path[4096];
	int r;

	r = config_init_defaults(cfg, err);
	if (r < 0)
		return r;
	if (!dir)
		dir = env_lookup(src->envp, "CEDANA_CONFIG_DIR");
	if (dir) {
		r = replace_str(&cfg->config_dir, dir, err);
		if (r < 0)
			return r;
	}
	snprintf(path, sizeof(path), "%s/%s", cfg->config_dir, CONFIG_FILE_NAME);
	r = config_merge_file(cfg, path, err);
	if (r < 0)
		return r;
	r = config_merge_env(cfg, src->envp, err);
	if (r < 0)
		return r;
	if (src->json)
		return config_merge_json(cfg, src->json, "--config", err);
	return 0;
}

/* Sets obj[a][b]... = value for a dotted key. */
static int json_set_dotted(json_t *root, const char *key, const char *value)
{
	char buf[256];
	char *dot, *part = buf;
	json_t *node = root;

	snprintf(buf, sizeof(buf), "%s", key);
	while ((dot = strchr(part, '.'))) {
		json_t *child;

		*dot = '\0';
		child = json_object_get(node, part);
		if (!child) {
			child = json_object();
			if (!child || json_object_set_new(node, part, child) < 0)
				return -ENOMEM;
		}
		node = child;
		part = dot + 1;
	}
	return json_object_set_new(node, part, json_string(value)) < 0 ? -ENOMEM : 0;
}

char *config_to_json(const struct cd_config *cfg)
{
	json_t *root = json_object();
	char *text = NULL;

	if (!root)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (json_set_dotted(root, fields[i].key,
		                    *field_slot((struct cd_config *)cfg, &fields[i])) < 0)
			goto out;
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
out:
	json_decref(root);
	return text;
}

int config_write_defaults(const char *dir, cd_err *err)
{
	struct cd_config def;
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	char path[4096];
	size_t len;
	int r;

	r = config_init_defaults(&def, err);
	if (r < 0)
		return r;
	text = config_to_json(&def);
	config_free(&def);
	if (!text)
		return cd_err_sys(err, ENOMEM, "config");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return cd_err_sys(err, errno, "config dir %s", dir);
	snprintf(path, sizeof(path), "%s/%s", dir, CONFIG_FILE_NAME);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return cd_err_sys(err, errno, "write %s", path);
	len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1)
		return cd_err_sys(err, errno ? errno : EIO, "write %s", path);
	return 0;
}
