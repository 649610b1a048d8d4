#include "engine/pageio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

struct cd_page_writer {
	int fd;
	bool direct;
	uint8_t *buf;
	size_t len;
	uint64_t total;
	struct cd_csum csum;
	uint64_t write_ns, fsync_ns;
	char name[64];
};

static int alloc_buf(uint8_t **ret, cd_err *err)
{
	void *p;
	int r = posix_memalign(&p, CD_PAGE_SIZE, CD_PAGEIO_BUF);

	if (r)
		return cd_err_set(err, r, "allocate page buffer");
	*ret = p;
	return 0;
}

int cd_pw_open(int dirfd, const char *name, struct cd_page_writer **ret, cd_err *err)
{
	_cleanup_free_ struct cd_page_writer *pw = calloc(1, sizeof(*pw));
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;

	if (!pw)
		return cd_err_set(err, ENOMEM, "out of memory");
	snprintf(pw->name, sizeof(pw->name), "%s", name);
	pw->fd = openat(dirfd, name, flags | O_DIRECT, 0600);
	pw->direct = pw->fd >= 0;
	if (pw->fd < 0 && errno == EINVAL)
		pw->fd = openat(dirfd, name, flags, 0600);
	if (pw->fd < 0)
		return cd_err_sys(err, errno, "create %s", name);
	int r = alloc_buf(&pw->buf, err);
	if (r < 0) {
		close(pw->fd);
		return r;
	}
	cd_csum_init(&pw->csum);
	*ret = TAKE_PTR(pw);
	return 0;
}

size_t cd_pw_reserve(struct cd_page_writer *pw, uint8_t **ret_dst)
{
	*ret_dst = pw->buf + pw->len;
	return CD_PAGEIO_BUF - pw->len;
}

static int pw_flush(struct cd_page_writer *pw, cd_err *err)
{
	size_t off = 0;
	uint64_t t0;

	cd_csum_update(&pw->csum, pw->buf, pw->len);
	t0 = cd_now_ns();
	while (off < pw->len) {
		ssize_t n = write(pw->fd, pw->buf + off, pw->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && pw->direct) {
			/* the filesystem refuses O_DIRECT after all: go buffered */
			pw->direct = false;
			if (fcntl(pw->fd, F_SETFL, 0) < 0)
				return cd_err_sys(err, errno, "write %s", pw->name);
			continue;
		}
		if (n < 0)
			return cd_err_sys(err, errno, "write %s", pw->name);
		off += (size_t)n;
	}
	pw->write_ns += cd_now_ns() - t0;
	pw->total += pw->len;
	pw->len = 0;
	return 0;
}

int cd_pw_commit(struct cd_page_writer *pw, size_t len, cd_err *err)
{
	pw->len += len;
	if (pw->len < CD_PAGEIO_BUF)
		return 0;
	return pw_flush(pw, err);
}

int cd_pw_finish(struct cd_page_writer *pw, uint64_t *ret_size, uint64_t *ret_csum, cd_err *err)
{
	int r = pw_flush(pw, err);

	if (r < 0)
		return r;
	uint64_t t0 = cd_now_ns();
	if (fsync(pw->fd) < 0)
		return cd_err_sys(err, errno, "fsync %s", pw->name);
	pw->fsync_ns += cd_now_ns() - t0;
	*ret_size = pw->total;
	*ret_csum = cd_csum_final(&pw->csum);
	return 0;
}

void cd_pw_times(const struct cd_page_writer *pw, uint64_t *ret_write_ns, uint64_t *ret_fsync_ns)
{
	*ret_write_ns = pw->write_ns;
	*ret_fsync_ns = pw->fsync_ns;
}

void cd_pw_free(struct cd_page_writer *pw)
{
	if (!pw)
		return;
	close(pw->fd);
	free(pw->buf);
	free(pw);
}

/* The reader maps the whole page file: pages come straight from the page
 * cache, with no copy into a buffer, and are checksummed on the way. */
struct cd_page_reader {
	uint8_t *map;
	size_t size, pos;
	struct cd_csum_part csum;
	char name[64];
};

int cd_pr_open(int dirfd, const char *name, struct cd_page_reader **ret, cd_err *err)
{
	_cleanup_free_ struct cd_page_reader *pr = calloc(1, sizeof(*pr));
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (!pr)
		return cd_err_set(err, ENOMEM, "out of memory");
	snprintf(pr->name, sizeof(pr->name), "%s", name);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", name);
	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "stat %s", name);
	pr->size = (size_t)st.st_size;
	if (pr->size) {
		void *p = mmap(NULL, pr->size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return cd_err_sys(err, errno, "map %s", name);
		madvise(p, pr->size, MADV_SEQUENTIAL);
		pr->map = p;
	}
	*ret = TAKE_PTR(pr);
	return 0;
}

int cd_pr_next(struct cd_page_reader *pr, size_t want, const void **ret_src, size_t *ret_len,
               cd_err *err)
{
	if (pr->pos == pr->size)
		return cd_err_set(err, EINVAL, "%s: truncated", pr->name);
	size_t n = pr->size - pr->pos < want ? pr->size - pr->pos : want;
	*ret_src = pr->map + pr->pos;
	*ret_len = n;
	cd_csum_part_add(&pr->csum, *ret_src, n, pr->pos, pr->size);
	pr->pos += n;
	return 0;
}

int cd_pr_skip(struct cd_page_reader *pr, uint64_t len, cd_err *err)
{
	if (len > pr->size - pr->pos)
		return cd_err_set(err, EINVAL, "%s: truncated", pr->name);
	pr->pos += len;
	return 0;
}

int cd_pr_check(const struct cd_page_reader *pr, const struct cd_csum_part *other, uint64_t csum,
                cd_err *err)
{
	struct cd_csum_part sum = pr->csum;

	if (pr->pos != pr->size)
		return cd_err_set(err, EINVAL, "%s: %zu bytes never read (corrupt image)", pr->name,
		                  pr->size - pr->pos);
	if (other)
		cd_csum_part_merge(&sum, other);
	if (cd_csum_part_final(&sum, pr->size) != csum)
		return cd_err_set(err, EINVAL, "%s: checksum mismatch (corrupt image)", pr->name);
	return 0;
}

int cd_pr_at(struct cd_page_reader *pr, uint64_t off, size_t len, const void **ret_src, cd_err *err)
{
	if (off > pr->size || len > pr->size - off)
		return cd_err_set(err, EINVAL, "%s: truncated", pr->name);
	*ret_src = pr->map + off;
	return 0;
}

void cd_pr_free(struct cd_page_reader *pr)
{
	if (!pr)
		return;
	if (pr->map)
		munmap(pr->map, pr->size);
	free(pr);
}
