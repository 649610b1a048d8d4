#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "job/manager.h"
#include "job_fixture.h"

static const struct job_caller root = {.uid = 0, .gid = 0};
static char *env[] = {"PATH=/usr/bin:/bin", NULL};

/* Reaps until the job has an exit code (the daemon does this on SIGCHLD). */
static json_t *wait_exit(const char *jid)
{
	for (int i = 0; i < 200; i++) {
		json_t *job = NULL;
		cd_err err = {0};

		job_manager_reap(jm);
		assert_int_equal(job_manager_get(jm, &root, jid, &job, &err), 0);
		if (!json_is_null(json_object_get(job, "exit_code")))
			return job;
		json_decref(job);
		usleep(10000);
	}
	fail_msg("job %s never exited", jid);
	return NULL;
}

static void test_run_records_exit_code(void **state)
{
	char *argv[] = {"sh", "-c", "exit 6", NULL};
	struct job_run_opts o = {.jid = "six", .argv = argv, .envp = env, .cwd = "/"};
	json_t *job = NULL;
	cd_err err = {0};
	char log[300];

	assert_int_equal(job_manager_run(jm, &root, &o, &job, &err), 0);
	assert_string_equal(json_string_value(json_object_get(job, "jid")), "six");
	json_decref(job);
	job = wait_exit("six");
	assert_int_equal(json_integer_value(json_object_get(job, "exit_code")), 6);
	assert_string_equal(json_string_value(json_object_get(job, "status")), "halted");
	json_decref(job);
	snprintf(log, sizeof(log), "%s/cedana-output-six.log", job_fixture_dir);
	assert_int_equal(access(log, F_OK), 0);
	assert_int_equal(job_manager_run(jm, &root, &o, &job, &err), -EEXIST);
	assert_string_equal(err.msg, "job six already exists");
}

static void test_command_not_found_leaves_nothing(void **state)
{
	char *argv[] = {"no-such-command-xyz", NULL};
	struct job_run_opts o = {.jid = "ghost", .argv = argv, .envp = env};
	json_t *job = NULL;
	cd_err err = {0};
	char log[300];

	assert_int_equal(job_manager_run(jm, &root, &o, &job, &err), -ENOENT);
	assert_string_equal(err.msg, "command not found: no-such-command-xyz");
	assert_int_equal(job_manager_get(jm, &root, "ghost", &job, &err), -ENOENT);
	snprintf(log, sizeof(log), "%s/cedana-output-ghost.log", job_fixture_dir);
	assert_int_equal(access(log, F_OK), -1);
}

static void test_other_users_are_refused(void **state)
{
	const struct job_caller user = {.uid = 12345, .gid = 12345};
	char *argv[] = {"true", NULL};
	struct job_run_opts o = {.jid = "rootjob", .argv = argv, .envp = env, .as_root = true};
	json_t *job = NULL, *jobs = NULL;
	cd_err err = {0};

	assert_int_equal(job_manager_run(jm, &root, &o, &job, &err), 0);
	json_decref(job);
	assert_int_equal(job_manager_get(jm, &user, "rootjob", &job, &err), -EPERM);
	assert_int_equal(job_manager_kill(jm, &user, "rootjob", SIGKILL, &job, &err), -EPERM);
	assert_int_equal(job_manager_delete(jm, &user, "rootjob", &err), -EPERM);
	assert_int_equal(job_manager_list(jm, &user, 0, &jobs, &err), 0);
	assert_int_equal(json_array_size(jobs), 0);
	json_decref(jobs);
	o.jid = "escalate";
	assert_int_equal(job_manager_run(jm, &user, &o, &job, &err), -EPERM);
	json_decref(wait_exit("rootjob"));
	assert_int_equal(job_manager_kill(jm, &root, "rootjob", SIGKILL, &job, &err), -ESRCH);
	assert_int_equal(job_manager_delete(jm, &root, "rootjob", &err), 0);
	assert_int_equal(job_manager_delete(jm, &root, "rootjob", &err), -ENOENT);
}

