#include "cli/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct cli_opt cli_global_opts[] = {
    {"address", 0, CLI_STRING, "ADDR", "daemon address (socket path, or host:port for tcp)"},
    {"protocol", 0, CLI_STRING, "PROTO", "daemon protocol: unix or tcp"},
    {"config", 0, CLI_STRING, "JSON", "one-time config, merged over the config file"},
    {"config-dir", 0, CLI_STRING, "DIR",
     "directory of config.json (default $CEDANA_CONFIG_DIR, else /etc/cedana)"},
    {"help", 'h', CLI_BOOL, NULL, "show help for the command"},
    {"version", 0, CLI_BOOL, NULL, "print the version and exit"},
    {0},
};

static size_t opt_count(const struct cli_opt *opts)
{
	size_t n = 0;

	while (opts && opts[n].name)
		n++;
	return n;
}

/* Finds an option by long name (len bytes of name) or by short letter. */
static const struct cli_opt *opt_find(const struct cli_opt *opts, const char *name, size_t len,
                                      char short_name, size_t *ret_idx)
{
	for (size_t i = 0; opts && opts[i].name; i++) {
		bool hit = short_name ? opts[i].short_name == short_name
		                      : strlen(opts[i].name) == len &&
		                            strncmp(opts[i].name, name, len) == 0;
		if (hit) {
			*ret_idx = i;
			return &opts[i];
		}
	}
	return NULL;
}

static const struct cli_cmd *sub_find(const struct cli_cmd *cmd, const char *name)
{
	for (size_t i = 0; cmd->subs && cmd->subs[i]; i++) {
		const struct cli_cmd *s = cmd->subs[i];

		if (strcmp(s->name, name) == 0 || (s->alias && strcmp(s->alias, name) == 0))
			return s;
	}
	return NULL;
}

void cli_cmd_path(const struct cli_ctx *ctx, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < ctx->depth && used < len; i++)
		used += snprintf(buf + used, len - used, "%s%s", i ? " " : "", ctx->path[i]->name);
}

