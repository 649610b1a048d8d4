/* Helpers shared by the modules: injected calls with error context, fault
 * injection for tests, and the guard the entry points run under. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

bool cd_fault(const char *point)
{
	const char *f = getenv("CEDANA_ENGINE_FAULT");

	return f && !strcmp(f, point);
}

int cd_call(cd_inject *inj, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
            uint64_t a4, uint64_t a5, long *ret, cd_err *err)
{
	const uint64_t args[6] = {a0, a1, a2, a3, a4, a5};

	return cd_inject_syscall(inj, nr, args, ret, err);
}

int cd_call_ok(cd_inject *inj, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
               uint64_t a3, uint64_t a4, uint64_t a5, long *ret, cd_err *err)
{
	long v;
	int r = cd_call(inj, nr, a0, a1, a2, a3, a4, a5, &v, err);

	if (r < 0)
		return r;
	if (v < 0 && v > -4096)
		return cd_err_sys(err, (int)-v, "%s", what);
	if (ret)
		*ret = v;
	return 0;
}

void cd_sigchld_default(struct sigaction *saved)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};

	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, saved);
}

void cd_sigchld_restore(const struct sigaction *saved)
{
	sigaction(SIGCHLD, saved, NULL);
}
