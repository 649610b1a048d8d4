/* Loads the plugin directory (plugins.h). The daemon runs as root: a
 * plugin file, and the directory it is in, must be root's and writable by
 * no one else, or a user could have root run their code. */
#include "plugins/plugins.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/cleanup.h"
#include "shared/log.h"

const char *cd_plugins_default_dir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	/* the in-tree binary: its plugins are where meson built them */
	if (n > 0) {
		exe[n] = '\0';
		if (strcmp(exe, CD_BUILD_EXE) == 0)
			return CD_BUILD_PLUGINS_DIR;
	}
	return CD_INSTALL_PLUGINS_DIR;
}

static void host_log(enum cd_plugin_log_level level, const char *plugin, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void host_log(enum cd_plugin_log_level level, const char *plugin, const char *fmt, ...)
{
	static const enum log_level map[] = {LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN,
	                                     LOG_LVL_ERROR};
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg((unsigned)level < ARRAY_SIZE(map) ? map[level] : LOG_LVL_INFO, "plugin %s: %s",
	        plugin ? plugin : "?", msg);
}

static int host_thread_unsupported(void *host_ctx, pid_t tid, char *err, size_t errlen)
{
	snprintf(err, errlen, "thread %d: the engine holds no tree here", tid);
	return -EINVAL;
}

/* Root's, and writable by no one else (the sticky bit does not help: a
 * user could still add a file). */
static int check_owner(const struct stat *st, const char *path, cd_err *err)
{
	if (st->st_uid != 0)
		return cd_err_set(err, EPERM, "%s: owned by uid %u, not root: refused", path,
		                  (unsigned)st->st_uid);
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return cd_err_set(err, EPERM, "%s: writable by group or others: refused", path);
	return 0;
}

static bool valid_name(const char *name)
{
	if (!name || !name[0] || strlen(name) > 64)
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return false;
	return true;
}

static void slot_broken(struct cd_plugin_slot *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void slot_broken(struct cd_plugin_slot *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	va_end(ap);
	s->status = CD_PLUGIN_BROKEN;
}

/* The entry table of the file at s->path, checked; s->p stays NULL on
 * failure and the detail says why. */
static void open_plugin(struct cd_plugins *ps, struct cd_plugin_slot *s)
{
	struct stat st;
	cd_err err = {0};

	/* lstat: a link would let whoever owns its target decide */
	if (lstat(s->path, &st) < 0) {
		slot_broken(s, "%s", strerror(errno));
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		slot_broken(s, "not a regular file: refused");
		return;
	}
	if (check_owner(&st, s->path, &err) < 0) {
		slot_broken(s, "%s", err.msg);
		return;
	}
	s->handle = dlopen(s->path, RTLD_NOW | RTLD_LOCAL);
	if (!s->handle) {
		slot_broken(s, "dlopen: %s", dlerror());
		return;
	}
	cd_plugin_entry_fn entry = (cd_plugin_entry_fn)dlsym(s->handle, CD_PLUGIN_ENTRY);
	if (!entry) {
		slot_broken(s, "no %s symbol", CD_PLUGIN_ENTRY);
		return;
	}
	const struct cd_plugin *p = entry();
	if (!p) {
		slot_broken(s, "%s returned no table", CD_PLUGIN_ENTRY);
		return;
	}
	if (p->abi_version != CD_PLUGIN_ABI_VERSION) {
		slot_broken(s, "plugin ABI version %u, this cedana knows %u", p->abi_version,
		            CD_PLUGIN_ABI_VERSION);
		return;
	}
	if (!valid_name(p->name)) {
		slot_broken(s, "invalid plugin name (want [a-z0-9-]+)");
		return;
	}
	if (cd_plugins_find(ps, p->name)) {
		slot_broken(s, "plugin name %s already loaded from %s", p->name,
		            cd_plugins_find(ps, p->name)->path);
		return;
	}
	char *name = strdup(p->name);
	if (!name) {
		slot_broken(s, "out of memory");
		return;
	}
	free(s->name);
	s->name = name;
	s->p = p;
}

static void init_plugin(struct cd_plugins *ps, struct cd_plugin_slot *s)
{
	char msg[256] = "";

	if (s->p->init && s->p->init(&ps->host, msg, sizeof(msg)) < 0) {
		slot_broken(s, "init: %s", msg[0] ? msg : "failed");
		return;
	}
	s->inited = true;
	s->status = CD_PLUGIN_READY;
	s->detail[0] = '\0';
	if (s->p->status)
		s->status = s->p->status(s->detail, sizeof(s->detail));
	if (s->status > CD_PLUGIN_BROKEN)
		s->status = CD_PLUGIN_BROKEN;
	if (!s->detail[0])
		snprintf(s->detail, sizeof(s->detail), "%s", cd_plugin_status_name(s->status));
}

/* refused: why the file must not be opened (its directory is not
 * trusted), NULL to load it. */
static int add_slot(struct cd_plugins *ps, const char *path, const char *base, const char *refused,
                    cd_err *err)
{
	struct cd_plugin_slot *v = realloc(ps->v, (ps->n + 1) * sizeof(*v));

	if (!v)
		return cd_err_set(err, ENOMEM, "plugins: out of memory");
	ps->v = v;
	struct cd_plugin_slot *s = &v[ps->n];
	*s = (struct cd_plugin_slot){.status = CD_PLUGIN_BROKEN};
	s->path = strdup(path);
	/* the name until the plugin says its own: the file's, less lib and .so */
	if (strncmp(base, "lib", 3) == 0)
		base += 3;
	s->name = strndup(base, strcspn(base, "."));
	if (!s->path || !s->name) {
		free(s->path);
		free(s->name);
		return cd_err_set(err, ENOMEM, "plugins: out of memory");
	}
	ps->n++;
	/* dlopen runs the file's constructors: nothing is opened before the
	 * checks */
	if (refused)
		slot_broken(s, "%s", refused);
	else
		open_plugin(ps, s);
	if (s->p)
		init_plugin(ps, s);
	else
		log_debug("plugin %s: %s", s->path, s->detail);
	return 0;
}

static bool is_plugin_file(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of dir's entries, sorted (a load order that does not depend on
 * the filesystem). */
static int list_dir(const char *dir, char ***ret, size_t *ret_n, cd_err *err)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	char **v = NULL;
	size_t n = 0;
	struct dirent *de;

	if (!d)
		return cd_err_sys(err, errno, "plugins: %s", dir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char **nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv || !(nv[n] = strdup(de->d_name))) {
			v = nv ? nv : v;
			while (n)
				free(v[--n]);
			free(v);
			return cd_err_set(err, ENOMEM, "plugins: out of memory");
		}
		v = nv;
		n++;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_str);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* depth 0: the plugin directory; 1: a subdirectory of it. A directory that
 * is not root's only gets its files listed as refused. */
static int load_dir(struct cd_plugins *ps, const char *dir, int depth, cd_err *err)
{
	char **names = NULL, path[PATH_MAX];
	size_t n = 0;
	struct stat st;
	cd_err owner_err = {0};
	int r;

	if ((r = list_dir(dir, &names, &n, err)) < 0)
		return r;
	if (stat(dir, &st) < 0)
		cd_err_sys(&owner_err, errno, "%s", dir);
	bool trusted = owner_err.code == 0 && check_owner(&st, dir, &owner_err) == 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (depth == 0 && lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			cd_err sub = {0};
			if (load_dir(ps, path, 1, &sub) < 0 && sub.code == ENOMEM)
				r = cd_err_set(err, ENOMEM, "%s", sub.msg);
			continue;
		}
		if (!is_plugin_file(names[i]))
			continue;
		r = add_slot(ps, path, names[i], trusted ? NULL : owner_err.msg, err);
	}
	free_list(names, n);
	return r;
}

