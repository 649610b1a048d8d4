#define DAEMON_MHD_DL_IMPL
#include "daemon/mhd-dl.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "shared/dl.h"

static struct daemon_mhd_api mhd_api;
static char load_error[256];
static bool loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void)
{
	/* never closed: the daemon keeps it until it exits */
	void *lib = cd_dl_open("libmicrohttpd.so.12", load_error, sizeof(load_error));
	struct daemon_mhd_api a;
	bool ok = lib != NULL;

#define DAEMON_MHD_LOAD(f) ok = ok && cd_dl_sym(lib, #f, &a.f, load_error, sizeof(load_error));
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
