/* The shared page of a dump/restore operation and its progress registry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/op.h"

static void test_registry(void **state)
{
	struct op_shared *a, *b;
	cd_err err = {0};
	json_t *p;

	assert_int_equal(op_new("one", &a, &err), 0);
	assert_int_equal(op_new("one", &b, &err), -EEXIST);
	assert_string_equal(err.msg, "operation one is already in flight");
	assert_null(op_progress_json("two"));
	/* listed before its first phase: seconds since it was made */
	p = op_progress_json("one");
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "phase")), "");
	assert_true(json_real_value(json_object_get(p, "seconds")) < 60);
	json_decref(p);
	op_phase(a, "compress");
	op_progress_cb(10, 40, a);
	p = op_progress_json("one");
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "phase")), "compress");
	assert_int_equal(json_integer_value(json_object_get(p, "done")), 10);
	assert_int_equal(json_integer_value(json_object_get(p, "total")), 40);
	/* seconds into the phase, for the rate */
	assert_true(json_is_real(json_object_get(p, "seconds")));
	assert_true(json_real_value(json_object_get(p, "seconds")) >= 0);
	assert_true(json_real_value(json_object_get(p, "seconds")) < 60);
	json_decref(p);
	op_free(a);
	assert_null(op_progress_json("one"));
	/* an anonymous one is not registered, and NULL frees nothing */
	assert_int_equal(op_new(NULL, &b, &err), 0);
	op_free(b);
	op_free(NULL);
}

/* What a forked child writes is what the daemon reads. */
static void test_shared_with_a_child(void **state)
{
	struct op_shared *op;
	cd_err err = {0};
	json_t *t;
	int status;
	pid_t pid;

	assert_int_equal(op_new("child", &op, &err), 0);
	pid = fork();
	if (pid == 0) {
		op_time(op, "dump", 1.5);
		op_time(op, "total", 2.0);
		op->pid = 4242;
		cd_err_set(&op->err, EBUSY, "pid 4242 is in use");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(op->pid, 4242);
	assert_string_equal(op->err.msg, "pid 4242 is in use");
	t = op_timings_json(op);
	assert_int_equal(json_array_size(t), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(t, 0), "name")),
	                    "dump");
	assert_true(json_real_value(json_object_get(json_array_get(t, 1), "ms")) == 2.0);
	json_decref(t);
	op_free(op);
}

/* An exec'd worker has only the page's fd (src/daemon/worker.h): what it
 * writes through its own mapping of the fd is what the daemon reads. */
static void test_mapped_from_its_fd(void **state)
{
	struct op_shared *op, *view;
	cd_err err = {0};
	int status;
	pid_t pid;

	assert_int_equal(op_new(NULL, &op, &err), 0);
	pid = fork();
	if (pid == 0) {
		view = op_map(dup(op_fd(op)), &err);
		if (!view || view == op)
			_exit(1);
		op_phase(view, "restore");
		view->pid = 77;
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(op->pid, 77);
	assert_string_equal(op->phase, "restore");
	op_free(op);
	/* an fd that is not a page's */
	assert_null(op_map(-1, &err));
	assert_string_equal(err.msg, "map the operation's page (fd -1): Bad file descriptor");
}

static void test_long_id_refused(void **state)
{
	char id[OP_ID_MAX + 8];
	struct op_shared *op;
	cd_err err = {0};

	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(op_new(id, &op, &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry),
	    cmocka_unit_test(test_shared_with_a_child),
	    cmocka_unit_test(test_mapped_from_its_fd),
	    cmocka_unit_test(test_long_id_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
