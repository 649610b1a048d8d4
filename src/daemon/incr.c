/* The daemon's dirty-page trackers by job (incr.h). Request threads take
 * and put entries under one lock; the fds are closed outside it. */
#include "daemon/incr.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct incr_entry {
	char jid[DB_JID_MAX];
	char id[DB_JID_MAX]; /* the checkpoint the trackers belong to */
	char *path;
	struct cd_track track;
	struct incr_entry *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct incr_entry *entries;

/* Unlinks jid's entry; the caller frees it. */
static struct incr_entry *unlink_entry(const char *jid)
{
	for (struct incr_entry **p = &entries; *p; p = &(*p)->next) {
		if (strcmp((*p)->jid, jid) != 0)
			continue;
		struct incr_entry *e = *p;
		*p = e->next;
		return e;
	}
	return NULL;
}

static void entry_free(struct incr_entry *e)
{
	if (!e)
		return;
	cd_track_clear(&e->track);
	free(e->path);
	free(e);
}

bool incr_take(const char *jid, struct cd_track *ret, char parent_id[DB_JID_MAX],
               char **ret_parent_path)
{
	pthread_mutex_lock(&lock);
	struct incr_entry *e = unlink_entry(jid);
	pthread_mutex_unlock(&lock);

	if (!e)
		return false;
	*ret = e->track;
	e->track = (struct cd_track){0};
	snprintf(parent_id, DB_JID_MAX, "%s", e->id);
	*ret_parent_path = e->path;
	e->path = NULL;
	entry_free(e);
	return true;
}

void incr_put(const char *jid, const char *id, const char *path, struct cd_track *tr)
{
	struct incr_entry *e = calloc(1, sizeof(*e));

	if (!e || !(e->path = strdup(path))) {
		free(e);
		cd_track_clear(tr); /* the next dump is full */
		return;
	}
	snprintf(e->jid, sizeof(e->jid), "%s", jid);
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->track = *tr;
	*tr = (struct cd_track){0};
	pthread_mutex_lock(&lock);
	struct incr_entry *old = unlink_entry(jid);
	e->next = entries;
	entries = e;
	pthread_mutex_unlock(&lock);
	entry_free(old);
}

void incr_drop(const char *jid)
{
	pthread_mutex_lock(&lock);
	struct incr_entry *e = unlink_entry(jid);
	pthread_mutex_unlock(&lock);
	entry_free(e);
}