int cd_plugins_load(const char *dir, struct cd_plugins **ret, cd_err *err)
{
	struct cd_plugins *ps = calloc(1, sizeof(*ps));
	struct stat st;
	int r = 0;

	if (!ps)
		return cd_err_set(err, ENOMEM, "plugins: out of memory");
	ps->host = (struct cd_plugin_host){.abi_version = CD_PLUGIN_ABI_VERSION,
	                                   .log = host_log,
	                                   .thread_run = host_thread_unsupported,
	                                   .thread_stop = host_thread_unsupported};
	/* no directory: no plugins */
	if (dir && dir[0] && !(stat(dir, &st) < 0 && errno == ENOENT))
		r = load_dir(ps, dir, 0, err);
	if (r < 0) {
		cd_plugins_free(ps);
		return r;
	}
	*ret = ps;
	return 0;
}

void cd_plugins_free(struct cd_plugins *ps)
{
	if (!ps)
		return;
	for (size_t i = ps->n; i-- > 0;) {
		struct cd_plugin_slot *s = &ps->v[i];
		if (s->inited && s->p->fini)
			s->p->fini();
		if (s->handle)
			dlclose(s->handle);
		free(s->path);
		free(s->name);
	}
	free(ps->v);
	free(ps);
}

const struct cd_plugin_slot *cd_plugins_find(const struct cd_plugins *ps, const char *name)
{
	for (size_t i = 0; ps && i < ps->n; i++)
		if (ps->v[i].p && strcmp(ps->v[i].name, name) == 0)
			return &ps->v[i];
	return NULL;
}

