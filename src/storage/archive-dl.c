#define STORAGE_ARCHIVE_DL_IMPL
#include "storage/archive-dl.h"

#include <stdbool.h>
#include <errno.h>
#include <pthread.h>

#include "shared/dl.h"

struct storage_archive_api storage_archive;

static char load_error[256];
static bool loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	/* never closed: the process keeps it until it exits */
	void *lib = cd_dl_open("libarchive.so.13", load_error, sizeof(load_error));
	struct storage_archive_api a;
	bool ok = lib != NULL;

#define STORAGE_ARCHIVE_LOAD(f) ok = ok && cd_dl_sym(lib, #f, &a.f, load_error, sizeof(load_error));
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
