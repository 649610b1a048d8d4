#include "engine/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "shared/cleanup.h"

static FILE *proc_open(pid_t pid, const char *name, cd_err *err)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	f = fopen(path, "re");
	if (!f)
		cd_err_sys(err, errno, "open %s", path);
	return f;
}

/* smaps in reads smaller than one mapping's entry (each is about 1 KiB).
 * The kernel formats entries into a buffer of a page, and an entry that
 * does not fit after the ones before it in one read is thrown away and
 * made again for the next read: with stdio's 4 KiB reads that was one
 * entry in three or four, and when it was a big mapping's, its page walk
 * (the cost of smaps) was done twice (a 1 GiB process: 36 ms a read of
 * smaps in 4 KiB reads, 19 ms in 512-byte ones). A read that asks for
 * less than an entry makes one entry a read, never two. */
#define SMAPS_READ 512

/* buf (SMAPS_READ bytes) must outlive the stream. */
static FILE *smaps_open(pid_t pid, char *buf, cd_err *err)
{
	FILE *f = proc_open(pid, "smaps", err);

	if (f)
		setvbuf(f, buf, _IOFBF, SMAPS_READ);
	return f;
}

static int parse_map_line(const char *line, struct cd_proc_map *m)
{
	char perms[8];
	unsigned maj, min;
	int n = 0;

	memset(m, 0, sizeof(*m));
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64 " %n", &m->start,
	           &m->end, perms, &m->pgoff, &maj, &min, &m->ino, &n) < 7)
		return -EINVAL;
	m->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
	          (perms[2] == 'x' ? PROT_EXEC : 0);
	m->shared = perms[3] == 's';
	m->dev = makedev(maj, min);
	snprintf(m->path, sizeof(m->path), "%s", line + n);
	m->path[strcspn(m->path, "\n")] = 0;
	return 0;
}

static void set_vmflags(struct cd_proc_map *m, const char *names)
{
	names += strspn(names, " ");
	snprintf(m->vmflags, sizeof(m->vmflags), "%s", names);
	m->vmflags[strcspn(m->vmflags, "\n")] = 0;
	m->growsdown = cd_proc_vmflag(m, "gd");
}

bool cd_proc_vmflag(const struct cd_proc_map *m, const char *name)
{
	size_t len = strlen(name);

	for (const char *p = m->vmflags; *p; p += strspn(p, " ")) {
		size_t n = strcspn(p, " ");
		if (n == len && !strncmp(p, name, len))
			return true;
		p += n;
	}
	return false;
}

static int read_smaps(pid_t pid, struct cd_proc_map **ret, size_t *ret_n, cd_err *err)
{
	char buf[SMAPS_READ];
	_cleanup_fclose_ FILE *f = smaps_open(pid, buf, err);
	_cleanup_free_ struct cd_proc_map *maps = NULL;
	_cleanup_free_ char *line = NULL;
	size_t n = 0, cap = 0, linecap = 0;

	if (!f)
		return -err->code;
	while (getline(&line, &linecap, f) > 0) {
		if (!strncmp(line, "VmFlags:", 8)) {
			if (n)
				set_vmflags(&maps[n - 1], line + 8);
			continue;
		}
		if (!strncmp(line, "ProtectionKey:", 14)) {
			if (n)
				maps[n - 1].pkey = atoi(line + 14);
			continue;
		}
		/* A mapping line starts with a hex address followed by '-'. */
		const char *p = line;
		while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
			p++;
		if (*p != '-' || p == line)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			struct cd_proc_map *nm = realloc(maps, cap * sizeof(*maps));
			if (!nm)
				return cd_err_set(err, ENOMEM, "out of memory");
			maps = nm;
		}
		if (parse_map_line(line, &maps[n]) < 0)
			return cd_err_set(err, EINVAL, "pid %d: cannot parse smaps line: %s", pid,
			                  line);
		n++;
	}
	*ret = TAKE_PTR(maps);
	*ret_n = n;
	return 0;
}

static uint64_t partial_reads; /* cd_proc_map_at's, counted with the cache's */