static void test_adopt_child_and_kill(void **state)
{
	struct job_adopt_opts o = {.jid = "adopted", .master = -1, .is_child = true};
	json_t *job = NULL, *jobs = NULL;
	cd_err err = {0};
	pid_t pid = fork();

	if (pid == 0) {
		execlp("sleep", "sleep", "30", NULL);
		_exit(127);
	}
	o.pid = pid;
	assert_int_equal(job_manager_adopt(jm, &o, &job, &err), 0);
	json_decref(job);
	assert_int_equal(job_manager_list(jm, &root, pid, &jobs, &err), 0);
	assert_int_equal(json_array_size(jobs), 1);
	json_decref(jobs);
	assert_int_equal(job_manager_kill(jm, &root, "adopted", SIGKILL, &job, &err), 0);
	json_decref(job);
	job = wait_exit("adopted");
	assert_int_equal(json_integer_value(json_object_get(job, "exit_code")), 137);
	json_decref(job);
}

static void test_adopt_replace_and_checkpoint(void **state)
{
	struct db_checkpoint cp = {.id = "r-1",
	                           .jid = "restored",
	                           .time = 100,
	                           .size = 4096,
	                           .path = "/tmp/ckpt",
	                           .compression = "none"};
	struct job_adopt_opts o = {.jid = "restored", .master = -1, .is_child = true};
	json_t *job = NULL;
	cd_err err = {0};
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	o.pid = pid;
	assert_int_equal(job_manager_adopt(jm, &o, &job, &err), 0);
	json_decref(job);
	json_decref(wait_exit("restored"));
	assert_int_equal(job_manager_add_checkpoint(jm, &cp, &err), 0);
	/* a restore of the job: same jid, a new process */
	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	o.pid = pid;
	o.replace = true;
	assert_int_equal(job_manager_adopt(jm, &o, &job, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(job, "pid")), pid);
	assert_true(json_is_null(json_object_get(job, "exit_code")));
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(job, "checkpoint"), "size")), 4096);
	json_decref(job);
	/* while it runs, a second restore onto the same job is refused */
	assert_int_equal(job_manager_adopt(jm, &o, &job, &err), -EBUSY);
	o.replace = false;
	assert_int_equal(job_manager_adopt(jm, &o, &job, &err), -EEXIST);
	kill(pid, SIGKILL);
	job = wait_exit("restored");
	assert_int_equal(json_integer_value(json_object_get(job, "exit_code")), 137);
	json_decref(job);
}

static int worker_fn(void *arg)
{
	return *(int *)arg;
}

static void test_worker_status_survives_the_reaper(void **state)
{
	int code = 7, status = 0;
	siginfo_t si;
	cd_err err = {0};
	pid_t pid;

	assert_int_equal(job_manager_fork_worker(jm, worker_fn, &code, NULL, 0, &pid, &err), 0);
	assert_int_equal(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0);
	job_manager_reap(jm); /* must keep the status for the waiter */
	assert_int_equal(job_manager_wait_worker(jm, pid, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
	assert_int_equal(job_manager_wait_worker(jm, pid, &status), -ECHILD);
}

/* Exit code: bit 0 set when fds[0] is open, bit 1 when fds[1] is. */
static int fds_open_fn(void *arg)
{
	const int *fds = arg;

	return (fcntl(fds[0], F_GETFD) >= 0) | (fcntl(fds[1], F_GETFD) >= 0) << 1;
}

static void test_worker_keeps_only_its_fds(void **state)
{
	int fds[2], status = 0, kept;
	siginfo_t si;
	cd_err err = {0};
	pid_t pid;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	kept = fds[1];
	assert_int_equal(job_manager_fork_worker(jm, fds_open_fn, fds, &kept, 1, &pid, &err), 0);
	assert_int_equal(waitid(P_PID, pid, &si, WEXITED | WNOWAIT), 0);
	job_manager_reap(jm);
	assert_int_equal(job_manager_wait_worker(jm, pid, &status), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 2); /* fds[0] closed, fds[1] kept */
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_run_records_exit_code),
	    cmocka_unit_test(test_command_not_found_leaves_nothing),
	    cmocka_unit_test(test_other_users_are_refused),
	    cmocka_unit_test(test_adopt_child_and_kill),
	    cmocka_unit_test(test_adopt_replace_and_checkpoint),
	    cmocka_unit_test(test_worker_status_survives_the_reaper),
	    cmocka_unit_test(test_worker_keeps_only_its_fds),
	};
	return cmocka_run_group_tests(tests, job_fixture_setup, job_fixture_teardown);
}
