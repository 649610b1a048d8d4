#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "cli/args.h"

static int ran;

static int run_stub(struct cli_ctx *ctx)
{
	ran++;
	return 0;
}

static const struct cli_opt leaf_opts[] = {
    {"jid", 'j', CLI_STRING, "JID", "job id"},
    {"attach", 'a', CLI_BOOL, NULL, "attach"},
    {0},
};

static const struct cli_cmd leaf = {
    .name = "process",
    .summary = "run a process",
    .args_usage = "CMD [ARGS...]",
    .min_args = 1,
    .max_args = -1,
    .opts = leaf_opts,
    .run = run_stub,
};

static const struct cli_cmd *const group_subs[] = {&leaf, NULL};
static const struct cli_cmd group = {
    .name = "run", .alias = "exec", .summary = "run", .subs = group_subs};
static const struct cli_cmd *const root_subs[] = {&group, NULL};
static const struct cli_cmd root = {.name = "cedana", .subs = root_subs};

static int parse(int argc, char **argv, struct cli_ctx *ctx, cd_err *err)
{
	return cli_parse(&root, argc, argv, ctx, err);
}

static void test_flags_before_and_after_positionals(void **state)
{
	char *argv[] = {"cedana", "run", "process", "-j", "x", "prog", "--attach", "arg", NULL};
	struct cli_ctx ctx;
	cd_err err = {0};

	assert_int_equal(parse(8, argv, &ctx, &err), 0);
	assert_ptr_equal(ctx.cmd, &leaf);
	assert_string_equal(cli_str(&ctx, "jid"), "x");
	assert_true(cli_flag(&ctx, "attach"));
	assert_int_equal(ctx.nargs, 2);
	assert_string_equal(ctx.args[0], "prog");
	assert_string_equal(ctx.args[1], "arg");
	cli_ctx_free(&ctx);
}

static void test_double_dash_ends_flags(void **state)
{
	char *argv[] = {"cedana",  "exec",     "process", "--jid=j", "--",
	                "python3", "--epochs", "10",      NULL};
	struct cli_ctx ctx;
	cd_err err = {0};

	assert_int_equal(parse(8, argv, &ctx, &err), 0);
	assert_string_equal(cli_str(&ctx, "jid"), "j");
	assert_int_equal(ctx.nargs, 3);
	assert_string_equal(ctx.args[1], "--epochs");
	cli_ctx_free(&ctx);
}

static void test_global_flags_anywhere(void **state)
{
	char *argv[] = {"cedana",  "--address", "/tmp/s",          "run",
	                "process", "x",         "--protocol=unix", NULL};
	struct cli_ctx ctx;
	cd_err err = {0};

	assert_int_equal(parse(7, argv, &ctx, &err), 0);
	assert_string_equal(cli_str(&ctx, "address"), "/tmp/s");
	assert_string_equal(cli_str(&ctx, "protocol"), "unix");
	cli_ctx_free(&ctx);
}

static void test_unknown_flag_and_command(void **state)
{
	char *argv1[] = {"cedana", "run", "process", "--frob", "x", NULL};
	char *argv2[] = {"cedana", "frobnicate", NULL};
	struct cli_ctx ctx;
	cd_err err = {0};

	assert_int_equal(parse(5, argv1, &ctx, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown flag: --frob");
	cli_ctx_free(&ctx);
	assert_int_equal(parse(2, argv2, &ctx, &err), -EINVAL);
	assert_string_equal(err.msg, "unknown command \"frobnicate\" for \"cedana\"");
	cli_ctx_free(&ctx);
}

static void test_missing_value_and_args(void **state)
{
	char *argv1[] = {"cedana", "run", "process", "x", "--jid", NULL};
	char *argv2[] = {"cedana", "run", "process", NULL};
	struct cli_ctx ctx;
	cd_err err = {0};

	assert_int_equal(parse(5, argv1, &ctx, &err), -EINVAL);
	assert_string_equal(err.msg, "flag needs an argument: --jid");
	cli_ctx_free(&ctx);
	assert_int_equal(parse(3, argv2, &ctx, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "requires at least 1 argument"));
	cli_ctx_free(&ctx);
}

static void test_help_skips_arg_checks(void **state)
{
	char *argv[] = {"cedana", "run", "process", "--help", NULL};
	struct cli_ctx ctx;
	cd_err err = {0};
	char buf[4096] = "";
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	assert_int_equal(parse(4, argv, &ctx, &err), 0);
	assert_true(ctx.help);
	cli_print_help(&ctx, f);
	fclose(f);
	assert_non_null(strstr(buf, "cedana run process [flags] CMD [ARGS...]"));
	assert_non_null(strstr(buf, "-j, --jid JID"));
	assert_non_null(strstr(buf, "--address ADDR"));
	assert_int_equal(ran, 0);
	cli_ctx_free(&ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flags_before_and_after_positionals),
	    cmocka_unit_test(test_double_dash_ends_flags),
	    cmocka_unit_test(test_global_flags_anywhere),
	    cmocka_unit_test(test_unknown_flag_and_command),
	    cmocka_unit_test(test_missing_value_and_args),
	    cmocka_unit_test(test_help_skips_arg_checks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