int cd_proc_map_at(pid_t pid, uint64_t addr, struct cd_proc_map *ret, cd_err *err)
{
	char buf[SMAPS_READ];
	_cleanup_fclose_ FILE *f = smaps_open(pid, buf, err);
	_cleanup_free_ char *line = NULL;
	size_t linecap = 0;
	bool found = false;

	if (!f)
		return -err->code;
	partial_reads++;
	while (getline(&line, &linecap, f) > 0) {
		if (!strncmp(line, "VmFlags:", 8)) {
			if (found)
				set_vmflags(ret, line + 8);
			continue;
		}
		if (!strncmp(line, "ProtectionKey:", 14)) {
			if (found)
				ret->pkey = atoi(line + 14);
			continue;
		}
		const char *p = line;
		while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
			p++;
		if (*p != '-' || p == line)
			continue;
		/* the next mapping: the one asked for is whole */
		if (found)
			return 0;
		struct cd_proc_map m;
		if (parse_map_line(line, &m) < 0)
			return cd_err_set(err, EINVAL, "pid %d: cannot parse smaps line: %s", pid,
			                  line);
		if (m.start <= addr && addr < m.end) {
			*ret = m;
			found = true;
		}
	}
	if (!found)
		return cd_err_set(err, ENOENT, "pid %d: no mapping at %" PRIx64, pid, addr);
	return 0;
}

/* ---- the smaps cache of a dump ----
 *
 * smaps costs a walk of the task's page tables for its Rss and Pss (about
 * 5 ms a GiB), and a dump reads a task's mappings several times (the
 * checks, the list of mappings, the flags of a new mapping, the list again
 * for the pages). While the tree is stopped its mappings change only by
 * the engine's own calls, and /proc/PID/maps, which walks no page, shows
 * every change of a range, a protection or a name: a listing is used again
 * while maps reads the same. The changes maps does not show (the VmFlags of
 * madvise, mlock, a userfaultfd registration) are dropped by name
 * (cd_proc_maps_forget). Several listings per task are kept: the engine's
 * scratch page comes and goes, and the listing without it is needed after
 * it is gone. */

#define MAPS_CACHE_PER_TASK 4

struct maps_entry {
	pid_t pid;
	char *maps; /* /proc/PID/maps as read with the listing */
	size_t maps_len;
	struct cd_proc_map *list;
	size_t n;
	uint64_t used; /* for the eviction of the oldest of a task's listings */
};

static struct {
	bool on;
	struct maps_entry *e;
	size_t n;
	uint64_t clock;
	uint64_t reads, hits; /* for the tests and the docs' figures */
} maps_cache;

static void entry_free(struct maps_entry *e)
{
	free(e->maps);
	free(e->list);
	*e = (struct maps_entry){0};
}

static void entry_drop(size_t i)
{
	entry_free(&maps_cache.e[i]);
	maps_cache.e[i] = maps_cache.e[--maps_cache.n];
}

void cd_proc_maps_cache_begin(void)
{
	cd_proc_maps_cache_end();
	maps_cache.on = true;
	maps_cache.reads = maps_cache.hits = partial_reads = 0;
}

void cd_proc_maps_cache_end(void)
{
	while (maps_cache.n)
		entry_drop(maps_cache.n - 1);
	free(maps_cache.e);
	maps_cache.e = NULL;
	maps_cache.on = false;
}

void cd_proc_maps_forget(pid_t pid)
{
	for (size_t i = maps_cache.n; i-- > 0;)
		if (pid <= 0 || maps_cache.e[i].pid == pid)
			entry_drop(i);
}

void cd_proc_maps_cache_counts(uint64_t *reads, uint64_t *hits)
{
	*reads = maps_cache.reads + partial_reads;
	*hits = maps_cache.hits;
}

static int copy_list(const struct maps_entry *e, struct cd_proc_map **ret, size_t *ret_n,
                     cd_err *err)
{
	struct cd_proc_map *l = malloc((e->n ? e->n : 1) * sizeof(*l));

	if (!l)
		return cd_err_set(err, ENOMEM, "out of memory");
	if (e->n && e->list)
		memcpy(l, e->list, e->n * sizeof(*l));
	*ret = l;
	*ret_n = e->n;
	return 0;
}

