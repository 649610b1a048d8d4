#define STORAGE_ARCHIVE_DL_IMPL
#include "storage/archive-dl.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct storage_archive_api storage_archive;

static char load_error[256];
static bool loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static bool load_sym(void *lib, const char *name, void *ret)
{
	void *f = dlsym(lib, name);

	if (!f)
		snprintf(load_error, sizeof(load_error), "%s", dlerror());
	memcpy(ret, &f, sizeof(f)); /* object to function pointer (POSIX dlsym) */
	return f != NULL;
}

static void load(void)
{
	/* never closed: the process keeps it until it exits */
	void *lib = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
	struct storage_archive_api a;
	bool ok = lib != NULL;

	if (!lib) {
		snprintf(load_error, sizeof(load_error), "%s", dlerror());
		return;
	}
#define STORAGE_ARCHIVE_LOAD(f) ok = ok && load_sym(lib, #f, &a.f);
	STORAGE_ARCHIVE_FUNCS(STORAGE_ARCHIVE_LOAD)
#undef STORAGE_ARCHIVE_LOAD
	if (!ok)
		return;
	storage_archive = a;
	loaded = true;
}

int storage_archive_load(cd_err *err)
{
	pthread_once(&load_once, load);
	if (!loaded)
		return cd_err_set(err, ENOSYS, "archives need libarchive: %s", load_error);
	return 0;
}
