/* plugin list, features, and the plugin lines of check: the plugins of
 * plugins.dir as this machine loads them (docs/plugins.md). Loaded here, in
 * the CLI: what they say is about this machine, daemon or not. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "plugins/plugins.h"

static const char *plugins_dir(const struct cli_ctx *ctx)
{
	return ctx->cfg.plugins_dir && ctx->cfg.plugins_dir[0] ? ctx->cfg.plugins_dir
	                                                       : cd_plugins_default_dir();
}

static int load(const struct cli_ctx *ctx, struct cd_plugins **ret)
{
	cd_err err = {0};

	if (cd_plugins_load(plugins_dir(ctx), ret, &err) < 0)
		return cli_fail(&err);
	return 0;
}

static const char *version_of(const struct cd_plugin_slot *s)
{
	return s->p && s->p->version ? s->p->version : "-";
}

static int plugin_list(struct cli_ctx *ctx)
{
	struct cd_plugins *ps;
	size_t wn = 4, wv = 7;

	if (load(ctx, &ps) != 0)
		return 1;
	if (ps->n == 0) {
		printf("no plugins in %s\n", plugins_dir(ctx));
		cd_plugins_free(ps);
		return 0;
	}
	for (size_t i = 0; i < ps->n; i++) {
		wn = strlen(ps->v[i].name) > wn ? strlen(ps->v[i].name) : wn;
		wv = strlen(version_of(&ps->v[i])) > wv ? strlen(version_of(&ps->v[i])) : wv;
	}
	printf("%-*s  %-*s  %-11s  %s\n", (int)wn, "NAME", (int)wv, "VERSION", "STATUS", "DETAIL");
	for (size_t i = 0; i < ps->n; i++) {
		const struct cd_plugin_slot *s = &ps->v[i];
		printf("%-*s  %-*s  %-11s  %s\n", (int)wn, s->name, (int)wv, version_of(s),
		       cd_plugin_status_name(s->status), s->detail);
		printf("%-*s  %s\n", (int)wn, "", s->path);
	}
	cd_plugins_free(ps);
	return 0;
}

/* ✔ provided and ready, • provided but not available here, — not
 * provided, ✖ broken (cedana's legend). */
static const char *cell(const struct cd_plugin_slot *s, const char *feature)
{
	if (!s->p || !s->inited || s->status == CD_PLUGIN_BROKEN)
		return "✖";
	if (!cd_plugin_provides(s->p, feature))
		return "—";
	return s->status == CD_PLUGIN_READY ? "✔" : "•";
}

/* The features any loaded plugin provides, each once, in order. */
static size_t collect_features(const struct cd_plugins *ps, const char **v, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ps->n; i++)
		for (size_t k = 0; ps->v[i].p && ps->v[i].p->features && ps->v[i].p->features[k];
		     k++) {
			const char *f = ps->v[i].p->features[k];
			size_t j = 0;
			while (j < n && strcmp(v[j], f) != 0)
				j++;
			if (j == n && n < max)
				v[n++] = f;
		}
	return n;
}

static int features(struct cli_ctx *ctx)
{
	const char *feat[64];
	struct cd_plugins *ps;
	size_t wf = 7;

	if (load(ctx, &ps) != 0)
		return 1;
	if (ps->n == 0) {
		printf("no plugins in %s\n", plugins_dir(ctx));
		cd_plugins_free(ps);
		return 0;
	}
	size_t nf = collect_features(ps, feat, 64);
	for (size_t k = 0; k < nf; k++)
		wf = strlen(feat[k]) > wf ? strlen(feat[k]) : wf;
	printf("%-*s", (int)wf, "FEATURE");
	for (size_t i = 0; i < ps->n; i++)
		printf("  %s", ps->v[i].name);
	putchar('\n');
	for (size_t k = 0; k < nf; k++) {
		printf("%-*s", (int)wf, feat[k]);
		/* each mark under the middle of its plugin's name */
		for (size_t i = 0; i < ps->n; i++) {
			int w = (int)strlen(ps->v[i].name), pad = (w - 1) / 2;
			printf("  %*s%s%*s", pad, "", cell(&ps->v[i], feat[k]), w - 1 - pad, "");
		}
		putchar('\n');
	}
	printf("\n✔ provided and ready  • provided, not available here  — not provided  "
	       "✖ broken\n");
	cd_plugins_free(ps);
	return 0;
}

int cli_check_plugins(const struct cli_ctx *ctx)
{
	struct cd_plugins *ps = NULL;
	cd_err err = {0};
	int failed = 0;

	if (cd_plugins_load(plugins_dir(ctx), &ps, &err) < 0) {
		printf("%-4s %-16s %s\n", "FAIL", "plugins", err.msg);
		return 1;
	}
	/* a plugin not available here (no device) is no failure; a broken one is */
	for (size_t i = 0; i < ps->n; i++) {
		const struct cd_plugin_slot *s = &ps->v[i];
		bool ok = s->status != CD_PLUGIN_BROKEN;
		printf("%-4s %s: %s\n", ok ? "ok" : "FAIL", s->name, s->detail);
		failed += !ok;
	}
	cd_plugins_free(ps);
	return failed;
}

static const struct cli_cmd cmd_plugin_list = {
    .name = "list",
    .summary = "List the plugins of plugins.dir: name, version, status, detail and file",
    .run = plugin_list,
};

static const struct cli_cmd *const plugin_subs[] = {&cmd_plugin_list, NULL};

const struct cli_cmd cmd_plugin = {
    .name = "plugin",
    .summary = "Inspect the plugins this machine loads",
    .subs = plugin_subs,
};

const struct cli_cmd cmd_features = {
    .name = "features",
    .summary = "Print which plugin provides which feature, and whether it works here",
    .run = features,
};