static struct maps_entry *cache_find(pid_t pid, const char *maps, size_t len)
{
	for (size_t i = 0; i < maps_cache.n; i++) {
		struct maps_entry *e = &maps_cache.e[i];
		if (e->pid == pid && e->maps_len == len && !memcmp(e->maps, maps, len))
			return e;
	}
	return NULL;
}

/* Room for one more listing of pid: its oldest goes when it has enough. */
static int cache_slot(pid_t pid, struct maps_entry **ret, cd_err *err)
{
	size_t count = 0, oldest = SIZE_MAX;

	for (size_t i = 0; i < maps_cache.n; i++)
		if (maps_cache.e[i].pid == pid) {
			count++;
			if (oldest == SIZE_MAX || maps_cache.e[i].used < maps_cache.e[oldest].used)
				oldest = i;
		}
	if (count >= MAPS_CACHE_PER_TASK)
		entry_drop(oldest);
	struct maps_entry *ne = reallocarray(maps_cache.e, maps_cache.n + 1, sizeof(*ne));
	if (!ne)
		return cd_err_set(err, ENOMEM, "out of memory");
	maps_cache.e = ne;
	*ret = &ne[maps_cache.n++];
	**ret = (struct maps_entry){0};
	return 0;
}

static int cached_maps(pid_t pid, struct cd_proc_map **ret, size_t *ret_n, cd_err *err)
{
	_cleanup_free_ char *maps = NULL;
	_cleanup_free_ struct cd_proc_map *list = NULL;
	struct maps_entry *e;
	size_t len, n;
	int r = cd_proc_read_file(pid, "maps", &maps, &len, err);

	if (r < 0)
		return r;
	if ((e = cache_find(pid, maps, len))) {
		maps_cache.hits++;
		e->used = ++maps_cache.clock;
		return copy_list(e, ret, ret_n, err);
	}
	if ((r = read_smaps(pid, &list, &n, err)) < 0 || (r = cache_slot(pid, &e, err)) < 0)
		return r;
	maps_cache.reads++;
	*e = (struct maps_entry){.pid = pid,
	                         .maps = TAKE_PTR(maps),
	                         .maps_len = len,
	                         .list = TAKE_PTR(list),
	                         .n = n,
	                         .used = ++maps_cache.clock};
	return copy_list(e, ret, ret_n, err);
}

int cd_proc_maps(pid_t pid, struct cd_proc_map **ret, size_t *ret_n, cd_err *err)
{
	if (maps_cache.on)
		return cached_maps(pid, ret, ret_n, err);
	return read_smaps(pid, ret, ret_n, err);
}

