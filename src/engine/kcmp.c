/* kcmp(2) as an order. The kernel compares two tasks' objects of one type
 * (fd table, fs, memory, open file) by their scrambled addresses: 0 the same
 * object, 1 less, 2 greater, a total order that holds across tasks. Sorting
 * by it, or a search tree keyed by it, finds the objects two tasks share in
 * O(n log n) calls where comparing every pair takes O(n^2). */
#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/internal.h"

int cd_kcmp(pid_t p1, unsigned long i1, pid_t p2, unsigned long i2, int type, int *ret_order,
            cd_err *err)
{
	long r = syscall(SYS_kcmp, p1, p2, type, i1, i2);

	if (r < 0)
		return cd_err_sys(err, errno, "kcmp of pid %d and pid %d", p1, p2);
	if (r > 2)
		return cd_err_set(err, EINVAL, "kcmp of pid %d and pid %d: unexpected %ld", p1, p2,
		                  r);
	*ret_order = r == 0 ? 0 : r == 1 ? -1 : 1;
	return 0;
}

struct sort_ctx {
	int type;
	cd_err *err;
	int r;
};

/* qsort_r cannot stop: after a failure the order is garbage and r says so. */
static int by_object(const void *a, const void *b, void *arg)
{
	struct sort_ctx *c = arg;
	int order = 0;

	if (c->r == 0)
		c->r = cd_kcmp(*(const pid_t *)a, 0, *(const pid_t *)b, 0, c->type, &order, c->err);
	return order;
}

int cd_kcmp_sort_tasks(pid_t *pids, size_t n, int type, cd_err *err)
{
	struct sort_ctx c = {.type = type, .err = err};

	qsort_r(pids, n, sizeof(*pids), by_object, &c);
	return c.r;
}
