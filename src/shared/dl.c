#include "shared/dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void *cd_dl_open(const char *soname, char *errbuf, size_t errlen)
{
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!lib)
		snprintf(errbuf, errlen, "%s", dlerror());
	return lib;
}

bool cd_dl_sym(void *lib, const char *name, void *ret, char *errbuf, size_t errlen)
{
	void *f = dlsym(lib, name);

	if (!f)
		snprintf(errbuf, errlen, "%s", dlerror());
	memcpy(ret, &f, sizeof(f)); /* object to function pointer (POSIX dlsym) */
	return f != NULL;
}
