/* The plugin ABI: what a plugin shared object exports and what the engine
 * offers it (docs/plugins.md).
 *
 * A plugin is a shared object in the plugin directory (`plugins.dir`) that
 * exports one function, CD_PLUGIN_ENTRY, returning its entry table. The
 * table is versioned: the loader refuses a plugin whose abi_version it does
 * not know, and reads only the fields that version has. Plugins are plain C
 * with no link-time dependency on cedana: everything they need from the
 * engine comes through struct cd_plugin_host.
 *
 * Hooks return CD_PLUGIN_OK, CD_PLUGIN_SKIP (the object is not the
 * plugin's: nothing was done) or a negative value, an error whose text the
 * hook wrote into ctx->err. A hook left NULL counts as CD_PLUGIN_SKIP. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CD_PLUGIN_ABI_VERSION 1
#define CD_PLUGIN_ENTRY       "cedana_plugin_entry"

#define CD_PLUGIN_OK   0
#define CD_PLUGIN_SKIP 1

enum cd_plugin_log_level {
	CD_PLUGIN_LOG_DEBUG = 0,
	CD_PLUGIN_LOG_INFO = 1,
	CD_PLUGIN_LOG_WARN = 2,
	CD_PLUGIN_LOG_ERROR = 3,
};

/* What the caller (the engine, in the daemon's worker or the CLI) offers a
 * plugin. Valid from init until fini. */
struct cd_plugin_host {
	unsigned abi_version; /* CD_PLUGIN_ABI_VERSION the host was built with */
	void (*log)(enum cd_plugin_log_level level, const char *plugin, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
	/* Lets one thread of a task the engine holds stopped (after the freeze
	 * at dump, before the release at restore) run with every signal
	 * blocked, and stops it again; thread_stop puts its signal mask back.
	 * For a driver whose own helper thread must run while the program's
	 * threads stay stopped. 0 on success, else -errno with err filled. */
	int (*thread_run)(void *host_ctx, pid_t tid, char *err, size_t errlen);
	int (*thread_stop)(void *host_ctx, pid_t tid, char *err, size_t errlen);
	void *host_ctx;
};

/* One hook call. New fields are only ever appended: size says how many the
 * caller filled. */
struct cd_plugin_ctx {
	size_t size; /* sizeof(struct cd_plugin_ctx) of the caller */
	const struct cd_plugin_host *host;
	pid_t pid;             /* the task (thread-group id), as the tree sees it */
	const char *image_dir; /* dump: being written; restore: being read */
	unsigned timeout_ms;   /* for waits the hook may do (lock a device …) */
	bool leave_running;    /* dump: the tree runs on after the dump */
	bool failed;           /* resume_devices: the dump failed (the device state
	                        * must go back where it was) */
	char *err;             /* a hook's error text, NUL-terminated */
	size_t errlen;
};

typedef int (*cd_plugin_hook)(const struct cd_plugin_ctx *ctx);

/* Per-object claims: the engine would refuse this fd or mapping; a plugin
 * that answers CD_PLUGIN_OK takes it over (its device hooks make it go away
 * before memory is dumped, or its restore hooks bring it back). */
struct cd_plugin_object {
	pid_t pid;
	int fd;              /* -1 for a mapping */
	uint64_t start, end; /* a mapping's range; 0 for an fd */
	const char *path;    /* the fd's link or the mapping's file, "" if none */
};
typedef int (*cd_plugin_claim)(const struct cd_plugin_ctx *ctx, const struct cd_plugin_object *obj);

/* A plugin's state on this machine, for `cedana check`, `plugin list` and
 * `features`. */
enum cd_plugin_status {
	CD_PLUGIN_READY = 0,       /* its features work here */
	CD_PLUGIN_UNAVAILABLE = 1, /* loaded, but not usable here ("no driver") */
	CD_PLUGIN_BROKEN = 2,      /* something it needs is there but fails */
};

struct cd_plugin {
	unsigned abi_version; /* CD_PLUGIN_ABI_VERSION */
	const char *name;     /* [a-z0-9-]+, unique among loaded plugins */
	const char *version;
	const char *description;
	/* Features it provides, NULL-terminated ("gpu", "cuda" …): the columns
	 * of `cedana features` are plugins, the rows features. */
	const char *const *features;

	/* Once after loading; a plugin whose init fails is listed as broken and
	 * none of its hooks run. May be NULL. */
	int (*init)(const struct cd_plugin_host *host, char *err, size_t errlen);
	void (*fini)(void); /* may be NULL */
	/* Fills detail ("driver 580.159.04", "no driver"). May be NULL: ready. */
	enum cd_plugin_status (*status)(char *detail, size_t len);

	/* Dump, per task of the tree, in this order: */
	cd_plugin_hook pause_devices;      /* before the freeze: quiesce (lock) */
	cd_plugin_hook checkpoint_devices; /* frozen, before memory is dumped */
	/* After a --leave-running dump, or after a failed dump, for every task
	 * whose pause_devices returned CD_PLUGIN_OK: the task's devices work
	 * again as before. */
	cd_plugin_hook resume_devices;

	/* Restore: */
	cd_plugin_hook restore_prepare; /* once, pid 0, before any task exists */
	/* Per task, once the tree is restored and before it is released. */
	cd_plugin_hook restore_devices;

	cd_plugin_claim claim_fd;
	cd_plugin_claim claim_mapping;
};

/* The one symbol a plugin exports. */
typedef const struct cd_plugin *(*cd_plugin_entry_fn)(void);
