#include "job/codec.h"

#include <sys/wait.h>

json_t *job_checkpoint_to_json(const struct db_checkpoint *cp)
{
	if (!cp)
		return json_null();
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "id", cp->id, "jid", cp->jid,
	                      "time", (json_int_t)cp->time, "size", (json_int_t)cp->size, "path",
	                      cp->path ? cp->path : "", "compression", cp->compression);
	json_t *plugins = cp->plugins ? json_loads(cp->plugins, 0, NULL) : NULL;
	/* what the image's plugins wrote (plugin-NAME.json), by plugin */
	if (o && json_is_object(plugins))
		json_object_set_new(o, "plugins", plugins);
	else
		json_decref(plugins);
	/* an incremental checkpoint: the one it holds the changes since */
	if (o)
		json_object_set_new(o, "parent",
		                    cp->parent[0] ? json_string(cp->parent) : json_null());
	return o;
}

json_t *job_to_json(const struct db_job *job, const char *status, const struct db_checkpoint *cp)
{
	json_error_t jerr;
	json_t *cmd = job->cmd ? json_loads(job->cmd, 0, &jerr) : NULL;

	return json_pack(
	    "{s:s, s:s, s:i, s:s, s:i, s:i, s:o, s:o, s:b, s:o, s:I, s:I, s:b, s:o}", "jid",
	    job->jid, "type", job->type, "pid", (int)job->pid, "status", status, "uid",
	    (int)job->uid, "gid", (int)job->gid, "cmd", cmd ? cmd : json_array(), "log",
	    job->log_path ? json_string(job->log_path) : json_null(), "attachable", job->attachable,
	    "exit_code", job->has_exit_code ? json_integer(job->exit_code) : json_null(),
	    "start_time", (json_int_t)job->start_time, "created_at", (json_int_t)job->created_at,
	    "gpu", job->gpu, "checkpoint", job_checkpoint_to_json(cp));
}

int job_exit_code(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return -1;
}

char *job_argv_to_json(char *const *argv)
{
	json_t *arr = json_array();
	char *text;

	if (!arr)
		return NULL;
	for (char *const *a = argv; a && *a; a++)
		json_array_append_new(arr, json_string(*a));
	text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return text;
}
