/* The engine's versioned options and its progress reporting. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/engine.h"
#include "engine/internal.h"

static void test_unknown_version_refused(void **state)
{
	char dir[] = "/tmp/cedana-engine-opts-XXXXXX";
	char image[64];
	cd_err err = {0};
	pid_t pid;

	assert_non_null(mkdtemp(dir));
	snprintf(image, sizeof(image), "%s/img", dir);
	for (int v = 0; v <= CD_ENGINE_OPTS_VERSION + 1; v += CD_ENGINE_OPTS_VERSION + 1) {
		struct cd_dump_opts d = {.version = v, .pid = getpid(), .dir = image};
		struct cd_restore_opts r = {.version = v, .dir = image};

		assert_int_equal(cd_engine_dump(&d, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "options version"));
		assert_int_equal(access(image, F_OK), -1);
		assert_int_equal(cd_engine_restore(&r, &pid, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "options version"));
	}
	rmdir(dir);
}

struct calls {
	int n;
	uint64_t done[16], total[16];
};

static void record(const char *stage, uint64_t done, uint64_t total, void *userdata)
{
	struct calls *c = userdata;

	assert_string_equal(stage, "dump");
	if (c->n < 16) {
		c->done[c->n] = done;
		c->total[c->n] = total;
	}
	c->n++;
}

static void test_progress_steps_and_end(void **state)
{
	struct calls c = {0};
	struct cd_progress p = {.stage = "dump", .fn = record, .userdata = &c, .total = 10u << 20};

	cd_progress_add(&p, 1u << 20);
	assert_int_equal(c.n, 0); /* below the step */
	cd_progress_add(&p, 4u << 20);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.done[0], 5u << 20);
	assert_int_equal(c.total[0], 10u << 20);
	/* an estimate that falls short never reports more done than total */
	cd_progress_add(&p, 8u << 20);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.done[1], 13u << 20);
	assert_int_equal(c.total[1], 13u << 20);
	cd_progress_end(&p);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.done[2], c.total[2]);
}

static void test_progress_without_callback(void **state)
{
	struct cd_progress p = {.total = 100};

	cd_progress_add(&p, 64u << 20);
	cd_progress_end(&p);
	assert_int_equal(p.done, 64u << 20);
	assert_int_equal(p.total, p.done);
}

/* The root's slots: fd 0 a file (an object), fd 1 external stdio, fd 2 a
 * terminal (an object), in an image with or without --shell-job. */
static void plan_for(bool shell_job, int version, int f0, int f1, int f2, unsigned ext_only,
                     struct cd_stdio_plan *plan)
{
	struct cd_fd fds[3] = {
	    {.fd = 0, .kind = CD_FD_REG, .obj = 3, .std = 0, .path = "/tmp/in"},
	    {.fd = 1, .kind = CD_FD_STDIO, .obj = 1, .std = 1},
	    {.fd = 2, .kind = CD_FD_CHR, .obj = 4, .std = 2, .path = "/dev/pts/3"},
	};
	struct cd_task t = {.pid = 42, .fds = fds, .nfds = 3};
	struct cd_image img = {.root = 42, .shell_job = shell_job, .tasks = &t, .ntasks = 1};
	struct cd_restore_opts o = {
	    .version = version, .stdio_fd = {f0, f1, f2}, .stdio_external_only = ext_only};

	cd_stdio_plan_make(&img, &o, plan);
}

static void assert_plan(const struct cd_stdio_plan *p, int o0, int o1, int o2, int e0, int e1,
                        int e2)
{
	assert_int_equal(p->obj[0], o0);
	assert_int_equal(p->obj[1], o1);
	assert_int_equal(p->obj[2], o2);
	assert_int_equal(p->ext[0], e0);
	assert_int_equal(p->ext[1], e1);
	assert_int_equal(p->ext[2], e2);
}

/* Which slot is replaced by what (docs/engine.md, "External stdio"). */
static void test_stdio_plan(void **state)
{
	struct cd_stdio_plan p;

	/* nothing given: objects stay, external slots get the caller's own */
	plan_for(false, 4, -1, -1, -1, 0, &p);
	assert_plan(&p, -1, -1, -1, 0, 1, 2);
	/* given: replaces objects and external slots alike */
	plan_for(false, 4, 10, 11, 12, 0, &p);
	assert_plan(&p, 10, 11, 12, 10, 11, 12);
	/* external only: the objects stay */
	plan_for(false, 4, 10, 11, 12, 7, &p);
	assert_plan(&p, -1, -1, -1, 10, 11, 12);
	plan_for(false, 4, 10, 11, 12, 1, &p);
	assert_plan(&p, -1, 11, 12, 10, 11, 12);
	/* a terminal under --shell-job is the caller's */
	plan_for(true, 4, -1, -1, -1, 7, &p);
	assert_plan(&p, -1, -1, 2, 0, 1, 2);
	/* before version 4 every slot was the caller's */
	plan_for(false, 3, -1, 11, -1, 7, &p);
	assert_plan(&p, 0, 11, 2, 0, 11, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unknown_version_refused),
	    cmocka_unit_test(test_progress_steps_and_end),
	    cmocka_unit_test(test_progress_without_callback),
	    cmocka_unit_test(test_stdio_plan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
