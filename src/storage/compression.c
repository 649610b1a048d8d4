/* Compression names, suffixes and detection from content. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/cleanup.h"
#include "storage/internal.h"

static const struct {
	const char *name;
	const char *suffix;
} formats[] = {
    [STORAGE_NONE] = {"none", ""},          [STORAGE_TAR] = {"tar", ".tar"},
    [STORAGE_GZIP] = {"gzip", ".tar.gz"},   [STORAGE_LZ4] = {"lz4", ".tar.lz4"},
    [STORAGE_ZLIB] = {"zlib", ".tar.zlib"}, [STORAGE_ZSTD] = {"zstd", ".tar.zst"},
};

int storage_compression_parse(const char *name, storage_compression *ret, cd_err *err)
{
	for (size_t i = 0; name && i < ARRAY_SIZE(formats); i++) {
		if (strcmp(name, formats[i].name) == 0) {
			*ret = (storage_compression)i;
			return 0;
		}
	}
	return cd_err_set(err, EINVAL,
	                  "unknown compression '%s' (expected none, tar, gzip, lz4, zlib or zstd)",
	                  name ? name : "");
}

const char *storage_compression_name(storage_compression c)
{
	return (unsigned)c < ARRAY_SIZE(formats) ? formats[c].name : "unknown";
}

const char *storage_compression_suffix(storage_compression c)
{
	return (unsigned)c < ARRAY_SIZE(formats) ? formats[c].suffix : "";
}

storage_compression storage_compression_from_suffix(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	for (size_t i = 1; i < ARRAY_SIZE(formats); i++) {
		size_t k = strlen(formats[i].suffix);

		/* no suffix ends another, so the order does not matter */
		if (n > k && strcmp(name + n - k, formats[i].suffix) == 0)
			return (storage_compression)i;
	}
	return STORAGE_NONE;
}

/* A zlib header (RFC 1950): deflate method, window <= 32 KiB, no preset
 * dictionary (we never write one) and the header checksum. */
static bool is_zlib_header(const uint8_t *p)
{
	return (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && !(p[1] & 0x20) &&
	       ((p[0] << 8) | p[1]) % 31 == 0;
}

static int detect_magic(const uint8_t *p, size_t n, storage_compression *ret)
{
	static const uint8_t gzip[] = {0x1f, 0x8b};
	static const uint8_t zstd[] = {0x28, 0xb5, 0x2f, 0xfd};
	static const uint8_t lz4[] = {0x04, 0x22, 0x4d, 0x18};

	if (n >= sizeof(gzip) && memcmp(p, gzip, sizeof(gzip)) == 0)
		*ret = STORAGE_GZIP;
	else if (n >= sizeof(zstd) && memcmp(p, zstd, sizeof(zstd)) == 0)
		*ret = STORAGE_ZSTD;
	else if (n >= sizeof(lz4) && memcmp(p, lz4, sizeof(lz4)) == 0)
		*ret = STORAGE_LZ4;
	else if (n >= 262 && memcmp(p + 257, "ustar", 5) == 0)
		*ret = STORAGE_TAR;
	else if (n >= 2 && is_zlib_header(p))
		*ret = STORAGE_ZLIB;
	else
		return -EINVAL;
	return 0;
}

int storage_detect(const char *path, storage_compression *ret, cd_err *err)
{
	_cleanup_close_ int fd = -1;
	uint8_t head[512];
	struct stat st;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cd_err_sys(err, errno, "%s", path);
	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "%s: stat", path);
	if (S_ISDIR(st.st_mode)) {
		*ret = STORAGE_NONE;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return cd_err_set(err, EINVAL, "%s: not a checkpoint image (not a file)", path);
	do
		n = pread(fd, head, sizeof(head), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return cd_err_sys(err, errno, "%s: read", path);
	if (detect_magic(head, (size_t)n, ret) < 0)
		return cd_err_set(err, EINVAL,
		                  "%s: not a checkpoint image (unrecognised format; expected a "
		                  "directory or a tar, gzip, lz4, zlib or zstd archive)",
		                  path);
	return 0;
}

int storage_manifest_format(const storage_manifest *m, char *buf, size_t len)
{
	int n = snprintf(
	    buf, len, "cedana-storage 1\nfiles %" PRIu64 "\ndirs %" PRIu64 "\nbytes %" PRIu64 "\n",
	    m->files, m->dirs, m->bytes);

	return n < 0 || (size_t)n >= len ? -ENOBUFS : n;
}

int storage_manifest_parse(const char *buf, size_t len, storage_manifest *ret)
{
	char text[256];
	storage_manifest m;
	int version;

	if (len >= sizeof(text))
		return -EINVAL;
	memcpy(text, buf, len);
	text[len] = '\0';
	if (sscanf(text, "cedana-storage %d\nfiles %" SCNu64 "\ndirs %" SCNu64 "\nbytes %" SCNu64,
	           &version, &m.files, &m.dirs, &m.bytes) != 4 ||
	    version != 1)
		return -EINVAL;
	*ret = m;
	return 0;
}

#define TRAILER_HEAD "cedana-storage-crc 1\n"

char *storage_trailer_format(const uint32_t *crcs, size_t n, size_t *ret_len)
{
	size_t head = strlen(TRAILER_HEAD), len = head + n * 9;
	char *buf = malloc(len + 1);

	if (!buf)
		return NULL;
	memcpy(buf, TRAILER_HEAD, head + 1); /* NUL-terminated also when n == 0 */
	for (size_t i = 0; i < n; i++)
		snprintf(buf + head + i * 9, 10, "%08x\n", crcs[i]);
	*ret_len = len;
	return buf;
}

ssize_t storage_trailer_parse(const char *buf, size_t len, uint32_t *crcs, size_t max)
{
	size_t head = strlen(TRAILER_HEAD), n = 0;

	if (len < head || memcmp(buf, TRAILER_HEAD, head) != 0 || (len - head) % 9 != 0)
		return -EINVAL;
	for (const char *p = buf + head; p < buf + len; p += 9, n++) {
		char hex[9], *end;

		if (n == max || p[8] != '\n')
			return -EINVAL;
		memcpy(hex, p, 8);
		hex[8] = '\0';
		crcs[n] = (uint32_t)strtoul(hex, &end, 16);
		if (end != hex + 8)
			return -EINVAL;
	}
	return (ssize_t)n;
}
