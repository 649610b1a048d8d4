#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "shared/error.h"

static void test_set_returns_negative_code(void **state)
{
	cd_err err = {0};

	assert_int_equal(cd_err_set(&err, ENOENT, "open %s", "x"), -ENOENT);
	assert_int_equal(err.code, ENOENT);
	assert_string_equal(err.msg, "open x");
}

static void test_sys_appends_strerror(void **state)
{
	cd_err err = {0};

	assert_int_equal(cd_err_sys(&err, -EPERM, "ptrace %d", 42), -EPERM);
	assert_string_equal(err.msg, "ptrace 42: Operation not permitted");
}

static void test_wrap_prefixes_context(void **state)
{
	cd_err err = {0};

	cd_err_sys(&err, EINVAL, "mmap 7f00");
	assert_int_equal(cd_err_wrap(&err, "pid %d", 42), -EINVAL);
	assert_int_equal(cd_err_wrap(&err, "restore"), -EINVAL);
	assert_string_equal(err.msg, "restore: pid 42: mmap 7f00: Invalid argument");
}

static void test_zero_code_becomes_eio(void **state)
{
	cd_err err = {0};

	assert_int_equal(cd_err_set(&err, 0, "boom"), -EIO);
	cd_err_clear(&err);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_returns_negative_code),
	    cmocka_unit_test(test_sys_appends_strerror),
	    cmocka_unit_test(test_wrap_prefixes_context),
	    cmocka_unit_test(test_zero_code_becomes_eio),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
