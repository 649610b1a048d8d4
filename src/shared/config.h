/* Configuration shared by the CLI, the daemon and the engine. Sources are
 * merged in this order, each overriding the one before: built-in defaults,
 * CONFIG_DIR/config.json, CEDANA_* environment variables, the one-time
 * --config JSON, and finally command-line flags (applied by the caller). */
#pragma once

#include <stdbool.h>

#include "shared/error.h"

#define CONFIG_DEFAULT_DIR  "/etc/cedana"
#define CONFIG_FILE_NAME    "config.json"
#define CONFIG_DEFAULT_SOCK "/run/cedana.sock"

struct cd_config {
	char *address;  /* unix socket path, or host:port for tcp */
	char *protocol; /* "unix" or "tcp" */
	char *log_level;
	char *db_path;
	char *checkpoint_dir;
	char *checkpoint_compression;
	char *checkpoint_streams; /* "1".."16": page data streams (docs/engine.md) */
	char *job_log_dir;        /* where cedana-output-JID.log files go */
	char *plugins_dir;        /* "": the build's default (plugins/plugins.h) */
	char *config_dir;         /* where config.json was looked up; not a JSON key */
};

/* Where the sources come from; NULL members are absent. envp is an
 * environ-style array (tests pass their own). */
struct config_sources {
	const char *config_dir; /* --config-dir */
	const char *json;       /* --config */
	char **envp;
};

int config_init_defaults(struct cd_config *cfg, cd_err *err);
void config_free(struct cd_config *cfg);

/* Sets one key by its dotted JSON name ("db.path"), validating the value. */
int config_set(struct cd_config *cfg, const char *key, const char *value, cd_err *err);

/* Merges a JSON object text into cfg; unknown keys and non-string values are errors. */
int config_merge_json(struct cd_config *cfg, const char *text, const char *origin, cd_err *err);

/* Merges a config file; a missing file is not an error, an unreadable or
 * malformed one is. */
int config_merge_file(struct cd_config *cfg, const char *path, cd_err *err);

/* Applies CEDANA_* variables found in envp. */
int config_merge_env(struct cd_config *cfg, char **envp, cd_err *err);

/* Defaults, file, environment and --config, in that order. */
int config_load(struct cd_config *cfg, const struct config_sources *src, cd_err *err);

/* The configuration as JSON text (malloc'd), as --init-config writes it. */
char *config_to_json(const struct cd_config *cfg);

/* Writes the defaults to DIR/config.json, creating DIR. */
int config_write_defaults(const char *dir, cd_err *err);