int cd_proc_read_file(pid_t pid, const char *name, char **ret, size_t *ret_len, cd_err *err)
{
	char path[64];
	size_t len = 0, cap = 4096;
	_cleanup_free_ char *buf = malloc(cap + 1);
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", path);
	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (;;) {
		if (len == cap) {
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb)
				return cd_err_set(err, ENOMEM, "out of memory");
			buf = nb;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cd_err_sys(err, errno, "read %s", path);
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int cd_proc_stat(pid_t pid, struct cd_proc_stat *st, cd_err *err)
{
	_cleanup_free_ char *buf = NULL;
	unsigned long long v[52];
	char *p, *q;
	int r = cd_proc_read_file(pid, "stat", &buf, NULL, err);

	if (r < 0)
		return r;
	memset(st, 0, sizeof(*st));
	p = strchr(buf, '(');
	q = strrchr(buf, ')');
	if (!p || !q || q[1] != ' ')
		return cd_err_set(err, EINVAL, "pid %d: cannot parse stat", pid);
	size_t cl =
	    (size_t)(q - p - 1) < sizeof(st->comm) - 1 ? (size_t)(q - p - 1) : sizeof(st->comm) - 1;
	memcpy(st->comm, p + 1, cl);
	st->state = q[2];
	/* Fields from 4 (ppid) on; v[i] is field i+1 of proc(5), 1-based. */
	p = q + 4;
	for (int i = 3; i < 52; i++) {
		v[i] = strtoull(p, &q, 10);
		if (q == p)
			return cd_err_set(err, EINVAL, "pid %d: short stat", pid);
		p = q;
	}
	st->ppid = (pid_t)v[3];
	st->pgrp = (pid_t)v[4];
	st->session = (pid_t)v[5];
	st->tty_nr = (int)v[6];
	st->exit_code = (int)v[51];
	st->nice = (int)(long long)v[18];
	st->num_threads = (int)v[19];
	st->start_code = v[25];
	st->end_code = v[26];
	st->start_stack = v[27];
	st->start_data = v[44];
	st->end_data = v[45];
	st->start_brk = v[46];
	st->arg_start = v[47];
	st->arg_end = v[48];
	st->env_start = v[49];
	st->env_end = v[50];
	return 0;
}

static void parse_ids(const char *s, uint32_t *out, size_t max, size_t *ret_n)
{
	size_t n = 0;
	char *end;

	while (n < max) {
		unsigned long v = strtoul(s, &end, 10);
		if (end == s)
			break;
		out[n++] = (uint32_t)v;
		s = end;
	}
	if (ret_n)
		*ret_n = n;
}

/* The Groups line can hold 65536 ids (over 700 KB), so the whole file is
 * read, not a line at a time into a fixed buffer. */
int cd_proc_groups(pid_t pid, uint32_t **ret, size_t *ret_n, cd_err *err)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ uint32_t *groups = NULL;
	size_t n = 0, cap = 0;
	char *p, *eol;
	int r = cd_proc_read_file(pid, "status", &buf, NULL, err);

	if (r < 0)
		return r;
	p = strstr(buf, "\nGroups:");
	if (!p)
		return cd_err_set(err, EINVAL, "pid %d: no Groups in status", pid);
	p += strlen("\nGroups:");
	if ((eol = strchr(p, '\n')))
		*eol = 0; /* strtoul would skip the newline */
	for (;;) {
		char *end;
		unsigned long g = strtoul(p, &end, 10);
		if (end == p)
			break;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			uint32_t *ng = reallocarray(groups, cap, sizeof(*groups));
			if (!ng)
				return cd_err_set(err, ENOMEM, "out of memory");
			groups = ng;
		}
		groups[n++] = (uint32_t)g;
		p = end;
	}
	if (!groups && !(groups = calloc(1, sizeof(*groups))))
		return cd_err_set(err, ENOMEM, "out of memory");
	*ret = TAKE_PTR(groups);
	*ret_n = n;
	return 0;
}

int cd_proc_status(pid_t pid, struct cd_proc_status *st, cd_err *err)
{
	_cleanup_fclose_ FILE *f = proc_open(pid, "status", err);
	char line[1024];

	if (!f)
		return -err->code;
	memset(st, 0, sizeof(*st));
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ':');
		if (!v)
			continue;
		*v++ = 0;
		if (!strcmp(line, "Uid"))
			parse_ids(v, st->uid, 4, NULL);
		else if (!strcmp(line, "Gid"))
			parse_ids(v, st->gid, 4, NULL);
		else if (!strcmp(line, "CapInh"))
			st->cap_inh = strtoull(v, NULL, 16);
		else if (!strcmp(line, "CapPrm"))
			st->cap_prm = strtoull(v, NULL, 16);
		else if (!strcmp(line, "CapEff"))
			st->cap_eff = strtoull(v, NULL, 16);
		else if (!strcmp(line, "CapBnd"))
			st->cap_bnd = strtoull(v, NULL, 16);
		else if (!strcmp(line, "CapAmb"))
			st->cap_amb = strtoull(v, NULL, 16);
		else if (!strcmp(line, "NoNewPrivs"))
			st->no_new_privs = atoi(v);
		else if (!strcmp(line, "Seccomp"))
			st->seccomp = atoi(v);
		else if (!strcmp(line, "Umask"))
			st->umask = (unsigned)strtoul(v, NULL, 8);
		else if (!strcmp(line, "TracerPid"))
			st->tracer = (pid_t)strtol(v, NULL, 10);
		else if (!strcmp(line, "ShdPnd"))
			st->shdpnd = strtoull(v, NULL, 16);
	}
	return 0;
}

