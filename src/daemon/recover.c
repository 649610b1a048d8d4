#include "daemon/recover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "job/checkpoint.h"
#include "shared/cleanup.h"
#include "shared/log.h"
#include "storage/storage.h"

/* Removes the entries of dir whose names start with one of the prefixes:
 * the worker's scratch directory (.NAME.dump-XXXXXX) and the archive being
 * written (.NAME.SUFFIX.tmp-XXXXXX). How many. */
static int remove_prefixed(const char *dir, const char *const prefixes[], size_t n)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	int removed = 0;

	while (d && (de = readdir(d))) {
		for (size_t i = 0; i < n; i++) {
			_cleanup_free_ char *path = NULL;
			cd_err ignored = {0};

			if (strncmp(de->d_name, prefixes[i], strlen(prefixes[i])) != 0)
				continue;
			if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
				path = NULL;
				break;
			}
			if (storage_remove(path, &ignored) == 0)
				removed++;
			break;
		}
	}
	return removed;
}

static int record_finished(struct job_manager *jm, const struct db_inflight *op, bool *ret_added,
                           cd_err *err)
{
	struct db_checkpoint cp = {.time = time(NULL), .path = op->dest};
	storage_compression c;
	uint64_t size = 0;
	int r;

	r = storage_detect(op->dest, &c, err);
	if (r == 0)
		r = storage_size(op->dest, &size, err);
	if (r < 0)
		return r;
	job_checkpoint_new_id(cp.id, sizeof(cp.id));
	snprintf(cp.jid, sizeof(cp.jid), "%s", op->jid);
	snprintf(cp.compression, sizeof(cp.compression), "%s", storage_compression_name(c));
	cp.size = (int64_t)size;
	return job_manager_add_checkpoint_once(jm, &cp, ret_added, err);
}

/* The scratch prefix is DIR/.NAME.dump-; the archive's is DIR/.BASE.tmp-. */
static int remove_dump_leftovers(const struct db_inflight *op)
{
	_cleanup_free_ char *dir = strdup(op->dest), *tmp = NULL;
	const char *slash = strrchr(op->scratch, '/'), *base = strrchr(op->dest, '/');

	if (!slash || !base || !dir || asprintf(&tmp, ".%s.tmp-", base + 1) < 0)
		return 0;
	dir[base - op->dest] = '\0';
	const char *prefixes[] = {slash + 1, tmp};
	return remove_prefixed(dir, prefixes, 2);
}

/* A finished checkpoint (at its final path: the rename is the last step of
 * packing) is recorded; the scratch directory and a temporary archive go
 * either way. The tree ran on: its worker died with the daemon. */
static json_t *recover_dump(struct job_manager *jm, const struct db_inflight *op)
{
	int removed = remove_dump_leftovers(op);
	struct stat st;
	bool added = false;
	cd_err err = {0};

	if (lstat(op->dest, &st) < 0)
		return json_sprintf("dump%s%s to %s: unfinished: removed %d partial file(s); the "
		                    "process ran on",
		                    op->jid[0] ? " of job " : "", op->jid, op->dest, removed);
	if (!op->jid[0])
		return json_sprintf("dump to %s: finished (not a job: nothing to record)",
		                    op->dest);
	if (record_finished(jm, op, &added, &err) < 0)
		return json_sprintf("dump of job %s: %s reached its path but was not recorded: %s",
		                    op->jid, op->dest, err.msg);
	return json_sprintf("dump of job %s: %s %s", op->jid, op->dest,
	                    added ? "was finished: recorded as a checkpoint"
	                          : "was already recorded");
}

static json_t *recover_restore(struct job_manager *jm, const struct db_inflight *op)
{
	bool scratch = op->scratch[0] && access(op->scratch, F_OK) == 0;
	bool log = op->log_path[0] && !job_manager_log_in_use(jm, op->log_path) &&
	           unlink(op->log_path) == 0;
	cd_err ignored = {0};

	if (scratch)
		storage_remove(op->scratch, &ignored);
	return json_sprintf("restore%s%s: unfinished: removed %s%s%s", op->jid[0] ? " of job " : "",
	                    op->jid, scratch ? op->scratch : "no scratch directory",
	                    log ? " and the output file " : "", log ? op->log_path : "");
}

json_t *recover_inflight(struct job_manager *jm)
{
	json_t *report = json_array();
	struct db_inflight *ops = NULL;
	cd_err err = {0};
	size_t n = 0;

	if (job_manager_journal_list(jm, &ops, &n, &err) < 0) {
		log_error("recovery: %s", err.msg);
		return report;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *what = strcmp(ops[i].kind, "dump") == 0 ? recover_dump(jm, &ops[i])
		                                                : recover_restore(jm, &ops[i]);

		log_warn("recovery: %s", json_string_value(what));
		json_array_append_new(report, what);
		job_manager_journal_end(jm, ops[i].id);
	}
	db_inflight_list_free(ops, n);
	return report;
}
