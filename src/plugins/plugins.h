/* The loaded plugin set: what the daemon's worker, the CLI and the engine
 * use (docs/plugins.md). The ABI a plugin sees is plugin.h.
 *
 * cd_plugins_load loads every plugin file of a directory; a plugin that
 * cannot be loaded, or whose init fails, is kept in the set as broken with
 * the reason in its detail (`cedana plugin list` shows it) and none of its
 * hooks run. Nothing a plugin does aborts the caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "plugins/plugin.h"
#include "shared/error.h"

/* One plugin file of the directory. */
struct cd_plugin_slot {
	char *path;
	char *name; /* the plugin's name, or the file's base name when not loaded */
	void *handle;
	const struct cd_plugin *p; /* NULL: not loaded (broken) */
	bool inited;               /* init succeeded: its hooks may run */
	enum cd_plugin_status status;
	char detail[256];
};

struct cd_plugins {
	struct cd_plugin_slot *v;
	size_t n;
	/* The host table every plugin got at init; the engine fills
	 * thread_run, thread_stop and host_ctx while it holds a tree. */
	struct cd_plugin_host host;
};

/* The directory a build looks in when plugins.dir is not set: the build's
 * own plugin directory for the in-tree binary, <libdir>/cedana/plugins for
 * an installed one (docs/plugins.md). */
const char *cd_plugins_default_dir(void);

/* Loads every `*.so` of dir, and of its subdirectories one level down (an
 * in-tree build has one per plugin). A missing dir is an empty set. Fails
 * only when out of memory or dir cannot be read. */
int cd_plugins_load(const char *dir, struct cd_plugins **ret, cd_err *err);
/* Calls every initialised plugin's fini, dlcloses, frees. NULL is fine. */
void cd_plugins_free(struct cd_plugins *ps);

/* The slot of the plugin called name, NULL when none. */
const struct cd_plugin_slot *cd_plugins_find(const struct cd_plugins *ps, const char *name);
/* Whether its hooks may run and it says it works here. */
bool cd_plugin_slot_ready(const struct cd_plugin_slot *s);
/* "ready", "unavailable", "broken". */
const char *cd_plugin_status_name(enum cd_plugin_status st);
/* Whether the plugin lists feature. */
bool cd_plugin_provides(const struct cd_plugin *p, const char *feature);

/* Hook calls. Each returns the hook's result (CD_PLUGIN_OK, _SKIP, or a
 * negative value with err filled "plugin NAME: HOOK: TEXT"); a NULL hook
 * is CD_PLUGIN_SKIP. */
enum cd_plugin_hook_id {
	CD_HOOK_PAUSE_DEVICES,
	CD_HOOK_CHECKPOINT_DEVICES,
	CD_HOOK_RESUME_DEVICES,
	CD_HOOK_RESTORE_PREPARE,
	CD_HOOK_RESTORE_DEVICES,
};
const char *cd_plugin_hook_name(enum cd_plugin_hook_id id);
/* Fills ctx's size, host, err fields and calls the hook of slot s. */
int cd_plugin_call(struct cd_plugins *ps, const struct cd_plugin_slot *s, enum cd_plugin_hook_id id,
                   struct cd_plugin_ctx *ctx, cd_err *err);
/* Asks every ready plugin's claim_fd (fd >= 0) or claim_mapping; the name
 * of the first that answers CD_PLUGIN_OK, NULL when none does. */
const char *cd_plugins_claim(struct cd_plugins *ps, struct cd_plugin_ctx *ctx,
                             const struct cd_plugin_object *obj);
