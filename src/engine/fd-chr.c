/* Character devices reopened by path (CD_FD_CHR): the ones that are the
 * same device wherever the tree comes back (null, zero, random) and
 * terminals, which --shell-job hands to the restore caller's. */
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

static bool supported(const char *path)
{
	static const char *const ok[] = {"/dev/null",   "/dev/zero", "/dev/urandom",
	                                 "/dev/random", "/dev/tty",  "/dev/console"};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (!strcmp(path, ok[i]))
			return true;
	return !strncmp(path, "/dev/pts/", 9) || !strncmp(path, "/dev/tty", 8);
}

bool cd_fd_is_terminal(const struct cd_fd *d)
{
	return d->kind == CD_FD_CHR && d->path &&
	       (!strncmp(d->path, "/dev/pts/", 9) || !strncmp(d->path, "/dev/tty", 8) ||
	        !strcmp(d->path, "/dev/console"));
}

static bool chr_claims(const struct cd_fd_dump *x, const struct cd_fd *d)
{
	return S_ISCHR(x->st->st_mode) && supported(x->link);
}

static int chr_open(struct cd_fd_open *o, const struct cd_fd *d, cd_err *err)
{
	return cd_fd_reopen(d, err);
}

const struct cd_fd_ops cd_fd_ops_chr = {.kind = CD_FD_CHR,
                                        .name = "character device",
                                        .has_path = true,
                                        .has_owner = true,
                                        .claims = chr_claims,
                                        .open = chr_open};
