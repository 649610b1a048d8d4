#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "db/db.h"

static char dir[] = "/tmp/cedana-test-db-XXXXXX";
static char path[256];

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/jobs.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct db_job sample(const char *jid)
{
	struct db_job job = {.pid = 42,
	                     .start_time = 1234,
	                     .uid = 1000,
	                     .gid = 1000,
	                     .cmd = "[\"sleep\",\"1\"]",
	                     .created_at = 7};

	snprintf(job.jid, sizeof(job.jid), "%s", jid);
	snprintf(job.type, sizeof(job.type), "process");
	return job;
}

static void test_schema_and_wal(void **state)
{
	char cmd[512];
	struct db *db;
	cd_err err = {0};

	assert_int_equal(db_open(path, &db, &err), 0);
	assert_int_equal(db_schema_version(db), 4);
	db_close(db);
	/* reopening an up-to-date DB migrates nothing */
	assert_int_equal(db_open(path, &db, &err), 0);
	assert_int_equal(db_schema_version(db), 4);
	db_close(db);
	/* WAL is a persistent property of the file */
	snprintf(cmd, sizeof(cmd), "sqlite3 %s 'PRAGMA journal_mode' | grep -qx wal", path);
	assert_int_equal(system(cmd), 0);
}

static void test_job_crud(void **state)
{
	struct db_job job = sample("a"), got, *jobs;
	struct db *db;
	cd_err err = {0};
	size_t n;

	assert_int_equal(db_open(path, &db, &err), 0);
	assert_int_equal(db_job_insert(db, &job, &err), 0);
	assert_int_equal(db_job_insert(db, &job, &err), -EEXIST);
	assert_int_equal(db_job_get(db, "a", &got, &err), 0);
	assert_int_equal(got.pid, 42);
	assert_int_equal(got.start_time, 1234);
	assert_string_equal(got.cmd, "[\"sleep\",\"1\"]");
	assert_null(got.log_path);
	assert_false(got.has_exit_code);
	db_job_clear(&got);
	assert_int_equal(db_job_set_exit(db, "a", 3, &err), 0);
	assert_int_equal(db_job_get(db, "a", &got, &err), 0);
	assert_true(got.has_exit_code);
	assert_int_equal(got.exit_code, 3);
	db_job_clear(&got);
	assert_int_equal(db_job_set_exit(db, "nope", 3, &err), -ENOENT);
	job = sample("b");
	job.log_path = "/var/log/x.log";
	assert_int_equal(db_job_insert(db, &job, &err), 0);
	assert_int_equal(db_job_list(db, &jobs, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(jobs[1].log_path, "/var/log/x.log");
	db_job_list_free(jobs, n);
	assert_int_equal(db_job_delete(db, "a", &err), 0);
	assert_int_equal(db_job_delete(db, "a", &err), -ENOENT);
	assert_string_equal(err.msg, "job a not found");
	assert_int_equal(db_job_get(db, "a", &got, &err), -ENOENT);
	db_close(db);
}

static void test_checkpoints(void **state)
{
	struct db_checkpoint cp = {.time = 10, .size = 4096, .path = "/tmp/c1"}, got;
	struct db_job job = sample("c");
	struct db_checkpoint *list;
	struct db *db;
	size_t n;
	cd_err err = {0};

	assert_int_equal(db_open(path, &db, &err), 0);
	assert_int_equal(db_job_insert(db, &job, &err), 0);
	snprintf(cp.id, sizeof(cp.id), "c-1");
	snprintf(cp.jid, sizeof(cp.jid), "c");
	snprintf(cp.compression, sizeof(cp.compression), "none");
	assert_int_equal(db_checkpoint_latest(db, "c", &got, &err), -ENOENT);
	assert_int_equal(db_checkpoint_insert(db, &cp, &err), 0);
	snprintf(cp.id, sizeof(cp.id), "c-2");
	cp.time = 20;
	cp.path = "/tmp/c2";
	assert_int_equal(db_checkpoint_insert(db, &cp, &err), 0);
	assert_int_equal(db_checkpoint_latest(db, "c", &got, &err), 0);
	assert_string_equal(got.path, "/tmp/c2");
	assert_int_equal(got.size, 4096);
	db_checkpoint_clear(&got);
	assert_int_equal(db_checkpoint_get(db, "c-1", &got, &err), 0);
	assert_string_equal(got.path, "/tmp/c1");
	db_checkpoint_clear(&got);
	assert_int_equal(db_checkpoint_get(db, "c-9", &got, &err), -ENOENT);
	assert_string_equal(err.msg, "checkpoint c-9 not found");
	snprintf(cp.jid, sizeof(cp.jid), "nojob");
	snprintf(cp.id, sizeof(cp.id), "x-1");
	assert_int_equal(db_checkpoint_insert(db, &cp, &err), -ENOENT);
	assert_int_equal(db_checkpoint_list(db, "c", &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "c-2"); /* newest first */
	assert_string_equal(list[1].id, "c-1");
	db_checkpoint_list_free(list, n);
	assert_int_equal(db_checkpoint_delete(db, "c-2", &err), 0);
	assert_int_equal(db_checkpoint_delete(db, "c-2", &err), -ENOENT);
	assert_int_equal(db_checkpoint_latest(db, "c", &got, &err), 0);
	assert_string_equal(got.id, "c-1");
	db_checkpoint_clear(&got);
	/* deleting the job removes its checkpoint records */
	assert_int_equal(db_job_delete(db, "c", &err), 0);
	assert_int_equal(db_checkpoint_latest(db, "c", &got, &err), -ENOENT);
	db_close(db);
}

static void test_inflight(void **state)
{
	struct db_inflight a = {.kind = "dump",
	                        .jid = "j",
	                        .dest = "/ck/x.tar",
	                        .scratch = "/ck/.x.",
	                        .created_at = 5},
	                   b = {.kind = "restore", .scratch = "/var/tmp/.r", .log_path = "/l"};
	struct db_inflight *list;
	char fresh[300];
	struct db *db;
	size_t n;
	cd_err err = {0};

	snprintf(fresh, sizeof(fresh), "%s/inflight.db", dir);
	assert_int_equal(db_open(fresh, &db, &err), 0);
	assert_int_equal(db_inflight_insert(db, &a, &err), 0);
	assert_int_equal(db_inflight_insert(db, &b, &err), 0);
	assert_true(b.id > a.id);
	assert_int_equal(db_inflight_list(db, &list, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].kind, "dump");
	assert_string_equal(list[0].dest, "/ck/x.tar");
	assert_string_equal(list[0].scratch, "/ck/.x.");
	assert_string_equal(list[0].log_path, "");
	assert_int_equal(list[0].created_at, 5);
	assert_string_equal(list[1].log_path, "/l");
	db_inflight_list_free(list, n);
	assert_int_equal(db_inflight_delete(db, a.id, &err), 0);
	assert_int_equal(db_inflight_list(db, &list, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].kind, "restore");
	db_inflight_list_free(list, n);
	db_close(db);
}

static void test_newer_schema_refused(void **state)
{
	char sql[512];
	struct db *db;
	cd_err err = {0};

	snprintf(sql, sizeof(sql), "sqlite3 %s 'PRAGMA user_version = 99'", path);
	assert_int_equal(system(sql), 0);
	assert_int_equal(db_open(path, &db, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "schema version 99 is newer"));
}

static void test_unopenable(void **state)
{
	struct db *db;
	cd_err err = {0};

	assert_true(db_open("/nonexistent/dir/x.db", &db, &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/dir/x.db"));
}

/* Opens dir/NAME after prep made its files; returns db_open's result. */
static int open_planted(const char *name, struct db **db, cd_err *err)
{
	char p[300];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return db_open(p, db, err);
}

static void plant(const char *name, mode_t mode, uid_t uid)
{
	char p[300];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	assert_int_equal(chown(p, uid, (gid_t)-1), 0);
}

static void test_new_db_private(void **state)
{
	struct db *db;
	cd_err err = {0};
	struct stat st;
	char p[300];

	umask(022);
	assert_int_equal(open_planted("fresh.db", &db, &err), 0);
	db_close(db);
	snprintf(p, sizeof(p), "%s/fresh.db", dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_planted_db_refused(void **state)
{
	struct db *db;
	cd_err err = {0};
	char p[300], target[300];

	plant("open.db", 0666, geteuid());
	assert_int_equal(open_planted("open.db", &db, &err), -EPERM);
	assert_non_null(strstr(err.msg, "open.db: writable by group or others (mode 666)"));

	snprintf(target, sizeof(target), "%s/fresh.db", dir);
	snprintf(p, sizeof(p), "%s/link.db", dir);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(open_planted("link.db", &db, &err), -ELOOP);
	assert_non_null(strstr(err.msg, "link.db: a symbolic link"));

	if (geteuid() != 0)
		return;
	plant("theirs.db", 0600, 65534);
	assert_int_equal(open_planted("theirs.db", &db, &err), -EPERM);
	assert_non_null(strstr(err.msg, "theirs.db: owned by uid 65534"));
	/* a -wal beside a good database is refused too */
	plant("walled.db-wal", 0600, 65534);
	assert_int_equal(open_planted("walled.db", &db, &err), -EPERM);
	assert_non_null(strstr(err.msg, "walled.db-wal: owned by uid 65534"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schema_and_wal), cmocka_unit_test(test_job_crud),
	    cmocka_unit_test(test_checkpoints),    cmocka_unit_test(test_newer_schema_refused),
	    cmocka_unit_test(test_inflight),       cmocka_unit_test(test_unopenable),
	    cmocka_unit_test(test_new_db_private), cmocka_unit_test(test_planted_db_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
