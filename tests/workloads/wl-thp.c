/* wl-thp [advised]: disables transparent huge pages for itself (PR_SET_THP_DISABLE; with
 * "advised", except where madvise asks for them: PR_THP_DISABLE_EXCEPT_ADVISED, Linux 6.18).
 * After the trigger PR_GET_THP_DISABLE must give what it gave before READY. */
#include <sys/prctl.h>

#include "wl.h"

#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif

int main(int argc, char **argv)
{
	bool advised = argc > 1 && !strcmp(argv[1], "advised");
	int want, got;

	wl_init("wl-thp");
	if (prctl(PR_SET_THP_DISABLE, 1, advised ? PR_THP_DISABLE_EXCEPT_ADVISED : 0, 0, 0) < 0)
		wl_fail("PR_SET_THP_DISABLE: %s", strerror(errno));
	want = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	if (want != (advised ? 1 | PR_THP_DISABLE_EXCEPT_ADVISED : 1))
		wl_fail("PR_GET_THP_DISABLE gives %d right after the set", want);
	wl_ready();
	wl_await_trigger();
	got = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	if (got != want)
		wl_fail("THP disable %d, want %d", got, want);
	wl_pass();
}
