/* The plugin loader (src/plugins/loader.c) against the test plugins: each
 * test copies the files it needs into a directory of its own. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "plugins/plugins.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/cedana-test-plugins-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	return chmod(dir, 0755);
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Copies from/NAME into the test's directory as file (mode 0755). */
static void put(const char *from, const char *name, const char *file)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "install -m 0755 '%s/%s' '%s/%s'", from, name, dir, file);
	assert_int_equal(system(cmd), 0);
}

static struct cd_plugins *load(void)
{
	struct cd_plugins *ps = NULL;
	cd_err err = {0};

	assert_int_equal(cd_plugins_load(dir, &ps, &err), 0);
	assert_non_null(ps);
	return ps;
}

static void test_missing_dir_is_empty(void **state)
{
	struct cd_plugins *ps = NULL;
	cd_err err = {0};

	assert_int_equal(cd_plugins_load("/nonexistent/cedana/plugins", &ps, &err), 0);
	assert_int_equal(ps->n, 0);
	cd_plugins_free(ps);
}

static void test_good_plugin(void **state)
{
	put(TEST_PLUGINS_GOOD, "test-plugin.so", "test-plugin.so");
	struct cd_plugins *ps = load();
	assert_int_equal(ps->n, 1);
	const struct cd_plugin_slot *s = cd_plugins_find(ps, "test");
	assert_non_null(s);
	assert_true(cd_plugin_slot_ready(s));
	assert_string_equal(s->detail, "test plugin ready");
	assert_true(cd_plugin_provides(s->p, "test"));
	assert_false(cd_plugin_provides(s->p, "gpu"));
	cd_plugins_free(ps);
}

static const struct cd_plugin_slot *only_broken(struct cd_plugins *ps, const char *want)
{
	assert_int_equal(ps->n, 1);
	assert_null(ps->v[0].p);
	assert_int_equal(ps->v[0].status, CD_PLUGIN_BROKEN);
	assert_non_null(strstr(ps->v[0].detail, want));
	return &ps->v[0];
}

static void test_bad_abi(void **state)
{
	put(TEST_PLUGINS_BAD, "bad-abi.so", "bad-abi.so");
	struct cd_plugins *ps = load();
	only_broken(ps, "plugin ABI version 99");
	assert_null(cd_plugins_find(ps, "bad-abi"));
	cd_plugins_free(ps);
}

static void test_missing_entry(void **state)
{
	put(TEST_PLUGINS_BAD, "no-entry.so", "no-entry.so");
	struct cd_plugins *ps = load();
	only_broken(ps, "no cedana_plugin_entry symbol");
	cd_plugins_free(ps);
}

static void test_bad_name(void **state)
{
	put(TEST_PLUGINS_BAD, "bad-name.so", "bad-name.so");
	struct cd_plugins *ps = load();
	only_broken(ps, "invalid plugin name");
	cd_plugins_free(ps);
}

static void test_duplicate_name(void **state)
{
	put(TEST_PLUGINS_GOOD, "test-plugin.so", "a.so");
	put(TEST_PLUGINS_BAD, "dup-name.so", "b.so");
	struct cd_plugins *ps = load();
	assert_int_equal(ps->n, 2);
	assert_true(cd_plugin_slot_ready(&ps->v[0]));
	assert_null(ps->v[1].p);
	assert_non_null(strstr(ps->v[1].detail, "plugin name test already loaded"));
	cd_plugins_free(ps);
}

static void test_world_writable_file_refused(void **state)
{
	char path[128];

	put(TEST_PLUGINS_GOOD, "test-plugin.so", "test-plugin.so");
	snprintf(path, sizeof(path), "%s/test-plugin.so", dir);
	assert_int_equal(chmod(path, 0757), 0);
	struct cd_plugins *ps = load();
	only_broken(ps, "writable by group or others: refused");
	assert_null(ps->v[0].handle); /* never opened */
	cd_plugins_free(ps);
}

static void test_writable_dir_refused(void **state)
{
	put(TEST_PLUGINS_GOOD, "test-plugin.so", "test-plugin.so");
	assert_int_equal(chmod(dir, 0775), 0);
	struct cd_plugins *ps = load();
	only_broken(ps, "writable by group or others: refused");
	assert_null(ps->v[0].handle);
	cd_plugins_free(ps);
}

static void test_init_failure_is_broken(void **state)
{
	put(TEST_PLUGINS_GOOD, "test-plugin.so", "test-plugin.so");
	setenv("CEDANA_TEST_PLUGIN_FAIL", "init", 1);
	struct cd_plugins *ps = load();
	unsetenv("CEDANA_TEST_PLUGIN_FAIL");
	assert_int_equal(ps->n, 1);
	assert_false(ps->v[0].inited);
	assert_false(cd_plugin_slot_ready(&ps->v[0]));
	assert_string_equal(ps->v[0].detail, "init: init failed as asked");
	cd_plugins_free(ps);
}

static void test_hook_call(void **state)
{
	char log[128];
	cd_err err = {0};

	put(TEST_PLUGINS_GOOD, "test-plugin.so", "test-plugin.so");
	snprintf(log, sizeof(log), "%s/log", dir);
	struct cd_plugins *ps = load();
	const struct cd_plugin_slot *s = cd_plugins_find(ps, "test");
	struct cd_plugin_ctx ctx = {.pid = 42, .image_dir = dir};
	/* without its log the test plugin takes no part */
	assert_int_equal(cd_plugin_call(ps, s, CD_HOOK_PAUSE_DEVICES, &ctx, &err), CD_PLUGIN_SKIP);
	setenv("CEDANA_TEST_PLUGIN_LOG", log, 1);
	assert_int_equal(cd_plugin_call(ps, s, CD_HOOK_PAUSE_DEVICES, &ctx, &err), CD_PLUGIN_OK);
	setenv("CEDANA_TEST_PLUGIN_FAIL", "resume_devices", 1);
	assert_true(cd_plugin_call(ps, s, CD_HOOK_RESUME_DEVICES, &ctx, &err) < 0);
	assert_string_equal(err.msg, "plugin test: resume_devices: resume_devices failed as asked");
	unsetenv("CEDANA_TEST_PLUGIN_FAIL");
	unsetenv("CEDANA_TEST_PLUGIN_LOG");
	char buf[256] = "";
	FILE *f = fopen(log, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_string_equal(buf, "pause_devices 42\nresume_devices 42\n");
	cd_plugins_free(ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_dir_is_empty),
	    cmocka_unit_test_setup_teardown(test_good_plugin, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_abi, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_duplicate_name, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_world_writable_file_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_writable_dir_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_init_failure_is_broken, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hook_call, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
