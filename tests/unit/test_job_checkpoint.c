/* The job manager's checkpoint/restore side: dump targets, checkpoint
 * records and their authorisation, and what a restore of a job needs. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "job/checkpoint.h"
#include "job/manager.h"
#include "job_fixture.h"

static const struct job_caller root = {.uid = 0, .gid = 0};
static const struct job_caller user = {.uid = 4321, .gid = 4321};
static char *env[] = {"PATH=/usr/bin:/bin", NULL};

static void run_job(const char *jid, char **argv)
{
	struct job_run_opts o = {.jid = jid, .argv = argv, .envp = env, .cwd = "/"};
	json_t *job = NULL;
	cd_err err = {0};

	assert_int_equal(job_manager_run(jm, &root, &o, &job, &err), 0);
	json_decref(job);
}

static void wait_halted(const char *jid)
{
	for (int i = 0; i < 300; i++) {
		json_t *job = NULL;
		cd_err err = {0};
		bool halted;

		job_manager_reap(jm);
		assert_int_equal(job_manager_get(jm, &root, jid, &job, &err), 0);
		halted = strcmp(json_string_value(json_object_get(job, "status")), "halted") == 0;
		json_decref(job);
		if (halted)
			return;
		usleep(10000);
	}
	fail_msg("job %s never halted", jid);
}

static void kill_job(const char *jid)
{
	json_t *job = NULL;
	cd_err err = {0};

	assert_int_equal(job_manager_kill(jm, &root, jid, SIGKILL, &job, &err), 0);
	json_decref(job);
	wait_halted(jid);
}

static void add_checkpoint(const char *id, const char *jid, int64_t time, const char *path)
{
	struct db_checkpoint cp = {.time = time, .size = 100, .path = (char *)path};
	cd_err err = {0};

	snprintf(cp.id, sizeof(cp.id), "%s", id);
	snprintf(cp.jid, sizeof(cp.jid), "%s", jid);
	snprintf(cp.compression, sizeof(cp.compression), "gzip");
	assert_int_equal(job_manager_add_checkpoint(jm, &cp, &err), 0);
}

static void test_dump_target(void **state)
{
	char *sleeper[] = {"sleep", "30", NULL};
	struct job_dump_target t;
	cd_err err = {0};

	run_job("live", sleeper);
	assert_int_equal(job_manager_dump_target(jm, &root, "live", 0, &t, &err), 0);
	assert_true(t.pid > 0);
	assert_string_equal(t.jid, "live");
	assert_int_equal(job_manager_dump_target(jm, &user, "live", 0, &t, &err), -EPERM);
	assert_int_equal(job_manager_dump_target(jm, &root, "nope", 0, &t, &err), -ENOENT);
	assert_string_equal(err.msg, "job nope not found");
	assert_int_equal(job_manager_dump_target(jm, &root, NULL, getpid(), &t, &err), 0);
	assert_string_equal(t.jid, "");
	assert_int_equal(job_manager_dump_target(jm, &root, NULL, 0, &t, &err), -EINVAL);
	/* a user may not dump a process of root's */
	assert_int_equal(job_manager_dump_target(jm, &user, NULL, getpid(), &t, &err), -EPERM);
	kill_job("live");
	assert_int_equal(job_manager_dump_target(jm, &root, "live", 0, &t, &err), -ESRCH);
	assert_string_equal(err.msg, "job live is not running (halted): there is nothing to dump");
}

static void test_checkpoint_records(void **state)
{
	char *quick[] = {"true", NULL};
	struct db_checkpoint cp;
	json_t *list = NULL;
	cd_err err = {0};

	run_job("rec", quick);
	add_checkpoint("ck-old", "rec", 10, "/nonexistent/old");
	add_checkpoint("ck-new", "rec", 20, "/nonexistent/new");
	assert_int_equal(job_manager_checkpoints(jm, &root, "rec", &list, &err), 0);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")),
	                    "ck-new");
	json_decref(list);
	assert_int_equal(job_manager_checkpoints(jm, &user, "rec", &list, &err), -EPERM);
	assert_int_equal(job_manager_checkpoint_get(jm, &root, "ck-old", &cp, &err), 0);
	assert_string_equal(cp.path, "/nonexistent/old");
	db_checkpoint_clear(&cp);
	assert_int_equal(job_manager_checkpoint_get(jm, &user, "ck-old", &cp, &err), -EPERM);
	assert_int_equal(job_manager_checkpoint_delete(jm, &user, "ck-old", &err), -EPERM);
	assert_int_equal(job_manager_checkpoint_delete(jm, &root, "ck-old", &err), 0);
	assert_int_equal(job_manager_checkpoint_get(jm, &root, "ck-old", &cp, &err), -ENOENT);
	assert_string_equal(err.msg, "checkpoint ck-old not found");
}

static void test_restore_target(void **state)
{
	char *sleeper[] = {"sleep", "30", NULL};
	struct job_restore_target t;
	cd_err err = {0};
	char buf[64];

	run_job("rt", sleeper);
	assert_int_equal(job_manager_restore_target(jm, &root, "rt", &t, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "job rt is still running"));
	kill_job("rt");
	assert_int_equal(job_manager_restore_target(jm, &root, "rt", &t, &err), -ENOENT);
	assert_string_equal(err.msg, "job rt has no checkpoint");
	add_checkpoint("ck-rt", "rt", 5, "/nonexistent/rt");
	assert_int_equal(job_manager_restore_target(jm, &root, "rt", &t, &err), 0);
	assert_string_equal(t.path, "/nonexistent/rt");
	assert_non_null(strstr(t.log_path, "cedana-output-rt.log"));
	assert_non_null(strstr(t.cmd, "sleep"));
	job_restore_target_clear(&t);
	/* a taken id is refused, a free one kept, none generated */
	assert_int_equal(job_manager_pick_jid(jm, "rt", buf, sizeof(buf), &err), -EEXIST);
	assert_int_equal(job_manager_pick_jid(jm, "free", buf, sizeof(buf), &err), 0);
	assert_string_equal(buf, "free");
	assert_int_equal(job_manager_pick_jid(jm, NULL, buf, sizeof(buf), &err), 0);
	assert_true(strlen(buf) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dump_target),
	    cmocka_unit_test(test_checkpoint_records),
	    cmocka_unit_test(test_restore_target),
	};
	return cmocka_run_group_tests(tests, job_fixture_setup, job_fixture_teardown);
}
