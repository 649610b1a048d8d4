/* Read-ahead: a thread reads the input files in order into a few aligned
 * chunks while the caller compresses, checksums or unpacks the previous
 * ones, so the disk never waits for the CPU (and the other way round). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/internal.h"

#define READER_DEPTH 4

typedef struct reader_item {
	uint8_t *buf; /* NULL: end of file or error */
	size_t len;
	int error; /* positive errno, with the file index */
	size_t file;
} reader_item;

struct storage_reader {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int dirfd;
	char *const *names; /* NULL: read the one fd dirfd */
	size_t count;
	uint8_t *bufs[READER_DEPTH];
	uint8_t *free_bufs[READER_DEPTH];
	size_t nfree;
	reader_item items[READER_DEPTH + 1];
	size_t head, pending;
	uint8_t *held; /* given to the consumer until its next call */
	bool stop;     /* the consumer quits */
	bool finished; /* the thread has queued all it will */
};

/* Queues an item, waiting for room; false once told to stop. */
static bool push(storage_reader *r, reader_item it)
{
	bool ok;

	pthread_mutex_lock(&r->lock);
	while (r->pending == READER_DEPTH + 1 && !r->stop)
		pthread_cond_wait(&r->cond, &r->lock);
	ok = !r->stop;
	if (ok) {
		r->items[(r->head + r->pending) % (READER_DEPTH + 1)] = it;
		r->pending++;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static uint8_t *take_free(storage_reader *r)
{
	uint8_t *buf = NULL;

	pthread_mutex_lock(&r->lock);
	while (r->nfree == 0 && !r->stop)
		pthread_cond_wait(&r->cond, &r->lock);
	if (!r->stop)
		buf = r->free_bufs[--r->nfree];
	pthread_mutex_unlock(&r->lock);
	return buf;
}

static void give_back(storage_reader *r, uint8_t *buf)
{
	pthread_mutex_lock(&r->lock);
	r->free_bufs[r->nfree++] = buf;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static int open_input(storage_reader *r, size_t i)
{
	struct stat st;
	int fd, e = 0;

	if (!r->names)
		return r->dirfd;
	fd = storage_open_direct(r->dirfd, r->names[i],
	                         O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL; /* swapped for something else since the scan */
	if (e) {
		close(fd);
		return -e;
	}
	return fd;
}

/* Streams file i; false if the reader has to stop. */
static bool read_file(storage_reader *r, size_t i)
{
	int fd = open_input(r, i);
	bool go = true;

	if (fd < 0) {
		push(r, (reader_item){.error = -fd, .file = i});
		return false;
	}
	while (go) {
		uint8_t *buf = take_free(r);
		ssize_t n;

		if (!buf) {
			go = false;
			break;
		}
		n = storage_read_full(fd, buf, STORAGE_CHUNK);
		if (n <= 0) {
			give_back(r, buf);
			go = push(r, (reader_item){.error = n < 0 ? (int)-n : 0, .file = i}) &&
			     n == 0;
			break;
		}
		go = push(r, (reader_item){.buf = buf, .len = (size_t)n, .file = i});
		if (!go)
			give_back(r, buf);
		if ((size_t)n < STORAGE_CHUNK) {
			go = go && push(r, (reader_item){.file = i});
			break;
		}
	}
	if (r->names)
		close(fd);
	return go;
}

static void *reader_main(void *arg)
{
	storage_reader *r = arg;
	size_t n = r->names ? r->count : 1;

	for (size_t i = 0; i < n && read_file(r, i); i++)
		;
	pthread_mutex_lock(&r->lock);
	r->finished = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void reader_free(storage_reader *r)
{
	for (size_t i = 0; i < READER_DEPTH; i++)
		free(r->bufs[i]);
	free(r);
}

int storage_reader_start(int dirfd, char *const *names, size_t count, storage_reader **ret,
                         cd_err *err)
{
	storage_reader *r = calloc(1, sizeof(*r));
	int e;

	if (!r)
		return cd_err_sys(err, ENOMEM, "reader");
	*r = (storage_reader){.dirfd = dirfd, .names = names, .count = count};
	for (size_t i = 0; i < READER_DEPTH; i++) {
		r->bufs[i] = r->free_bufs[i] = storage_buf_alloc(STORAGE_CHUNK);
		if (!r->bufs[i]) {
			reader_free(r);
			return cd_err_sys(err, ENOMEM, "read buffers");
		}
	}
	r->nfree = READER_DEPTH;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	e = pthread_create(&r->thread, NULL, reader_main, r);
	if (e) {
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->cond);
		reader_free(r);
		return cd_err_sys(err, e, "reader thread");
	}
	*ret = r;
	return 0;
}

ssize_t storage_reader_next(storage_reader *r, const uint8_t **ret_buf, cd_err *err)
{
	reader_item it;

	pthread_mutex_lock(&r->lock);
	if (r->held) {
		r->free_bufs[r->nfree++] = r->held;
		r->held = NULL;
		pthread_cond_broadcast(&r->cond);
	}
	while (r->pending == 0 && !r->finished)
		pthread_cond_wait(&r->cond, &r->lock);
	if (r->pending == 0) {
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	it = r->items[r->head];
	r->head = (r->head + 1) % (READER_DEPTH + 1);
	r->pending--;
	r->held = it.buf;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (it.error)
		return cd_err_sys(err, it.error, "%s", r->names ? r->names[it.file] : "read");
	*ret_buf = it.buf;
	return (ssize_t)it.len;
}

void storage_reader_stop(storage_reader *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	reader_free(r);
}
