/* The manifest's "plugins": which plugin took part for which task
 * (image.h, docs/image-format.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "engine/image-fields.h"
#include "engine/image.h"

json_t *cd_image_plugins_to_json(const struct cd_image *img)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < img->nplugins; i++) {
		const struct cd_image_plugin *p = &img->plugins[i];
		json_t *o = json_object(), *pids = json_array();
		for (size_t k = 0; k < p->npids; k++)
			json_array_append_new(pids, json_integer(p->pids[k]));
		json_object_set_new(o, "name", json_string(p->name));
		json_object_set_new(o, "pids", pids);
		json_array_append_new(arr, o);
	}
	return arr;
}

void cd_image_plugins_free(struct cd_image *img)
{
	for (size_t i = 0; i < img->nplugins; i++)
		free(img->plugins[i].pids);
	free(img->plugins);
	img->plugins = NULL;
	img->nplugins = 0;
}

struct cd_image_plugin *cd_image_plugin_get(struct cd_image *img, const char *name)
{
	for (size_t i = 0; i < img->nplugins; i++)
		if (strcmp(img->plugins[i].name, name) == 0)
			return &img->plugins[i];
	if (img->nplugins == CD_MAX_IMAGE_PLUGINS || strlen(name) > CD_PLUGIN_NAME_MAX)
		return NULL;
	struct cd_image_plugin *v = realloc(img->plugins, (img->nplugins + 1) * sizeof(*v));
	if (!v)
		return NULL;
	img->plugins = v;
	struct cd_image_plugin *p = &v[img->nplugins++];
	*p = (struct cd_image_plugin){0};
	strcpy(p->name, name);
	return p;
}

static bool valid_name(const char *name)
{
	if (!name[0])
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return false;
	return true;
}

/* Each pid a live (not zombie) task of the image, once. */
static int pids_from_json(json_t *o, struct cd_image *img, struct cd_image_plugin *p, cd_err *err)
{
	json_t *arr;
	int r = cd_json_get_array(o, "pids", 1, CD_MAX_TASKS, &arr, err);

	if (r < 0)
		return r;
	p->pids = calloc(json_array_size(arr), sizeof(*p->pids));
	if (!p->pids)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t k = 0; k < json_array_size(arr); k++) {
		int64_t pid;
		if ((r = cd_json_elem_int(arr, "pids", k, 1, INT32_MAX, &pid, err)) < 0)
			return r;
		const struct cd_task *t = cd_image_task(img, (pid_t)pid);
		if (!t || t->zombie)
			return cd_err_set(
			    err, EINVAL,
			    "field \"pids\": pid %" PRId64 " is not a live task of the image", pid);
		for (size_t j = 0; j < p->npids; j++)
			if (p->pids[j] == pid)
				return cd_err_set(err, EINVAL,
				                  "field \"pids\": %" PRId64 " repeated", pid);
		p->pids[p->npids++] = (pid_t)pid;
	}
	return 0;
}

static int plugin_from_json(json_t *o, struct cd_image *img, size_t i, cd_err *err)
{
	struct cd_image_plugin *p = &img->plugins[i];
	const char *name;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_json_get_str(o, "name", CD_PLUGIN_NAME_MAX, &name, err)) < 0)
		return r;
	if (!valid_name(name))
		return cd_err_set(err, EINVAL, "field \"name\": \"%s\" is not a plugin name", name);
	for (size_t k = 0; k < i; k++)
		if (strcmp(img->plugins[k].name, name) == 0)
			return cd_err_set(err, EINVAL, "field \"name\": %s repeated", name);
	strcpy(p->name, name);
	return pids_from_json(o, img, p, err);
}

/* Optional: images before plugins, and those no plugin took part in, have
 * none. */
int cd_image_plugins_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	json_t *arr, *o;
	size_t i;
	int r;

	if (!json_object_get(root, "plugins"))
		return 0;
	if ((r = cd_json_get_array(root, "plugins", 0, CD_MAX_IMAGE_PLUGINS, &arr, err)) < 0)
		return r;
	img->plugins = calloc(json_array_size(arr) + 1, sizeof(*img->plugins));
	if (!img->plugins)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(arr, i, o)
	{
		img->nplugins++; /* counted first: freed when refused */
		if ((r = plugin_from_json(o, img, i, err)) < 0)
			return cd_err_wrap(err, "plugin %zu", i);
	}
	return 0;
}
