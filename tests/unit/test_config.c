#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "shared/config.h"

static char dir[] = "/tmp/cedana-test-config-XXXXXX";

static int setup(void **state)
{
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}

static void write_config(const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_defaults(void **state)
{
	struct config_sources src = {.config_dir = "/nonexistent"};
	struct cd_config cfg;
	cd_err err = {0};

	assert_int_equal(config_load(&cfg, &src, &err), 0);
	assert_string_equal(cfg.address, "/run/cedana.sock");
	assert_string_equal(cfg.protocol, "unix");
	assert_string_equal(cfg.db_path, "/tmp/cedana.db");
	assert_string_equal(cfg.checkpoint_compression, "none");
	config_free(&cfg);
}

static void test_precedence(void **state)
{
	char *envp[] = {"CEDANA_DB_PATH=/env.db", "CEDANA_LOG_LEVEL=debug", "OTHER=x", NULL};
	struct config_sources src = {
	    .config_dir = dir, .json = "{\"log_level\": \"trace\"}", .envp = envp};
	struct cd_config cfg;
	cd_err err = {0};

	write_config("{\"db\": {\"path\": \"/file.db\"}, \"address\": \"/file.sock\","
	             " \"log_level\": \"warn\"}");
	assert_int_equal(config_load(&cfg, &src, &err), 0);
	assert_string_equal(cfg.address, "/file.sock"); /* file over default */
	assert_string_equal(cfg.db_path, "/env.db");    /* env over file */
	assert_string_equal(cfg.log_level, "trace");    /* --config over env */
	config_free(&cfg);
}

static void test_config_dir_from_env(void **state)
{
	char var[128];
	char *envp[] = {var, NULL};
	struct config_sources src = {.envp = envp};
	struct cd_config cfg;
	cd_err err = {0};

	snprintf(var, sizeof(var), "CEDANA_CONFIG_DIR=%s", dir);
	write_config("{\"checkpoint\": {\"dir\": \"/ckpt\", \"compression\": \"zstd\"}}");
	assert_int_equal(config_load(&cfg, &src, &err), 0);
	assert_string_equal(cfg.checkpoint_dir, "/ckpt");
	assert_string_equal(cfg.checkpoint_compression, "zstd");
	assert_string_equal(cfg.config_dir, dir);
	config_free(&cfg);
}

static void test_malformed_file(void **state)
{
	struct config_sources src = {.config_dir = dir};
	struct cd_config cfg;
	cd_err err = {0};

	write_config("{\"address\": ");
	assert_int_equal(config_load(&cfg, &src, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "malformed JSON"));
	config_free(&cfg);
}

static void test_bad_values(void **state)
{
	char *envp[] = {"CEDANA_PROTOCOL=udp", NULL};
	struct config_sources src = {.config_dir = "/nonexistent", .envp = envp};
	struct cd_config cfg;
	cd_err err = {0};

	assert_int_equal(config_load(&cfg, &src, &err), -EINVAL);
	assert_string_equal(err.msg, "environment CEDANA_PROTOCOL: invalid value \"udp\" for "
	                             "protocol (expected unix|tcp)");
	config_free(&cfg);
	src.envp = NULL;
	src.json = "{\"db\": {\"pth\": \"x\"}}";
	assert_int_equal(config_load(&cfg, &src, &err), -EINVAL);
	assert_string_equal(err.msg, "--config: unknown config key \"db.pth\"");
	config_free(&cfg);
	src.json = "{\"address\": 5}";
	assert_int_equal(config_load(&cfg, &src, &err), -EINVAL);
	assert_string_equal(err.msg, "--config: config key \"address\" must be a string");
	config_free(&cfg);
	src.json = "{\"foo\": 1}";
	assert_int_equal(config_load(&cfg, &src, &err), -EINVAL);
	assert_string_equal(err.msg, "--config: unknown config key \"foo\"");
	config_free(&cfg);
}

static void test_write_defaults_roundtrip(void **state)
{
	struct config_sources src = {.config_dir = dir};
	struct cd_config cfg;
	cd_err err = {0};

	assert_int_equal(config_write_defaults(dir, &err), 0);
	assert_int_equal(config_load(&cfg, &src, &err), 0);
	assert_string_equal(cfg.job_log_dir, "/var/log");
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_config_dir_from_env),
	    cmocka_unit_test(test_malformed_file),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_write_defaults_roundtrip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
