#define DAEMON_MHD_DL_IMPL
#include "daemon/mhd-dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static struct daemon_mhd_api mhd_api;
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
	/* never closed: the daemon keeps it until it exits */
	void *lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
	struct daemon_mhd_api a;
	bool ok = lib != NULL;

	if (!lib) {
		snprintf(load_error, sizeof(load_error), "%s", dlerror());
		return;
	}
#define DAEMON_MHD_LOAD(f) ok = ok && load_sym(lib, #f, &a.f);
	DAEMON_MHD_FUNCS(DAEMON_MHD_LOAD)
#undef DAEMON_MHD_LOAD
	if (!ok)
		return;
	mhd_api = a;
	loaded = true;
}

const struct daemon_mhd_api *daemon_mhd(void)
{
	pthread_once(&load_once, load);
	return &mhd_api;
}

int daemon_mhd_load(cd_err *err)
{
	daemon_mhd();
	if (!loaded)
		return cd_err_set(err, ENOSYS, "the daemon needs libmicrohttpd: %s", load_error);
	return 0;
}