/* Parses one flag token at argv[*i]; may consume the next token as value. */
static int parse_flag(struct cli_ctx *ctx, int argc, char **argv, int *i, cd_err *err)
{
	const char *tok = argv[*i];
	const char *value = NULL;
	const struct cli_opt *opt;
	struct cli_val *slot;
	char short_name = 0;
	const char *name;
	size_t len, idx;

	if (tok[1] == '-') {
		const char *eq = strchr(tok + 2, '=');

		name = tok + 2;
		len = eq ? (size_t)(eq - name) : strlen(name);
		value = eq ? eq + 1 : NULL;
	} else {
		if (tok[2] != '\0')
			return cd_err_set(err, EINVAL, "unknown shorthand flag: '%c' in %s", tok[1],
			                  tok);
		name = tok + 1;
		len = 1;
		short_name = tok[1];
	}
	opt = opt_find(ctx->cmd->opts, name, len, short_name, &idx);
	slot = opt ? &ctx->vals[idx] : NULL;
	if (!opt) {
		opt = opt_find(cli_global_opts, name, len, short_name, &idx);
		slot = opt ? &ctx->globals[idx] : NULL;
	}
	if (!opt)
		return cd_err_set(err, EINVAL, "unknown flag: %s", tok);
	if (opt->type == CLI_BOOL) {
		if (value && strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
			return cd_err_set(err, EINVAL, "invalid value \"%s\" for --%s", value,
			                  opt->name);
		slot->set = !value || strcmp(value, "true") == 0;
		return 0;
	}
	if (!value) {
		if (*i + 1 >= argc)
			return cd_err_set(err, EINVAL, "flag needs an argument: --%s", opt->name);
		value = argv[++*i];
	}
	slot->set = true;
	slot->str = value;
	return 0;
}

static int push_arg(struct cli_ctx *ctx, char *arg, cd_err *err)
{
	char **grown = realloc(ctx->args, (ctx->nargs + 2) * sizeof(*grown));

	if (!grown)
		return cd_err_sys(err, ENOMEM, "arguments");
	ctx->args = grown;
	ctx->args[ctx->nargs++] = arg;
	ctx->args[ctx->nargs] = NULL;
	return 0;
}

/* A positional token either selects a subcommand or is an argument. */
static int parse_positional(struct cli_ctx *ctx, char *tok, cd_err *err)
{
	const struct cli_cmd *sub;
	char path[256];

	if (ctx->cmd->subs && ctx->nargs == 0) {
		sub = sub_find(ctx->cmd, tok);
		if (sub && ctx->depth < (int)(sizeof(ctx->path) / sizeof(ctx->path[0]))) {
			/* options given so far belonged to the parent: drop them */
			memset(ctx->vals, 0, sizeof(ctx->vals));
			ctx->cmd = sub;
			ctx->path[ctx->depth++] = sub;
			return 0;
		}
		if (!ctx->cmd->run) {
			cli_cmd_path(ctx, path, sizeof(path));
			return cd_err_set(err, EINVAL, "unknown command \"%s\" for \"%s\"", tok,
			                  path);
		}
	}
	return push_arg(ctx, tok, err);
}

static int check_arg_count(const struct cli_ctx *ctx, cd_err *err)
{
	const struct cli_cmd *c = ctx->cmd;
	char path[256];

	cli_cmd_path(ctx, path, sizeof(path));
	if (ctx->nargs < c->min_args)
		return cd_err_set(err, EINVAL, "\"%s\" requires at least %d argument%s: %s", path,
		                  c->min_args, c->min_args == 1 ? "" : "s", c->args_usage);
	if (c->max_args >= 0 && ctx->nargs > c->max_args) {
		if (c->max_args == 0)
			return cd_err_set(err, EINVAL, "\"%s\" takes no arguments, got \"%s\"",
			                  path, ctx->args[0]);
		return cd_err_set(err, EINVAL, "\"%s\" takes at most %d argument%s: %s", path,
		                  c->max_args, c->max_args == 1 ? "" : "s", c->args_usage);
	}
	return 0;
}

int cli_parse(const struct cli_cmd *root, int argc, char **argv, struct cli_ctx *ctx, cd_err *err)
{
	bool flags_done = false;
	int r;

	memset(ctx, 0, sizeof(*ctx));
	ctx->cmd = root;
	ctx->path[ctx->depth++] = root;
	if (opt_count(root->opts) > CLI_MAX_OPTS)
		return cd_err_set(err, E2BIG, "too many options");
	for (int i = 1; i < argc; i++) {
		char *tok = argv[i];

		if (!flags_done && strcmp(tok, "--") == 0) {
			flags_done = true;
			continue;
		}
		if (!flags_done && tok[0] == '-' && tok[1] != '\0')
			r = parse_flag(ctx, argc, argv, &i, err);
		else
			r = parse_positional(ctx, tok, err);
		if (r < 0)
			return r;
	}
	ctx->help = cli_flag(ctx, "help");
	if (ctx->help || cli_flag(ctx, "version") || !ctx->cmd->run)
		return 0;
	return check_arg_count(ctx, err);
}

void cli_ctx_free(struct cli_ctx *ctx)
{
	free(ctx->args);
	ctx->args = NULL;
	config_free(&ctx->cfg);
}

static const struct cli_val *val_find(const struct cli_ctx *ctx, const char *name)
{
	size_t idx;

	if (opt_find(ctx->cmd->opts, name, strlen(name), 0, &idx))
		return &ctx->vals[idx];
	if (opt_find(cli_global_opts, name, strlen(name), 0, &idx))
		return &ctx->globals[idx];
	return NULL;
}

bool cli_flag(const struct cli_ctx *ctx, const char *name)
{
	const struct cli_val *v = val_find(ctx, name);

	return v && v->set;
}

const char *cli_str(const struct cli_ctx *ctx, const char *name)
{
	const struct cli_val *v = val_find(ctx, name);

	return v && v->set ? v->str : NULL;
}

static void print_opts(const struct cli_opt *opts, FILE *out)
{
	for (size_t i = 0; opts && opts[i].name; i++) {
		const struct cli_opt *o = &opts[i];
		char left[64];

		snprintf(left, sizeof(left), "%s%c%s--%s%s%s", o->short_name ? "-" : "   ",
		         o->short_name ? o->short_name : ' ', o->short_name ? ", " : "", o->name,
		         o->type == CLI_STRING ? " " : "",
		         o->type == CLI_STRING ? o->arg_name : "");
		fprintf(out, "  %-28s %s\n", left, o->help);
	}
}

void cli_print_help(const struct cli_ctx *ctx, FILE *out)
{
	const struct cli_cmd *c = ctx->cmd;
	char path[256];

	cli_cmd_path(ctx, path, sizeof(path));
	if (c->summary)
		fprintf(out, "%s\n\n", c->summary);
	fprintf(out, "Usage:\n");
	if (c->run)
		fprintf(out, "  %s [flags]%s%s\n", path, c->args_usage ? " " : "",
		        c->args_usage ? c->args_usage : "");
	if (c->subs)
		fprintf(out, "  %s COMMAND\n", path);
	if (c->alias)
		fprintf(out, "\nAlias:\n  %s\n", c->alias);
	if (c->subs) {
		fprintf(out, "\nCommands:\n");
		for (size_t i = 0; c->subs[i]; i++)
			fprintf(out, "  %-12s %s\n", c->subs[i]->name, c->subs[i]->summary);
	}
	if (opt_count(c->opts)) {
		fprintf(out, "\nFlags:\n");
		print_opts(c->opts, out);
	}
	fprintf(out, "\nGlobal flags:\n");
	print_opts(cli_global_opts, out);
	if (c->subs)
		fprintf(out, "\nUse \"%s COMMAND --help\" for more about a command.\n", path);
}
