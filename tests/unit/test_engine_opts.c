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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unknown_version_refused),
	    cmocka_unit_test(test_progress_steps_and_end),
	    cmocka_unit_test(test_progress_without_callback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
