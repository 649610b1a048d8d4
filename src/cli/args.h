/* Table-driven command line: each command declares its options and
 * subcommands, and parsing and --help are both generated from the tables.
 * Flags may come before or after positional arguments; "--" ends flags. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "shared/config.h"
#include "shared/error.h"

#define CLI_MAX_OPTS 16

enum cli_opt_type { CLI_BOOL, CLI_STRING };

struct cli_opt {
	const char *name; /* long name, without "--" */
	char short_name;  /* 0 when none */
	enum cli_opt_type type;
	const char *arg_name; /* shown in help for CLI_STRING */
	const char *help;
};

struct cli_ctx;

struct cli_cmd {
	const char *name;
	const char *alias; /* NULL when none */
	const char *summary;
	const char *args_usage; /* positional part of the usage line */
	int min_args;
	int max_args;                      /* -1: unlimited */
	const struct cli_opt *opts;        /* terminated by a zeroed entry; may be NULL */
	const struct cli_cmd *const *subs; /* NULL-terminated; may be NULL */
	int (*run)(struct cli_ctx *ctx);
};

struct cli_val {
	bool set;
	const char *str;
};

struct cli_ctx {
	const struct cli_cmd *cmd;
	const struct cli_cmd *path[8]; /* root .. cmd */
	int depth;
	struct cli_val vals[CLI_MAX_OPTS];
	struct cli_val globals[CLI_MAX_OPTS];
	char **args; /* positional arguments (borrowed from argv) */
	int nargs;
	bool help;
	struct cd_config cfg;
};

extern const struct cli_opt cli_global_opts[];

/* Fills ctx from argv (argv[0] is the program). On a usage error, returns
 * a negative errno with the message in err. ctx->args must be freed with
 * cli_ctx_free. */
int cli_parse(const struct cli_cmd *root, int argc, char **argv, struct cli_ctx *ctx, cd_err *err);
void cli_ctx_free(struct cli_ctx *ctx);

void cli_print_help(const struct cli_ctx *ctx, FILE *out);

/* "cedana job kill": the command path as typed. */
void cli_cmd_path(const struct cli_ctx *ctx, char *buf, size_t len);

/* Option lookup by long name, in the command's options then the globals. */
bool cli_flag(const struct cli_ctx *ctx, const char *name);
const char *cli_str(const struct cli_ctx *ctx, const char *name);
