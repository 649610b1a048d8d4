/* The /proc parsers, checked against this process's own state. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/proc.h"

static void test_stat_with_odd_comm(void **state)
{
	struct cd_proc_stat st;
	cd_err err = {0};

	prctl(PR_SET_NAME, "we) ir (d", 0, 0, 0);
	assert_int_equal(cd_proc_stat(getpid(), &st, &err), 0);
	assert_string_equal(st.comm, "we) ir (d");
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.pgrp, getpgrp());
	assert_int_equal(st.session, getsid(0));
	assert_int_equal(st.num_threads, 1);
	assert_true(st.start_code < st.end_code);
	assert_true(st.arg_start < st.arg_end);
}

static void test_limits_match_getrlimit(void **state)
{
	uint64_t rlim[16][2];
	struct rlimit rl = {100, 200};
	cd_err err = {0};

	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_int_equal(cd_proc_limits(getpid(), rlim, 16, &err), 0);
	assert_int_equal(rlim[RLIMIT_NOFILE][0], 100);
	assert_int_equal(rlim[RLIMIT_NOFILE][1], 200);
	getrlimit(RLIMIT_STACK, &rl);
	assert_int_equal(rlim[RLIMIT_STACK][0], rl.rlim_cur);
	assert_int_equal(rlim[RLIMIT_STACK][1], rl.rlim_max);
}

static void test_maps_flags(void **state)
{
	struct cd_proc_map *maps = NULL;
	size_t n;
	cd_err err = {0};
	char *gd = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE,
	                MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
	char *none = mmap(NULL, 4096, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *adv = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool saw_gd = false, saw_none = false, saw_vdso = false, saw_adv = false;

	assert_true(gd != MAP_FAILED && none != MAP_FAILED && adv != MAP_FAILED);
	assert_int_equal(madvise(adv, 4096, MADV_DONTFORK), 0);
	assert_int_equal(madvise(adv, 4096, MADV_RANDOM), 0);
	assert_int_equal(cd_proc_maps(getpid(), &maps, &n, &err), 0);
	for (size_t i = 0; i < n; i++) {
		if (maps[i].start == (uint64_t)(uintptr_t)gd)
			saw_gd = maps[i].growsdown && maps[i].prot == (PROT_READ | PROT_WRITE);
		if (maps[i].start == (uint64_t)(uintptr_t)none)
			saw_none = maps[i].shared && maps[i].prot == PROT_NONE &&
			           !strncmp(maps[i].path, "/dev/zero", 9);
		saw_vdso |= !strcmp(maps[i].path, "[vdso]");
		/* whole names only: "d" or "dcx" are not "dc" */
		if (maps[i].start == (uint64_t)(uintptr_t)adv)
			saw_adv =
			    cd_proc_vmflag(&maps[i], "dc") && cd_proc_vmflag(&maps[i], "rr") &&
			    cd_proc_vmflag(&maps[i], "rd") && !cd_proc_vmflag(&maps[i], "d") &&
			    !cd_proc_vmflag(&maps[i], "dcx") && !cd_proc_vmflag(&maps[i], "sr") &&
			    !maps[i].growsdown;
	}
	free(maps);
	assert_true(saw_gd);
	assert_true(saw_none);
	assert_true(saw_vdso);
	assert_true(saw_adv);
}

static void test_missing_pid(void **state)
{
	struct cd_proc_stat st;
	cd_err err = {0};

	assert_int_equal(cd_proc_stat(999999, &st, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/proc/999999/stat"));
}

/* All of the kernel's NGROUPS_MAX (65536): more than the 64 once kept, and a
 * Groups line of some 400 KB. */
static void test_groups_all_of_them(void **state)
{
	enum { N = 65536 };
	gid_t *set = calloc(N, sizeof(*set));
	uint32_t *got = NULL;
	size_t n = 0;
	cd_err err = {0};

	assert_non_null(set);
	if (geteuid() != 0) {
		free(set);
		skip();
	}
	for (size_t i = 0; i < N; i++)
		set[i] = (gid_t)(100000 + i);
	assert_int_equal(setgroups(N, set), 0);
	assert_int_equal(cd_proc_groups(getpid(), &got, &n, &err), 0);
	assert_int_equal(n, N);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(got[i], set[i]);
	free(got);
	free(set);
	assert_int_equal(setgroups(0, NULL), 0);
	assert_int_equal(cd_proc_groups(getpid(), &got, &n, &err), 0);
	assert_int_equal(n, 0);
	free(got);
}

/* The line of one mapping, its VmFlags included; none where nothing is. */
static void test_map_at(void **state)
{
	struct cd_proc_map m;
	cd_err err = {0};
	char *adv =
	    mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(adv != MAP_FAILED);
	assert_int_equal(munmap(adv + 2 * 4096, 4096), 0);
	assert_int_equal(madvise(adv, 2 * 4096, MADV_DONTFORK), 0);
	assert_int_equal(cd_proc_map_at(getpid(), (uint64_t)(uintptr_t)adv + 4096, &m, &err), 0);
	assert_true(m.start == (uint64_t)(uintptr_t)adv);
	assert_true(m.end == (uint64_t)(uintptr_t)adv + 2 * 4096);
	assert_true(cd_proc_vmflag(&m, "dc"));
	assert_int_equal(cd_proc_map_at(getpid(), (uint64_t)(uintptr_t)adv + 2 * 4096, &m, &err),
	                 -ENOENT);
	munmap(adv, 2 * 4096);
}

/* A stopped child's listing is read once while the cache is on, again after
 * a forget, and every time once it is off. */
static void test_maps_cache(void **state)
{
	struct cd_proc_map *maps = NULL;
	size_t n;
	uint64_t reads, hits;
	cd_err err = {0};
	pid_t child = fork();

	(void)state;
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	cd_proc_maps_cache_begin();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cd_proc_maps(child, &maps, &n, &err), 0);
		assert_true(n > 0);
		free(maps);
	}
	cd_proc_maps_cache_counts(&reads, &hits);
	assert_int_equal(reads, 1);
	assert_int_equal(hits, 2);
	cd_proc_maps_forget(child);
	assert_int_equal(cd_proc_maps(child, &maps, &n, &err), 0);
	free(maps);
	cd_proc_maps_cache_counts(&reads, &hits);
	assert_int_equal(reads, 2);
	cd_proc_maps_cache_end();
	assert_int_equal(cd_proc_maps(child, &maps, &n, &err), 0);
	free(maps);
	cd_proc_maps_cache_counts(&reads, &hits);
	assert_int_equal(reads, 2);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stat_with_odd_comm),
	    cmocka_unit_test(test_limits_match_getrlimit),
	    cmocka_unit_test(test_maps_flags),
	    cmocka_unit_test(test_missing_pid),
	    cmocka_unit_test(test_groups_all_of_them),
	    cmocka_unit_test(test_map_at),
	    cmocka_unit_test(test_maps_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
