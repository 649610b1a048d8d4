/* What the daemon's start-up does with a journal a killed daemon left
 * (daemon/recover.c): finished dumps recorded once, unfinished ones and
 * restores rolled back, the output file of a job that exists kept. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/recover.h"
#include "job/checkpoint.h"
#include "job/manager.h"
#include "job_fixture.h"

static const struct job_caller root = {.uid = 0, .gid = 0};

static void touch(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{}", 2), 2);
	close(fd);
}

static void make_dir(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(mkdir(path, 0700), 0);
}

static bool exists(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* A halted job jid (its process came and went). */
static void halted_job(const char *jid)
{
	char *argv[] = {"/bin/true", NULL}, *env[] = {"PATH=/bin", NULL};
	struct job_run_opts o = {.jid = jid, .argv = argv, .envp = env, .cwd = "/"};
	json_t *job = NULL;
	cd_err err = {0};

	assert_int_equal(job_manager_run(jm, &root, &o, &job, &err), 0);
	json_decref(job);
}

static size_t checkpoints_of(const char *jid)
{
	json_t *list = NULL;
	cd_err err = {0};
	size_t n;

	assert_int_equal(job_manager_checkpoints(jm, &root, jid, &list, &err), 0);
	n = json_array_size(list);
	json_decref(list);
	return n;
}

static void journal(const char *kind, const char *jid, const char *dest, const char *scratch,
                    const char *log_path)
{
	struct db_inflight op = {.dest = (char *)dest,
	                         .scratch = (char *)scratch,
	                         .log_path = (char *)log_path,
	                         .created_at = time(NULL)};
	cd_err err = {0};

	snprintf(op.kind, sizeof(op.kind), "%s", kind);
	snprintf(op.jid, sizeof(op.jid), "%s", jid);
	assert_int_equal(job_manager_journal_begin(jm, &op, &err), 0);
}

/* Runs the recovery; its one report line must hold want. */
static void recover_says(const char *want)
{
	json_t *report = recover_inflight(jm);

	assert_int_equal(json_array_size(report), 1);
	if (!strstr(json_string_value(json_array_get(report, 0)), want))
		fail_msg("report \"%s\" lacks \"%s\"", json_string_value(json_array_get(report, 0)),
		         want);
	json_decref(report);
	report = recover_inflight(jm); /* the journal is empty now */
	assert_int_equal(json_array_size(report), 0);
	json_decref(report);
}

static void test_finished_dump_recorded_once(void **state)
{
	char ck[300], dest[400], scratch[400];

	snprintf(ck, sizeof(ck), "%s/ck1", job_fixture_dir);
	assert_int_equal(mkdir(ck, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/img", ck);
	snprintf(scratch, sizeof(scratch), "%s/.img.dump-", ck);
	halted_job("fin");
	make_dir(ck, "img"); /* the packed image reached its path */
	touch(dest, "manifest.json");
	make_dir(ck, ".img.dump-x1y2z3");  /* the worker's emptied scratch */
	make_dir(ck, ".img2.dump-aaaaaa"); /* another dump's: not ours */
	journal("dump", "fin", dest, scratch, NULL);
	recover_says("was finished: recorded as a checkpoint");
	assert_int_equal(checkpoints_of("fin"), 1);
	assert_false(exists(ck, ".img.dump-x1y2z3"));
	assert_true(exists(ck, ".img2.dump-aaaaaa"));
	assert_true(exists(ck, "img"));
	/* a daemon that died after recording it: no second record */
	journal("dump", "fin", dest, scratch, NULL);
	recover_says("was already recorded");
	assert_int_equal(checkpoints_of("fin"), 1);
}

static void test_unfinished_dump_rolled_back(void **state)
{
	char ck[300], dest[400], scratch[400];

	snprintf(ck, sizeof(ck), "%s/ck2", job_fixture_dir);
	assert_int_equal(mkdir(ck, 0700), 0);
	snprintf(dest, sizeof(dest), "%s/img.tar", ck);
	snprintf(scratch, sizeof(scratch), "%s/.img.dump-", ck);
	halted_job("unfin");
	make_dir(ck, ".img.dump-abcdef");
	touch(ck, ".img.tar.tmp-qwerty"); /* the archive being written */
	journal("dump", "unfin", dest, scratch, NULL);
	recover_says("unfinished: removed 2 partial file(s)");
	assert_int_equal(checkpoints_of("unfin"), 0);
	assert_false(exists(ck, ".img.dump-abcdef"));
	assert_false(exists(ck, ".img.tar.tmp-qwerty"));
}

static void test_restore_rolled_back(void **state)
{
	char dir[300], scratch[400], log[400], used[400];

	snprintf(dir, sizeof(dir), "%s/r", job_fixture_dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(scratch, sizeof(scratch), "%s/.cedana-restore-abcdef", dir);
	snprintf(log, sizeof(log), "%s/cedana-output-back.log", dir);
	make_dir(dir, ".cedana-restore-abcdef");
	touch(scratch, "image");
	touch(dir, "cedana-output-back.log");
	journal("restore", "back", NULL, scratch, log);
	recover_says("restore of job back: unfinished: removed");
	assert_false(exists(dir, ".cedana-restore-abcdef"));
	assert_false(exists(dir, "cedana-output-back.log"));
	/* the log of a job that exists is that job's */
	halted_job("kept");
	{
		json_t *job = NULL;
		cd_err err = {0};

		assert_int_equal(job_manager_get(jm, &root, "kept", &job, &err), 0);
		snprintf(used, sizeof(used), "%s", json_string_value(json_object_get(job, "log")));
		json_decref(job);
	}
	journal("restore", "kept", NULL, "", used);
	recover_says("unfinished: removed no scratch directory");
	assert_int_equal(access(used, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_finished_dump_recorded_once),
	    cmocka_unit_test(test_unfinished_dump_rolled_back),
	    cmocka_unit_test(test_restore_rolled_back),
	};

	return cmocka_run_group_tests(tests, job_fixture_setup, job_fixture_teardown);
}
