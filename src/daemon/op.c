#include "daemon/op.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The page also holds the registry link, id and the page's memfd, which
 * the worker never touches. */
struct op_page {
	struct op_shared op;
	struct op_page *next;
	char id[OP_ID_MAX];
	int fd;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct op_page *registry;

static struct op_page *page_of(struct op_shared *op)
{
	return (struct op_page *)op;
}

static struct op_page **find(const char *id)
{
	for (struct op_page **p = &registry; *p; p = &(*p)->next)
		if (strcmp((*p)->id, id) == 0)
			return p;
	return NULL;
}

/* A page in a memfd, so that a worker, a program of its own (cr_worker_spawn),
 * maps the same page from the fd it is given. */
static struct op_page *page_new(cd_err *err)
{
	struct op_page *page;
	int fd = memfd_create("cedana-op", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, sizeof(*page)) < 0) {
		cd_err_sys(err, errno, "map a shared page");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	page = mmap(NULL, sizeof(*page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED) {
		cd_err_sys(err, errno, "map a shared page");
		close(fd);
		return NULL;
	}
	page->fd = fd;
	return page;
}

static void page_free(struct op_page *page)
{
	close(page->fd);
	munmap(page, sizeof(*page));
}

int op_new(const char *id, struct op_shared **ret, cd_err *err)
{
	struct op_page *page;
	int r = 0;

	if (id && strlen(id) >= OP_ID_MAX)
		return cd_err_set(err, EINVAL, "\"op\" is longer than %d bytes", OP_ID_MAX - 1);
	page = page_new(err);
	if (!page)
		return -(err->code ? err->code : ENOMEM);
	/* Before its worker names a first phase, an op is in the "" phase
	 * since it was made, not since the clock's epoch. */
	page->op.phase_start_ms = op_now_ms();
	if (id && id[0]) {
		pthread_mutex_lock(&registry_lock);
		if (find(id)) {
			r = cd_err_set(err, EEXIST, "operation %s is already in flight", id);
		} else {
			snprintf(page->id, sizeof(page->id), "%s", id);
			page->next = registry;
			registry = page;
		}
		pthread_mutex_unlock(&registry_lock);
	}
	if (r < 0) {
		page_free(page);
		return r;
	}
	*ret = &page->op;
	return 0;
}

int op_fd(const struct op_shared *op)
{
	return ((const struct op_page *)op)->fd;
}

struct op_shared *op_map(int fd, cd_err *err)
{
	void *p = mmap(NULL, sizeof(struct op_page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED) {
		cd_err_sys(err, errno, "map the operation's page (fd %d)", fd);
		return NULL;
	}
	close(fd);
	return p;
}

void op_free(struct op_shared *op)
{
	struct op_page *page = page_of(op), **p;

	if (!op)
		return;
	if (page->id[0]) {
		pthread_mutex_lock(&registry_lock);
		p = find(page->id);
		if (p)
			*p = page->next;
		pthread_mutex_unlock(&registry_lock);
	}
	page_free(page);
}

void op_phase(struct op_shared *op, const char *phase)
{
	__atomic_store_n(&op->done, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&op->total, 0, __ATOMIC_RELAXED);
	op->phase_start_ms = op_now_ms();
	snprintf(op->phase, sizeof(op->phase), "%s", phase);
}

void op_time(struct op_shared *op, const char *name, double ms)
{
	if (op->ntimings >= OP_PHASES)
		return;
	snprintf(op->timings[op->ntimings].name, sizeof(op->timings[0].name), "%s", name);
	op->timings[op->ntimings++].ms = ms;
}

double op_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void op_progress_cb(uint64_t done, uint64_t total, void *userdata)
{
	struct op_shared *op = userdata;

	__atomic_store_n(&op->total, total, __ATOMIC_RELAXED);
	__atomic_store_n(&op->done, done, __ATOMIC_RELAXED);
}

void op_engine_progress_cb(const char *stage, uint64_t done, uint64_t total, void *userdata)
{
	struct op_shared *op = userdata;

	if (strncmp(op->phase, stage, sizeof(op->phase)))
		op_phase(op, stage);
	op_progress_cb(done, total, op);
}

json_t *op_progress_json(const char *id)
{
	struct op_page **p;
	json_t *j = NULL;
	char phase[24];
	double seconds;

	pthread_mutex_lock(&registry_lock);
	p = find(id);
	if (p) {
		memcpy(phase, (*p)->op.phase, sizeof(phase));
		phase[sizeof(phase) - 1] = '\0';
		seconds = (op_now_ms() - (*p)->op.phase_start_ms) / 1e3;
		j = json_pack("{s:s, s:I, s:I, s:f}", "phase", phase, "done",
		              (json_int_t)__atomic_load_n(&(*p)->op.done, __ATOMIC_RELAXED),
		              "total",
		              (json_int_t)__atomic_load_n(&(*p)->op.total, __ATOMIC_RELAXED),
		              "seconds", seconds < 0 ? 0.0 : seconds);
	}
	pthread_mutex_unlock(&registry_lock);
	return j;
}

json_t *op_timings_json(const struct op_shared *op)
{
	json_t *j = json_array();

	for (int i = 0; i < op->ntimings && i < OP_PHASES; i++)
		json_array_append_new(j, json_pack("{s:s, s:f}", "name", op->timings[i].name, "ms",
		                                   op->timings[i].ms));
	return j;
}