int cd_proc_children(pid_t pid, pid_t **ret, size_t *ret_n, cd_err *err)
{
	char name[64];
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ pid_t *kids = NULL;
	size_t n = 0, cap = 0;
	char *p, *end;

	snprintf(name, sizeof(name), "task/%d/children", pid);
	int r = cd_proc_read_file(pid, name, &buf, NULL, err);
	if (r < 0)
		return r;
	for (p = buf;; p = end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			pid_t *nk = realloc(kids, cap * sizeof(*kids));
			if (!nk)
				return cd_err_set(err, ENOMEM, "out of memory");
			kids = nk;
		}
		kids[n++] = (pid_t)v;
	}
	*ret = TAKE_PTR(kids);
	*ret_n = n;
	return 0;
}

int cd_proc_readlink(pid_t pid, const char *name, char **ret, cd_err *err)
{
	char path[96], buf[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return cd_err_sys(err, errno, "readlink %s", path);
	buf[n] = 0;
	*ret = strdup(buf);
	return *ret ? 0 : cd_err_set(err, ENOMEM, "out of memory");
}

int cd_proc_fdinfo(pid_t pid, int fd, struct cd_proc_fdinfo *fi, cd_err *err)
{
	char name[64], line[256];

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	_cleanup_fclose_ FILE *f = proc_open(pid, name, err);
	if (!f)
		return -err->code;
	memset(fi, 0, sizeof(*fi));
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "pos:", 4))
			fi->pos = strtoull(line + 4, NULL, 10);
		else if (!strncmp(line, "flags:", 6))
			fi->flags = (int)strtol(line + 6, NULL, 8);
		else if (!strncmp(line, "mnt_id:", 7))
			fi->mnt_id = atoi(line + 7);
	}
	return 0;
}

int cd_proc_fdinfo_u64(pid_t pid, int fd, const char *key, int base, uint64_t *ret, cd_err *err)
{
	char name[64], line[256];
	size_t klen = strlen(key);

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	_cleanup_fclose_ FILE *f = proc_open(pid, name, err);
	if (!f)
		return -err->code;
	while (fgets(line, sizeof(line), f)) {
		char *end;
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		errno = 0;
		*ret = strtoull(line + klen + 1, &end, base);
		if (errno || end == line + klen + 1)
			return cd_err_set(err, EINVAL, "pid %d: fd %d: fdinfo %s: cannot parse",
			                  pid, fd, key);
		return 0;
	}
	return cd_err_set(err, ENOENT, "pid %d: fd %d: fdinfo has no %s", pid, fd, key);
}

int cd_proc_limits(pid_t pid, uint64_t rlim[][2], size_t n, cd_err *err)
{
	/* The rows of /proc/PID/limits, in RLIMIT_* order. */
	_cleanup_fclose_ FILE *f = proc_open(pid, "limits", err);
	char line[256];
	size_t i = 0;

	if (!f)
		return -err->code;
	if (!fgets(line, sizeof(line), f))
		return cd_err_set(err, EINVAL, "pid %d: empty limits", pid);
	while (i < n && fgets(line, sizeof(line), f)) {
		char cur[32], max[32];
		if (strlen(line) < 26 || sscanf(line + 26, "%31s %31s", cur, max) != 2)
			return cd_err_set(err, EINVAL, "pid %d: cannot parse limits", pid);
		rlim[i][0] = !strcmp(cur, "unlimited") ? RLIM_INFINITY : strtoull(cur, NULL, 10);
		rlim[i][1] = !strcmp(max, "unlimited") ? RLIM_INFINITY : strtoull(max, NULL, 10);
		i++;
	}
	return 0;
}