bool cd_plugin_slot_ready(const struct cd_plugin_slot *s)
{
	return s && s->p && s->inited && s->status == CD_PLUGIN_READY;
}

const char *cd_plugin_status_name(enum cd_plugin_status st)
{
	switch (st) {
	case CD_PLUGIN_READY:
		return "ready";
	case CD_PLUGIN_UNAVAILABLE:
		return "unavailable";
	default:
		return "broken";
	}
}

bool cd_plugin_provides(const struct cd_plugin *p, const char *feature)
{
	for (size_t i = 0; p && p->features && p->features[i]; i++)
		if (strcmp(p->features[i], feature) == 0)
			return true;
	return false;
}

const char *cd_plugin_hook_name(enum cd_plugin_hook_id id)
{
	static const char *const names[] = {"pause_devices", "checkpoint_devices", "resume_devices",
	                                    "restore_prepare", "restore_devices"};

	return (unsigned)id < ARRAY_SIZE(names) ? names[id] : "?";
}

static cd_plugin_hook hook_of(const struct cd_plugin *p, enum cd_plugin_hook_id id)
{
	switch (id) {
	case CD_HOOK_PAUSE_DEVICES:
		return p->pause_devices;
	case CD_HOOK_CHECKPOINT_DEVICES:
		return p->checkpoint_devices;
	case CD_HOOK_RESUME_DEVICES:
		return p->resume_devices;
	case CD_HOOK_RESTORE_PREPARE:
		return p->restore_prepare;
	case CD_HOOK_RESTORE_DEVICES:
		return p->restore_devices;
	}
	return NULL;
}

int cd_plugin_call(struct cd_plugins *ps, const struct cd_plugin_slot *s, enum cd_plugin_hook_id id,
                   struct cd_plugin_ctx *ctx, cd_err *err)
{
	char msg[512] = "";

	if (!s->p || !s->inited)
		return CD_PLUGIN_SKIP;
	cd_plugin_hook hook = hook_of(s->p, id);
	if (!hook)
		return CD_PLUGIN_SKIP;
	ctx->size = sizeof(*ctx);
	ctx->host = &ps->host;
	ctx->err = msg;
	ctx->errlen = sizeof(msg);
	int r = hook(ctx);
	ctx->err = NULL;
	ctx->errlen = 0;
	if (r < 0)
		return cd_err_set(err, r < -4095 ? EIO : -r, "plugin %s: %s: %s", s->name,
		                  cd_plugin_hook_name(id), msg[0] ? msg : "failed");
	return r == CD_PLUGIN_OK ? CD_PLUGIN_OK : CD_PLUGIN_SKIP;
}

const char *cd_plugins_claim(struct cd_plugins *ps, struct cd_plugin_ctx *ctx,
                             const struct cd_plugin_object *obj)
{
	char msg[512] = "";

	for (size_t i = 0; ps && i < ps->n; i++) {
		const struct cd_plugin_slot *s = &ps->v[i];
		if (!cd_plugin_slot_ready(s))
			continue;
		cd_plugin_claim claim = obj->fd >= 0 ? s->p->claim_fd : s->p->claim_mapping;
		if (!claim)
			continue;
		ctx->size = sizeof(*ctx);
		ctx->host = &ps->host;
		ctx->err = msg;
		ctx->errlen = sizeof(msg);
		int r = claim(ctx, obj);
		ctx->err = NULL;
		ctx->errlen = 0;
		if (r == CD_PLUGIN_OK)
			return s->name;
	}
	return NULL;
}
