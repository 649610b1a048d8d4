#include "job/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/cleanup.h"

static int read_small(const char *path, char *buf, size_t len, cd_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return cd_err_sys(err, errno, "%s", path);
	n = read(fd, buf, len - 1);
	if (n < 0)
		return cd_err_sys(err, errno, "read %s", path);
	buf[n] = '\0';
	return 0;
}

int proc_read_stat(pid_t pid, struct proc_stat *ret, cd_err *err)
{
	char path[64], buf[2048];
	unsigned long long start;
	char *p;
	int ppid, pgrp;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = read_small(path, buf, sizeof(buf), err);
	if (r < 0)
		return r;
	/* comm may hold spaces and parentheses: fields start after the last ')' */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2,
	                 "%c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
	                 "%*d %llu",
	                 &ret->state, &ppid, &pgrp, &start) != 4)
		return cd_err_set(err, EINVAL, "%s: unexpected format", path);
	ret->ppid = ppid;
	ret->pgrp = pgrp;
	ret->start_time = start;
	return 0;
}

static int parse_triple(const char *status, const char *key, unsigned out[3])
{
	const char *p = strstr(status, key);

	if (!p)
		return -1;
	return sscanf(p + strlen(key), "%u %u %u", &out[0], &out[1], &out[2]) == 3 ? 0 : -1;
}

int proc_read_ids(pid_t pid, struct proc_ids *ret, cd_err *err)
{
	char path[64], buf[4096];
	unsigned u[3], g[3];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	r = read_small(path, buf, sizeof(buf), err);
	if (r < 0)
		return r;
	if (parse_triple(buf, "\nUid:", u) < 0 || parse_triple(buf, "\nGid:", g) < 0)
		return cd_err_set(err, EINVAL, "%s: no Uid/Gid lines", path);
	for (int i = 0; i < 3; i++) {
		ret->uid[i] = u[i];
		ret->gid[i] = g[i];
	}
	return 0;
}

int proc_read_groups(pid_t pid, gid_t **ret_groups, int *ret_n, cd_err *err)
{
	char path[64], buf[4096];
	gid_t *groups = NULL;
	char *p, *end;
	int n = 0, r;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	r = read_small(path, buf, sizeof(buf), err);
	if (r < 0)
		return r;
	p = strstr(buf, "\nGroups:");
	if (!p)
		return cd_err_set(err, EINVAL, "%s: no Groups line", path);
	p += strlen("\nGroups:");
	for (;;) {
		unsigned long g = strtoul(p, &end, 10);
		gid_t *grown;

		if (end == p)
			break;
		grown = realloc(groups, (n + 1) * sizeof(*groups));
		if (!grown) {
			free(groups);
			return cd_err_sys(err, ENOMEM, "groups");
		}
		groups = grown;
		groups[n++] = (gid_t)g;
		p = end;
	}
	*ret_groups = groups;
	*ret_n = n;
	return 0;
}

const char *proc_state_name(char state)
{
	switch (state) {
	case 'R':
		return "running";
	case 'S':
	case 'D':
	case 'I':
		return "sleep";
	case 'T':
	case 't':
		return "stopped";
	case 'Z':
		return "zombie";
	default:
		return "halted";
	}
}

/* Calls fn(child, arg, depth + 1) for each child of pid (the children of
 * all its threads) until one returns true, and returns whether one did; a
 * tree deeper than 64 (a loop of reused pids) is not walked further. */
static bool each_child(pid_t pid, int depth, bool (*fn)(pid_t, const void *, int), const void *arg)
{
	_cleanup_closedir_ DIR *tasks = NULL;
	char path[320], buf[4096];
	struct dirent *de;

	if (depth >= 64)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	tasks = opendir(path);
	while (tasks && (de = readdir(tasks))) {
		cd_err e = {0};
		char *tok, *save;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		if (read_small(path, buf, sizeof(buf), &e) < 0)
			continue;
		for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
			if (fn((pid_t)atoi(tok), arg, depth + 1))
				return true;
	}
	return false;
}

/* Signals pid's children, depth first, then pid: a parent killed first
 * could be gone before its children are read, leaving them orphaned and
 * alive. */
static bool signal_subtree(pid_t pid, const void *sig, int depth)
{
	each_child(pid, depth, signal_subtree, sig);
	kill(pid, *(const int *)sig);
	return false;
}

void proc_signal_tree(pid_t pid, int sig)
{
	signal_subtree(pid, &sig, 0);
}

static bool fds_hold(pid_t pid, const char *prefix)
{
	_cleanup_closedir_ DIR *d = NULL;
	char path[320], link[4096];
	size_t plen = strlen(prefix);
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strncmp(link, prefix, plen))
			return true;
	}
	return false;
}

/* The path of a maps line starts at its first '/' after the fifth field. */
static bool maps_hold(pid_t pid, const char *prefix)
{
	_cleanup_fclose_ FILE *f = NULL;
	char path[64], line[4200];
	size_t plen = strlen(prefix);

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f)) {
		const char *p = strchr(line, '/');

		if (p && !strncmp(p, prefix, plen))
			return true;
	}
	return false;
}

static bool subtree_holds(pid_t pid, const void *prefix, int depth)
{
	return fds_hold(pid, prefix) || maps_hold(pid, prefix) ||
	       each_child(pid, depth, subtree_holds, prefix);
}

bool proc_tree_holds(pid_t pid, const char *prefix)
{
	return pid > 0 && subtree_holds(pid, prefix, 0);
}
