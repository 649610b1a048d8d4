/* A library loaded at run time by its soname, and its functions by name:
 * for libraries that only some paths need (the daemon's HTTP server,
 * archives), whose load at start would cost every command. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* dlopen(soname) now, never closed; NULL with dlerror() in errbuf. */
void *cd_dl_open(const char *soname, char *errbuf, size_t errlen);
/* The function name of lib, stored into *ret (a function pointer); false
 * with dlerror() in errbuf. */
bool cd_dl_sym(void *lib, const char *name, void *ret, char *errbuf, size_t errlen);
