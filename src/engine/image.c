#include "engine/image.h"
#include "engine/pageio.h"
#include "engine/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/image-fields.h"
#include "shared/cleanup.h"
#include "shared/prefault.h"

/* ---- checksum ---- */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

void cd_csum_init(struct cd_csum *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; i < 8; i++)
		c->a[i] = P1 * (uint64_t)(i + 1);
}

/* Explicit vectors: two 256-bit halves of the eight lanes (plain SSE2 code
 * where AVX2 is missing). */
typedef uint64_t v4u64 __attribute__((vector_size(32)));

__attribute__((target_clones("avx2", "default"))) static void
csum_blocks(struct cd_csum *c, const uint8_t *p, size_t nblocks)
{
	v4u64 a0, a1, b0, b1, w0, w1;

	memcpy(&a0, c->a, 32);
	memcpy(&a1, c->a + 4, 32);
	memcpy(&b0, c->b, 32);
	memcpy(&b1, c->b + 4, 32);
	for (; nblocks; nblocks--, p += 64) {
		memcpy(&w0, p, 32);
		memcpy(&w1, p + 32, 32);
		a0 += w0;
		a1 += w1;
		b0 += a0;
		b1 += a1;
	}
	memcpy(c->a, &a0, 32);
	memcpy(c->a + 4, &a1, 32);
	memcpy(c->b, &b0, 32);
	memcpy(c->b + 4, &b1, 32);
}

void cd_csum_update(struct cd_csum *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!len)
		return;
	c->len += len;
	if (c->ntail) {
		size_t n = 64 - c->ntail < len ? 64 - c->ntail : len;
		memcpy(c->tail + c->ntail, p, n);
		c->ntail += n;
		p += n;
		len -= n;
		if (c->ntail < 64)
			return;
		csum_blocks(c, c->tail, 1);
		c->ntail = 0;
	}
	csum_blocks(c, p, len / 64);
	p += len / 64 * 64;
	memcpy(c->tail, p, len % 64);
	c->ntail = len % 64;
}

uint64_t cd_csum_final(const struct cd_csum *c)
{
	uint64_t h = c->len * P3;

	for (int i = 0; i < 8; i++) {
		h = rotl(h ^ (c->a[i] * P1), 27) * P2;
		h = rotl(h ^ (c->b[i] * P2), 31) * P1;
	}
	for (size_t i = 0; i < c->ntail; i++)
		h = rotl(h ^ (c->tail[i] * P3), 11) * P1;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	return h;
}

void cd_csum_part_add(struct cd_csum_part *p, const void *buf, size_t len, uint64_t off,
                      uint64_t size)
{
	struct cd_csum seg = {0};
	/* a block k blocks before the end is summed k more times into b */
	uint64_t after = (size - off - len) / 64;

	csum_blocks(&seg, buf, len / 64);
	for (int i = 0; i < 8; i++) {
		p->a[i] += seg.a[i];
		p->b[i] += seg.b[i] + after * seg.a[i];
	}
}

void cd_csum_part_merge(struct cd_csum_part *into, const struct cd_csum_part *p)
{
	for (int i = 0; i < 8; i++) {
		into->a[i] += p->a[i];
		into->b[i] += p->b[i];
	}
}

uint64_t cd_csum_part_final(const struct cd_csum_part *p, uint64_t size)
{
	struct cd_csum c;

	cd_csum_init(&c);
	for (int i = 0; i < 8; i++) {
		/* the initial a is summed into b once per block */
		c.b[i] = p->b[i] + size / 64 * c.a[i];
		c.a[i] += p->a[i];
	}
	c.len = size;
	return cd_csum_final(&c);
}

/* ---- hex ---- */

int cd_json_hex_encode(json_t *obj, const char *key, const void *buf, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = buf;
	_cleanup_free_ char *s = malloc(2 * len + 1);

	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 15];
	}
	s[2 * len] = 0;
	return json_object_set_new(obj, key, json_string(s)) ? -ENOMEM : 0;
}

/* ---- scalar field tables ---- */

int cd_fields_encode(json_t *obj, const struct cd_field *f, size_t n, const void *base)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = (const char *)base + f[i].off;
		json_int_t v;
		switch (f[i].size) {
		case 8:
			v = (json_int_t) * (const int64_t *)p;
			break;
		case 4:
			v = *(const int32_t *)p;
			break;
		default:
			v = *(const uint8_t *)p;
		}
		if (json_object_set_new(obj, f[i].name, json_integer(v)))
			return -ENOMEM;
	}
	return 0;
}

/* ---- manifest ---- */

void cd_image_free(struct cd_image *img)
{
	for (size_t i = 0; i < img->ntasks; i++)
		cd_task_free(&img->tasks[i]);
	free(img->tasks);
	for (size_t i = 0; i < img->npipes; i++)
		free(img->pipes[i].data);
	free(img->pipes);
	for (size_t i = 0; i < img->nmemfds; i++) {
		free(img->memfds[i].name);
		free(img->memfds[i].data);
	}
	free(img->memfds);
	for (size_t i = 0; i < img->ndeleted; i++) {
		free(img->deleted[i].path);
		free(img->deleted[i].data);
	}
	free(img->deleted);
	for (size_t i = 0; i < img->nsysv_shm; i++)
		free(img->sysv_shm[i].runs);
	free(img->sysv_shm);
	for (size_t i = 0; i < img->nsysv_msq; i++) {
		for (size_t k = 0; k < img->sysv_msq[i].nmsgs; k++)
			free(img->sysv_msq[i].msgs[k].data);
		free(img->sysv_msq[i].msgs);
	}
	free(img->sysv_msq);
	for (size_t i = 0; i < img->nsysv_sem; i++)
		free(img->sysv_sem[i].vals);
	free(img->sysv_sem);
	cd_image_plugins_free(img);
	free(img->parent);
	free(img->text);
	memset(img, 0, sizeof(*img));
}

const struct cd_sysv_shm *cd_image_sysv_shm(const struct cd_image *img, int64_t id)
{
	for (size_t i = 0; i < img->nsysv_shm; i++)
		if (img->sysv_shm[i].id == id)
			return &img->sysv_shm[i];
	return NULL;
}

struct cd_task *cd_image_task(struct cd_image *img, pid_t pid)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].pid == pid)
			return &img->tasks[i];
	return NULL;
}

bool cd_image_has_child(const struct cd_image *img, pid_t pid)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].ppid == pid && img->tasks[i].pid != pid)
			return true;
	return false;
}

bool cd_task_has_thread(const struct cd_task *t, pid_t tid)
{
	for (size_t k = 0; k < t->nthreads; k++)
		if (t->threads[k].tid == tid)
			return true;
	return false;
}

static const char *const vdso_names[CD_VMA_KIND_MAX] = {
    [CD_VMA_VDSO] = "vdso",
    [CD_VMA_VVAR] = "vvar",
    [CD_VMA_VVAR_VCLOCK] = "vvar_vclock",
};

static json_t *pipes_to_json(const struct cd_image *img)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < img->npipes; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "id", json_integer(img->pipes[i].id));
		json_object_set_new(o, "size", json_integer(img->pipes[i].size));
		cd_json_hex_encode(o, "data", img->pipes[i].data, img->pipes[i].len);
		json_array_append_new(arr, o);
	}
	return arr;
}

/* A memfd's or deleted file's contents: none in an entry of another open
 * file of it; the size and checksum of its file, or (an image read before
 * those files) the data itself. */
static void contents_to_json(json_t *o, bool own, const char *data, size_t len, uint64_t csum)
{
	if (!own)
		return;
	if (data) {
		cd_json_hex_encode(o, "data", data, len);
		return;
	}
	json_object_set_new(o, "size", json_integer((json_int_t)len));
	json_object_set_new(o, "csum", json_integer((json_int_t)csum));
}

static json_t *memfds_to_json(const struct cd_image *img)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < img->nmemfds; i++) {
		const struct cd_memfd *m = &img->memfds[i];
		json_t *o = json_object();
		json_object_set_new(o, "obj", json_integer(m->obj));
		json_object_set_new(o, "of", json_integer(m->of));
		json_object_set_new(o, "name", json_string(m->name));
		json_object_set_new(o, "seals", json_integer(m->seals));
		json_object_set_new(o, "mode", json_integer(m->mode));
		json_object_set_new(o, "uid", json_integer(m->uid));
		json_object_set_new(o, "gid", json_integer(m->gid));
		contents_to_json(o, m->of == (int)i, m->data, m->len, m->csum);
		if (m->shmid)
			json_object_set_new(o, "shmid", json_integer(m->shmid));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *deleted_to_json(const struct cd_image *img)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < img->ndeleted; i++) {
		const struct cd_deleted *f = &img->deleted[i];
		json_t *o = json_object();
		json_object_set_new(o, "obj", json_integer(f->obj));
		json_object_set_new(o, "of", json_integer(f->of));
		json_object_set_new(o, "path", json_string(f->path));
		json_object_set_new(o, "mode", json_integer(f->mode));
		json_object_set_new(o, "uid", json_integer(f->uid));
		json_object_set_new(o, "gid", json_integer(f->gid));
		contents_to_json(o, f->of == (int)i, f->data, f->len, f->csum);
		json_array_append_new(arr, o);
	}
	return arr;
}

#define S(m)       CD_FIELD(struct cd_sysv_shm, m)
#define SR(m, ...) CD_FIELD_RANGE(struct cd_sysv_shm, m, __VA_ARGS__)
static const struct cd_field sysv_shm_fields[] = {
    S(key),
    SR(id, 0, INT32_MAX),
    SR(mode, 0, 0777),
    SR(uid, 0, (int64_t)UINT32_MAX - 1),
    SR(gid, 0, (int64_t)UINT32_MAX - 1),
    S(removed),
    S(locked),
    SR(size, 1, (int64_t)CD_SYSV_SHM_MAX),
    SR(pages_size, 0, (int64_t)CD_SYSV_SHM_MAX),
    S(pages_csum),
};
#undef SR
#undef S

#define Q(m)       CD_FIELD(struct cd_sysv_msq, m)
#define QR(m, ...) CD_FIELD_RANGE(struct cd_sysv_msq, m, __VA_ARGS__)
static const struct cd_field sysv_msq_fields[] = {
    Q(key),
    QR(id, 0, INT32_MAX),
    QR(mode, 0, 0777),
    QR(uid, 0, (int64_t)UINT32_MAX - 1),
    QR(gid, 0, (int64_t)UINT32_MAX - 1),
    QR(qbytes, 0, INT32_MAX),
};
#undef QR
#undef Q

#define M(m)       CD_FIELD(struct cd_sysv_sem, m)
#define MR(m, ...) CD_FIELD_RANGE(struct cd_sysv_sem, m, __VA_ARGS__)
static const struct cd_field sysv_sem_fields[] = {
    M(key),
    MR(id, 0, INT32_MAX),
    MR(mode, 0, 0777),
    MR(uid, 0, (int64_t)UINT32_MAX - 1),
    MR(gid, 0, (int64_t)UINT32_MAX - 1),
    M(operated),
};
#undef MR
#undef M

/* A queue: its fields and its messages in order, {mtype, data} each. */
static json_t *sysv_msqs_to_json(const struct cd_image *img)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < img->nsysv_msq; i++) {
		const struct cd_sysv_msq *q = &img->sysv_msq[i];
		json_t *o = json_object(), *msgs = json_array();
		cd_fields_encode(o, sysv_msq_fields, ARRAY_SIZE(sysv_msq_fields), q);
		for (size_t k = 0; k < q->nmsgs; k++) {
			json_t *m = json_object();
			json_object_set_new(m, "mtype", json_integer(q->msgs[k].mtype));
			cd_json_hex_encode(m, "data", q->msgs[k].data, q->msgs[k].len);
			json_array_append_new(msgs, m);
		}
		json_object_set_new(o, "msgs", msgs);
		json_array_append_new(arr, o);
	}
	return arr;
}

/* A set: its fields and its values. */
static json_t *sysv_sems_to_json(const struct cd_image *img)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < img->nsysv_sem; i++) {
		const struct cd_sysv_sem *m = &img->sysv_sem[i];
		json_t *o = json_object(), *vals = json_array();
		cd_fields_encode(o, sysv_sem_fields, ARRAY_SIZE(sysv_sem_fields), m);
		for (size_t k = 0; k < m->nsems; k++)
			json_array_append_new(vals, json_integer(m->vals[k]));
		json_object_set_new(o, "vals", vals);
		json_array_append_new(arr, o);
	}
	return arr;
}

/* A segment: its fields and its data runs, [page, npages] each. */
static json_t *sysv_shms_to_json(const struct cd_image *img)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < img->nsysv_shm; i++) {
		const struct cd_sysv_shm *m = &img->sysv_shm[i];
		json_t *o = json_object(), *runs = json_array();
		cd_fields_encode(o, sysv_shm_fields, ARRAY_SIZE(sysv_shm_fields), m);
		for (size_t k = 0; k < m->nruns; k++)
			json_array_append_new(runs, json_pack("[I,I]", (json_int_t)m->runs[k].page,
			                                      (json_int_t)m->runs[k].npages));
		json_object_set_new(o, "runs", runs);
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *image_to_json(const struct cd_image *img, bool runs_later, cd_err *err)
{
	_cleanup_json_ json_t *root = json_object();
	json_t *tasks = json_array(), *vdso = json_object();

	json_object_set_new(root, "format", json_string(CD_IMAGE_FORMAT));
	json_object_set_new(root, "version", json_integer(img->version));
	json_object_set_new(root, "arch", json_string("x86_64"));
	json_object_set_new(root, "kernel", json_string(img->kernel));
	json_object_set_new(root, "root", json_integer(img->root));
	json_object_set_new(root, "shell_job", json_boolean(img->shell_job));
	for (int k = 0; k < CD_VMA_KIND_MAX; k++)
		if (vdso_names[k])
			json_object_set_new(vdso, vdso_names[k],
			                    json_integer((json_int_t)img->vdso_size[k]));
	json_object_set_new(root, "vdso_layout", vdso);
	json_object_set_new(root, "pipes", pipes_to_json(img));
	json_object_set_new(root, "memfds", memfds_to_json(img));
	json_object_set_new(root, "deleted", deleted_to_json(img));
	json_object_set_new(root, "sysv_shm", sysv_shms_to_json(img));
	json_object_set_new(root, "sysv_msq", sysv_msqs_to_json(img));
	json_object_set_new(root, "sysv_sem", sysv_sems_to_json(img));
	if (img->nplugins)
		json_object_set_new(root, "plugins", cd_image_plugins_to_json(img));
	if (img->parent)
		json_object_set_new(root, "parent",
		                    json_pack("{s:s, s:I}", "path", img->parent, "hash",
		                              (json_int_t)(int64_t)img->parent_hash));
	if (!cd_page_layout_plain(&img->pages))
		json_object_set_new(root, "pages",
		                    json_pack("{s:i, s:s}", "streams", (int)img->pages.streams,
		                              "codec", cd_page_codec_name(img->pages.codec)));
	json_object_set_new(root, "tasks", tasks);
	for (size_t i = 0; i < img->ntasks; i++) {
		json_t *t = runs_later ? cd_task_to_json_runs_later(&img->tasks[i])
		                       : cd_task_to_json(&img->tasks[i]);
		if (!t) {
			cd_err_set(err, ENOMEM, "encode task %d", img->tasks[i].pid);
			return NULL;
		}
		json_array_append_new(tasks, t);
	}
	return TAKE_PTR(root);
}

json_t *cd_image_to_json(const struct cd_image *img, cd_err *err)
{
	return image_to_json(img, false, err);
}

/* ---- the manifest's text, with the mappings' runs written directly ----
 *
 * jansson spends about 2 us on a run ([page, npages, src]: three integers
 * put in an array, then formatted one by one), and an incremental dump of
 * 4 GiB with 5% of its pages written scattered has 100000 runs: 0.2 s of a
 * dump that is meant to take a tenth of the full one. The tree is encoded
 * with each mapping's runs left as CD_RUNS_LATER, and the runs are written
 * in their place here, as jansson's compact form would have them (the
 * same bytes: tests/unit/test_image.c compares them). */

struct text {
	char *s;
	size_t len, cap;
};

static int text_room(struct text *t, size_t more)
{
	/* never NULL after a success, even for no room at all */
	if (t->s && t->len + more <= t->cap)
		return 0;
	size_t cap = t->cap ? t->cap : 4096;
	while (cap < t->len + more)
		cap *= 2;
	char *s = realloc(t->s, cap);
	if (!s)
		return -ENOMEM;
	t->s = s;
	t->cap = cap;
	return 0;
}

static void text_u64(struct text *t, uint64_t v)
{
	char d[20];
	size_t n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10));
	while (n)
		t->s[t->len++] = d[--n];
}

/* [[page,npages,src],...] of v: at most 2 + 64 bytes a run. */
static int runs_text(struct text *t, const struct cd_vma *v)
{
	if (text_room(t, 2 + v->nruns * 64) < 0)
		return -ENOMEM;
	t->s[t->len++] = '[';
	for (size_t i = 0; i < v->nruns; i++) {
		if (i)
			t->s[t->len++] = ',';
		t->s[t->len++] = '[';
		text_u64(t, v->runs[i].page);
		t->s[t->len++] = ',';
		text_u64(t, v->runs[i].npages);
		t->s[t->len++] = ',';
		text_u64(t, v->runs[i].src);
		t->s[t->len++] = ']';
	}
	t->s[t->len++] = ']';
	return 0;
}

/* The next mapping, in the order the tree lists them, that has runs. */
static const struct cd_vma *next_with_runs(const struct cd_image *img, size_t *ti, size_t *vi)
{
	for (; *ti < img->ntasks; (*ti)++, *vi = 0) {
		const struct cd_task *t = &img->tasks[*ti];
		for (; !t->zombie && *vi < t->nvmas; (*vi)++)
			if (t->vmas[*vi].nruns)
				return &t->vmas[(*vi)++];
	}
	return NULL;
}

/* The compact JSON of img, NUL-terminated. The placeholder can only be
 * where the encoder put it: inside a JSON string every quote is escaped,
 * so ,"runs":"\u0001" never occurs in one. */
static int manifest_text(const struct cd_image *img, char **ret, size_t *ret_len, cd_err *err)
{
	static const char mark[] = ",\"runs\":\"\\u0001\"";
	_cleanup_json_ json_t *root = image_to_json(img, true, err);
	_cleanup_free_ char *s = NULL;
	struct text t = {0};
	size_t ti = 0, vi = 0;
	const struct cd_vma *v;

	if (!root)
		return -err->code;
	if (!(s = json_dumps(root, JSON_COMPACT)))
		return cd_err_set(err, ENOMEM, "encode manifest");
	const char *p = s, *at;
	while ((at = strstr(p, mark))) {
		if (!(v = next_with_runs(img, &ti, &vi)) || text_room(&t, (size_t)(at - p) + 8) < 0)
			goto fail;
		memcpy(t.s + t.len, p, (size_t)(at - p));
		t.len += (size_t)(at - p);
		memcpy(t.s + t.len, ",\"runs\":", 8);
		t.len += 8;
		if (runs_text(&t, v) < 0)
			goto fail;
		p = at + strlen(mark);
	}
	if (next_with_runs(img, &ti, &vi) || text_room(&t, strlen(p) + 1) < 0)
		goto fail;
	memcpy(t.s + t.len, p, strlen(p) + 1);
	t.len += strlen(p);
	*ret = t.s;
	*ret_len = t.len;
	return 0;
fail:
	free(t.s);
	return cd_err_set(err, ENOMEM, "encode manifest");
}

static int pipe_from_json(json_t *o, struct cd_pipe *p, cd_err *err)
{
	int64_t size;
	uint8_t *data;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_json_get_int(o, "id", 0, INT64_MAX, &p->id, err)) < 0 ||
	    (r = cd_json_get_int(o, "size", 4096, CD_PIPE_SIZE_MAX, &size, err)) < 0 ||
	    (r = cd_json_hex_decode(o, "data", CD_PIPE_DATA_MAX, &data, &p->len, err)) < 0)
		return r;
	p->data = (char *)data;
	p->size = (uint32_t)size;
	/* the refill writes len bytes into a pipe of this size */
	if (p->len > p->size)
		return cd_err_set(err, EINVAL,
		                  "field \"size\": %u, less than the %zu bytes of data", p->size,
		                  p->len);
	return 0;
}

/* F_SEAL_SEAL .. F_SEAL_EXEC; memfd_create's name: at most 249 bytes */
#define MEMFD_SEALS_ALL 0x3f
#define MEMFD_NAME_MAX  249

/* "of": the entry of the object itself, i or an earlier one that is its
 * own (absent in images before it: i). */
static int contents_of_from_json(json_t *o, size_t i, int *ret, cd_err *err)
{
	int64_t of = (int64_t)i;
	int r;

	if (json_object_get(o, "of") && (r = cd_json_get_int(o, "of", 0, (int64_t)i, &of, err)) < 0)
		return r;
	*ret = (int)of;
	return 0;
}

/* The contents of an entry that is its own object: "size" and "csum" of
 * its file, or "data" (hex, images before those files). */
static int contents_from_json(json_t *o, size_t max_hex, char **ret_data, size_t *ret_len,
                              uint64_t *ret_csum, cd_err *err)
{
	int64_t size, csum;
	uint8_t *data;
	int r;

	if (json_object_get(o, "data")) {
		if ((r = cd_json_hex_decode(o, "data", max_hex, &data, ret_len, err)) < 0)
			return r;
		*ret_data = (char *)data;
		return 0;
	}
	if ((r = cd_json_get_int(o, "size", 0, (int64_t)CD_CONTENTS_MAX, &size, err)) < 0 ||
	    (r = cd_json_get_int(o, "csum", INT64_MIN, INT64_MAX, &csum, err)) < 0)
		return r;
	*ret_len = (size_t)size;
	*ret_csum = (uint64_t)csum;
	return 0;
}

static int memfd_from_json(json_t *o, struct cd_memfd *m, size_t i, cd_err *err)
{
	int64_t obj, seals, mode, uid, gid;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_json_get_int(o, "obj", -1, INT32_MAX, &obj, err)) < 0 ||
	    (r = contents_of_from_json(o, i, &m->of, err)) < 0 ||
	    (r = cd_json_get_strdup(o, "name", MEMFD_NAME_MAX, &m->name, err)) < 0 ||
	    (r = cd_json_get_int(o, "seals", 0, MEMFD_SEALS_ALL, &seals, err)) < 0 ||
	    (r = cd_json_get_int(o, "mode", 0, 07777, &mode, err)) < 0 ||
	    (r = cd_json_get_int(o, "uid", 0, UINT32_MAX - 1, &uid, err)) < 0 ||
	    (r = cd_json_get_int(o, "gid", 0, UINT32_MAX - 1, &gid, err)) < 0 ||
	    (m->of == (int)i &&
	     (r = contents_from_json(o, CD_MEMFD_BYTES, &m->data, &m->len, &m->csum, err)) < 0))
		return r;
	/* optional: an own entry's mappings */
	if (m->of == (int)i && json_object_get(o, "shmid") &&
	    (r = cd_json_get_int(o, "shmid", 1, INT64_MAX, &m->shmid, err)) < 0)
		return r;
	m->obj = (int)obj;
	m->seals = (uint32_t)seals;
	m->mode = (uint32_t)mode;
	m->uid = (uint32_t)uid;
	m->gid = (uint32_t)gid;
	if (strchr(m->name, '/'))
		return cd_err_set(err, EINVAL, "field \"name\": %s has a '/'", m->name);
	/* -1: a memfd only mapped, its own entry, named by its mappings */
	if ((obj >= 0 && obj < 3) || (obj < 0 && (m->of != (int)i || !m->shmid)))
		return cd_err_set(err, EINVAL,
		                  "field \"obj\": %" PRId64 " (-1 only in an own entry with a "
		                  "\"shmid\", else at least 3)",
		                  obj);
	return 0;
}

/* Optional: images before memfds have none. */
static int memfds_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	json_t *arr, *o;
	size_t i;
	int r;

	if (!json_object_get(root, "memfds"))
		return 0;
	if ((r = cd_json_get_array(root, "memfds", 0, CD_MAX_MEMFDS, &arr, err)) < 0)
		return r;
	img->memfds = calloc(json_array_size(arr) + 1, sizeof(*img->memfds));
	if (!img->memfds)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(arr, i, o)
	{
		/* counted first: one refused after its data was decoded is freed too */
		img->nmemfds++;
		if ((r = memfd_from_json(o, &img->memfds[i], i, err)) < 0)
			return cd_err_wrap(err, "memfd %zu", i);
		if (img->memfds[img->memfds[i].of].of != img->memfds[i].of)
			return cd_err_set(err, EINVAL,
			                  "memfd %zu: field \"of\": entry %d is not a memfd's own",
			                  i, img->memfds[i].of);
		for (size_t k = 0; k < i; k++) {
			if (img->memfds[i].obj >= 0 && img->memfds[k].obj == img->memfds[i].obj)
				return cd_err_set(err, EINVAL,
				                  "memfd %zu: field \"obj\": %d repeated", i,
				                  img->memfds[i].obj);
			if (img->memfds[i].shmid && img->memfds[k].shmid == img->memfds[i].shmid)
				return cd_err_set(
				    err, EINVAL, "memfd %zu: field \"shmid\": %" PRId64 " repeated",
				    i, img->memfds[i].shmid);
		}
	}
	return 0;
}

static int deleted_from_json(json_t *o, struct cd_deleted *f, size_t i, cd_err *err)
{
	int64_t obj, mode, uid, gid;
	int r;

	if (!json_is_object(o))
		return cd_err_set(err, EINVAL, "not an object");
	if ((r = cd_json_get_int(o, "obj", -1, INT32_MAX, &obj, err)) < 0 ||
	    (r = contents_of_from_json(o, i, &f->of, err)) < 0 ||
	    (r = cd_json_get_strdup(o, "path", CD_PATH_MAX, &f->path, err)) < 0 ||
	    (r = cd_json_get_int(o, "mode", 0, 07777, &mode, err)) < 0 ||
	    (r = cd_json_get_int(o, "uid", 0, UINT32_MAX - 1, &uid, err)) < 0 ||
	    (r = cd_json_get_int(o, "gid", 0, UINT32_MAX - 1, &gid, err)) < 0 ||
	    (f->of == (int)i &&
	     (r = contents_from_json(o, CD_DELETED_BYTES, &f->data, &f->len, &f->csum, err)) < 0))
		return r;
	f->obj = (int)obj;
	/* -1: a file only mapped, its own entry */
	if ((obj >= 0 && obj < 3) || (obj < 0 && f->of != (int)i))
		return cd_err_set(err, EINVAL, "field \"obj\": %" PRId64 " out of range", obj);
	f->mode = (uint32_t)mode;
	f->uid = (uint32_t)uid;
	f->gid = (uint32_t)gid;
	if (f->path[0] != '/' || f->path[strlen(f->path) - 1] == '/')
		return cd_err_set(err, EINVAL, "field \"path\": %s is not the path of a file",
		                  f->path);
	return 0;
}

/* Optional: images before deleted files have none. */
static int deleted_list_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	json_t *arr, *o;
	size_t i;
	int r;

	if (!json_object_get(root, "deleted"))
		return 0;
	if ((r = cd_json_get_array(root, "deleted", 0, CD_MAX_DELETED, &arr, err)) < 0)
		return r;
	img->deleted = calloc(json_array_size(arr) + 1, sizeof(*img->deleted));
	if (!img->deleted)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(arr, i, o)
	{
		/* counted first: one refused after its data was decoded is freed too */
		img->ndeleted++;
		if ((r = deleted_from_json(o, &img->deleted[i], i, err)) < 0)
			return cd_err_wrap(err, "deleted file %zu", i);
		if (img->deleted[img->deleted[i].of].of != img->deleted[i].of)
			return cd_err_set(
			    err, EINVAL,
			    "deleted file %zu: field \"of\": entry %d is not a file's own", i,
			    img->deleted[i].of);
		for (size_t k = 0; k < i; k++)
			if (img->deleted[i].obj >= 0 && img->deleted[k].obj == img->deleted[i].obj)
				return cd_err_set(err, EINVAL,
				                  "deleted file %zu: field \"obj\": %d repeated", i,
				                  img->deleted[i].obj);
	}
	return 0;
}

/* Data runs in page order inside the segment, holding pages_size bytes. */
static int sysv_runs_from_json(json_t *o, struct cd_sysv_shm *m, cd_err *err)
{
	uint64_t npages = (m->size + CD_PAGE_SIZE - 1) / CD_PAGE_SIZE, next = 0, data = 0;
	json_t *runs, *a;
	size_t i;
	int r = cd_json_get_array(o, "runs", 0, CD_MAX_RUNS, &runs, err);

	if (r < 0)
		return r;
	m->runs = calloc(json_array_size(runs) + 1, sizeof(*m->runs));
	if (!m->runs)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(runs, i, a)
	{
		int64_t page, n;
		if (!json_is_array(a) || json_array_size(a) != 2)
			return cd_err_set(err, EINVAL, "field \"runs\": not a [page, npages] pair");
		if ((r = cd_json_elem_int(a, "runs", 0, 0, (int64_t)npages - 1, &page, err)) < 0 ||
		    (r = cd_json_elem_int(a, "runs", 1, 1, (int64_t)npages, &n, err)) < 0)
			return r;
		if ((uint64_t)page < next || (uint64_t)(page + n) > npages)
			return cd_err_set(err, EINVAL,
			                  "field \"runs\": run at page %" PRId64
			                  " out of order or past the segment",
			                  page);
		m->runs[m->nruns++] = (struct cd_run){
		    .page = (uint64_t)page, .npages = (uint64_t)n, .src = CD_RUN_DATA};
		next = (uint64_t)(page + n);
		data += (uint64_t)n;
	}
	if (data * CD_PAGE_SIZE != m->pages_size)
		return cd_err_set(err, EINVAL,
		                  "field \"pages_size\": %" PRIu64 ", the runs hold %" PRIu64
		                  " bytes",
		                  m->pages_size, data * CD_PAGE_SIZE);
	return 0;
}

static int sysv_msgs_from_json(json_t *o, struct cd_sysv_msq *q, cd_err *err)
{
	json_t *msgs, *m;
	size_t i, total = 0;
	int64_t mtype;
	int r = cd_json_get_array(o, "msgs", 0, CD_SYSV_MSGS, &msgs, err);

	if (r < 0)
		return r;
	q->msgs = calloc(json_array_size(msgs) + 1, sizeof(*q->msgs));
	if (!q->msgs)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(msgs, i, m)
	{
		struct cd_sysv_msg *g = &q->msgs[i];
		if (!json_is_object(m))
			return cd_err_set(err, EINVAL, "message %zu: not an object", i);
		if ((r = cd_json_get_int(m, "mtype", 1, INT64_MAX, &mtype, err)) < 0 ||
		    (r = cd_json_hex_decode(m, "data", CD_SYSV_MSG_MAX, &g->data, &g->len, err)) <
		        0)
			return cd_err_wrap(err, "message %zu", i);
		q->nmsgs++;
		g->mtype = mtype;
		total += g->len;
		if (total > CD_SYSV_MSG_MAX)
			return cd_err_set(err, EINVAL, "messages: more than %u bytes",
			                  CD_SYSV_MSG_MAX);
	}
	return 0;
}

static int sysv_vals_from_json(json_t *o, struct cd_sysv_sem *m, cd_err *err)
{
	json_t *vals;
	int64_t v;
	int r = cd_json_get_array(o, "vals", 1, CD_SYSV_SEMS, &vals, err);

	if (r < 0)
		return r;
	m->vals = calloc(json_array_size(vals), sizeof(*m->vals));
	if (!m->vals)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(vals); i++) {
		if ((r = cd_json_elem_int(vals, "vals", i, 0, 32767, &v, err)) < 0)
			return r;
		m->vals[i] = (uint16_t)v;
	}
	m->nsems = json_array_size(vals);
	return 0;
}

static int sysv_shm_decode(json_t *o, void *obj, cd_err *err)
{
	struct cd_sysv_shm *m = obj;
	int r = cd_fields_decode(o, sysv_shm_fields, ARRAY_SIZE(sysv_shm_fields), m, err);

	return r < 0 ? r : sysv_runs_from_json(o, m, err);
}

static int sysv_msq_decode(json_t *o, void *obj, cd_err *err)
{
	struct cd_sysv_msq *q = obj;
	int r = cd_fields_decode(o, sysv_msq_fields, ARRAY_SIZE(sysv_msq_fields), q, err);

	return r < 0 ? r : sysv_msgs_from_json(o, q, err);
}

static int sysv_sem_decode(json_t *o, void *obj, cd_err *err)
{
	struct cd_sysv_sem *m = obj;
	int r = cd_fields_decode(o, sysv_sem_fields, ARRAY_SIZE(sysv_sem_fields), m, err);

	return r < 0 ? r : sysv_vals_from_json(o, m, err);
}

/* One kind of SysV object in the manifest: its array, what one is called in
 * messages, the size of one, where its key and id are (each an int32_t), and
 * how one is decoded (its fields, then its contents). */
struct sysv_kind {
	const char *field;
	const char *what;
	size_t size, key_off, id_off;
	int (*decode)(json_t *o, void *obj, cd_err *err);
};

#define SYSV_KIND(type, field_, what_, decode_)                                                    \
	{                                                                                          \
		.field = (field_), .what = (what_), .size = sizeof(type),                          \
		.key_off = offsetof(type, key), .id_off = offsetof(type, id), .decode = (decode_), \
	}
static const struct sysv_kind sysv_shm_kind =
    SYSV_KIND(struct cd_sysv_shm, "sysv_shm", "SysV segment", sysv_shm_decode);
static const struct sysv_kind sysv_msq_kind =
    SYSV_KIND(struct cd_sysv_msq, "sysv_msq", "SysV queue", sysv_msq_decode);
static const struct sysv_kind sysv_sem_kind =
    SYSV_KIND(struct cd_sysv_sem, "sysv_sem", "SysV semaphore set", sysv_sem_decode);
#undef SYSV_KIND

static int32_t sysv_int_at(const char *obj, size_t off)
{
	int32_t v;

	memcpy(&v, obj + off, sizeof(v));
	return v;
}

/* The objects of kind k into *list (allocated here, handed over to the caller
 * even on failure: *n counts those to free). Optional: images before SysV
 * objects have none. The restore makes each with its id and key, so neither
 * may come twice (IPC_PRIVATE, key 0, may). */
static int sysv_list_from_json(json_t *root, const struct sysv_kind *k, void **list, size_t *n,
                               cd_err *err)
{
	json_t *arr, *o;
	char *objs;
	size_t i;
	int r;

	if (!json_object_get(root, k->field))
		return 0;
	if ((r = cd_json_get_array(root, k->field, 0, CD_MAX_SYSV, &arr, err)) < 0)
		return r;
	objs = calloc(json_array_size(arr) + 1, k->size);
	if (!objs)
		return cd_err_set(err, ENOMEM, "out of memory");
	*list = objs;
	json_array_foreach(arr, i, o)
	{
		char *obj = objs + i * k->size;
		int32_t key, id;

		/* counted first: one refused after its contents were decoded is freed too */
		(*n)++;
		if (!json_is_object(o))
			return cd_err_set(err, EINVAL, "%s %zu: not an object", k->what, i);
		if ((r = k->decode(o, obj, err)) < 0)
			return cd_err_wrap(err, "%s %zu", k->what, i);
		key = sysv_int_at(obj, k->key_off);
		id = sysv_int_at(obj, k->id_off);
		for (size_t j = 0; j < i; j++)
			if (sysv_int_at(objs + j * k->size, k->id_off) == id ||
			    (key != 0 && sysv_int_at(objs + j * k->size, k->key_off) == key))
				return cd_err_set(err, EINVAL,
				                  "%s %zu: id %d or key 0x%08x repeated", k->what,
				                  i, id, (unsigned)key);
	}
	return 0;
}

static int sysv_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	void *shm = NULL, *msq = NULL, *sem = NULL;
	int r;

	r = sysv_list_from_json(root, &sysv_shm_kind, &shm, &img->nsysv_shm, err);
	img->sysv_shm = shm;
	if (r < 0)
		return r;
	r = sysv_list_from_json(root, &sysv_msq_kind, &msq, &img->nsysv_msq, err);
	img->sysv_msq = msq;
	if (r < 0)
		return r;
	r = sysv_list_from_json(root, &sysv_sem_kind, &sem, &img->nsysv_sem, err);
	img->sysv_sem = sem;
	return r;
}

static int pipes_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	size_t i;
	json_t *arr, *o;
	int r = cd_json_get_array(root, "pipes", 0, CD_MAX_PIPES, &arr, err);

	if (r < 0)
		return r;
	img->pipes = calloc(json_array_size(arr) + 1, sizeof(*img->pipes));
	if (!img->pipes)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(arr, i, o)
	{
		/* counted first: a pipe refused after its data was decoded is freed too */
		img->npipes++;
		if ((r = pipe_from_json(o, &img->pipes[i], err)) < 0)
			return cd_err_wrap(err, "pipe %zu", i);
	}
	return 0;
}

static int vdso_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	json_t *vdso;
	int64_t v;
	int r = cd_json_get_object(root, "vdso_layout", &vdso, err);

	for (int k = 0; r == 0 && k < CD_VMA_KIND_MAX; k++) {
		if (!vdso_names[k])
			continue;
		r = cd_json_get_int(vdso, vdso_names[k], 0, (int64_t)CD_ADDR_MAX, &v, err);
		img->vdso_size[k] = (uint64_t)v;
	}
	return r < 0 ? cd_err_wrap(err, "vdso_layout") : 0;
}

static int check_header(json_t *root, struct cd_image *img, cd_err *err)
{
	const char *fmt = json_string_value(json_object_get(root, "format"));
	const char *arch, *kernel;
	int64_t v;
	int r;

	if (!fmt || strcmp(fmt, CD_IMAGE_FORMAT) != 0)
		return cd_err_set(err, EINVAL, "not a cedana image (format \"%s\")",
		                  fmt ? fmt : "");
	if ((r = cd_json_get_int(root, "version", INT32_MIN, INT32_MAX, &v, err)) < 0)
		return r;
	img->version = (int)v;
	if (img->version != CD_IMAGE_VERSION)
		return cd_err_set(err, EPROTONOSUPPORT,
		                  "image format version %d, this engine reads version %d",
		                  img->version, CD_IMAGE_VERSION);
	if ((r = cd_json_get_str(root, "arch", 16, &arch, err)) < 0)
		return r;
	if (strcmp(arch, "x86_64") != 0)
		return cd_err_set(err, EINVAL, "image architecture \"%s\" is not x86_64", arch);
	if ((r = cd_json_get_str(root, "kernel", sizeof(img->kernel) - 1, &kernel, err)) < 0)
		return r;
	snprintf(img->kernel, sizeof(img->kernel), "%s", kernel);
	if ((r = cd_json_get_int(root, "root", 1, CD_PID_MAX, &v, err)) < 0 ||
	    (r = cd_json_get_bool(root, "shell_job", &img->shell_job, err)) < 0)
		return r;
	img->root = (pid_t)v;
	return vdso_from_json(root, img, err);
}

/* The restore recreates each pid and tid once: unique across the image. */
static int check_ids_unique(const struct cd_image *img, cd_err *err)
{
	size_t n = 0;
	int64_t dup;

	for (size_t i = 0; i < img->ntasks; i++)
		n += 1 + img->tasks[i].nthreads;
	_cleanup_free_ int64_t *v = calloc(n + 1, sizeof(*v));
	if (!v)
		return cd_err_set(err, ENOMEM, "out of memory");
	n = 0;
	for (size_t i = 0; i < img->ntasks; i++) {
		v[n++] = img->tasks[i].pid;
		for (size_t k = 0; k < img->tasks[i].nthreads; k++)
			v[n++] = img->tasks[i].threads[k].tid;
	}
	if (!cd_ints_sorted_repeat(v, n, &dup))
		return 0;
	const char *field = "pid";
	for (size_t i = 0; i < img->ntasks; i++)
		for (size_t k = 0; k < img->tasks[i].nthreads; k++)
			if (img->tasks[i].threads[k].tid == dup)
				field = "tid";
	return cd_err_set(err, EINVAL, "field \"%s\": %" PRId64 " repeated", field, dup);
}

static int tasks_from_json(json_t *root, const struct cd_runs_cuts *cuts, struct cd_image *img,
                           cd_err *err)
{
	json_t *tasks, *t;
	size_t i;
	int r = cd_json_get_array(root, "tasks", 1, CD_MAX_TASKS, &tasks, err);

	if (r < 0)
		return r;
	img->tasks = calloc(json_array_size(tasks), sizeof(*img->tasks));
	if (!img->tasks)
		return cd_err_set(err, ENOMEM, "out of memory");
	json_array_foreach(tasks, i, t)
	{
		r = cd_task_from_json(t, cuts, &img->tasks[i], err);
		img->ntasks++;
		if (r < 0)
			return cd_err_wrap(err, "task %zu", i);
	}
	return check_ids_unique(img, err);
}

/* Open file description ids index the restore's table of objects: 0..2 are
 * the caller's stdio, the others are handed out from 3 one per new open
 * file, so there are never more than there are fds. */
pid_t cd_fd_proc_pid(const char *path)
{
	char *end;

	if (strncmp(path, "/proc/", 6) != 0 || path[6] < '1' || path[6] > '9')
		return 0;
	long pid = strtol(path + 6, &end, 10);
	if ((*end != '/' && *end != '\0') || pid > CD_PID_MAX)
		return 0;
	return (pid_t)pid;
}

static bool image_has_group(const struct cd_image *img, pid_t pgid)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].pgid == pgid)
			return true;
	return false;
}

/* The restore gives SIGIO ownership only to a task or a process group of
 * the image. */
static int check_fd_pids(const struct cd_image *img, const struct cd_task *t, const struct cd_fd *d,
                         cd_err *err)
{
	struct cd_image *m = (struct cd_image *)img;

	/* a thread owner may be one of the fd's own task (made before its
	 * files; every fd of the open file carries the same owner) */
	bool thread = d->own_type == F_OWNER_TID && cd_task_has_thread(t, d->own_pid);
	if (d->own_pid && !thread &&
	    (d->own_type == F_OWNER_PGRP ? !image_has_group(img, d->own_pid)
	                                 : !cd_image_task(m, d->own_pid)))
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"own_pid\": %d is not a %s of the image",
		                  t->pid, d->fd, d->own_pid,
		                  d->own_type == F_OWNER_PGRP ? "process group"
		                                              : "task (nor a thread of this one)");
	return 0;
}

/* A slot names the open file of the root's fd N: the restore replaces what
 * is marked, so a mark elsewhere would hand the replacement to another
 * object. The root's own fds 0-2 are always their slot. */
static int check_fd_std(const struct cd_image *img, const struct cd_task *t, const struct cd_fd *d,
                        cd_err *err)
{
	const struct cd_task *root = cd_image_task((struct cd_image *)img, img->root);
	const struct cd_fd *slot = NULL;

	if (root && t == root && d->fd < 3 && d->std != d->fd)
		return cd_err_set(err, EINVAL, "pid %d: fd %d: field \"std\": %d, not %d", t->pid,
		                  d->fd, d->std, d->fd);
	if (d->std < 0)
		return 0;
	for (size_t j = 0; root && j < root->nfds; j++)
		if (root->fds[j].fd == d->std)
			slot = &root->fds[j];
	if (!slot || slot->obj != d->obj)
		return cd_err_set(err, EINVAL,
		                  "pid %d: fd %d: field \"std\": %d is not the open file of the "
		                  "root's fd %d",
		                  t->pid, d->fd, d->std, d->std);
	return 0;
}

/* The kind's own checks (fd-*.c) after the ones every fd has. */
static int check_fd_refs(const struct cd_fd_check *c, const struct cd_task *t, size_t nobjs,
                         cd_err *err)
{
	const struct cd_image *img = c->img;
	int r;

	for (size_t j = 0; j < t->nfds; j++) {
		const struct cd_fd *d = &t->fds[j];
		const struct cd_fd_ops *ops = cd_fd_ops_of(d->kind);
		if (ops->external ? d->obj > 2 : (d->obj < 3 || (size_t)d->obj >= nobjs))
			return cd_err_set(
			    err, EINVAL,
			    "pid %d: fd %d: field \"obj\": %d out of range for kind %d", t->pid,
			    d->fd, d->obj, d->kind);
		if ((ops->check && (r = ops->check(c, t, d, err)) < 0) ||
		    (r = check_fd_pids(img, t, d, err)) < 0 ||
		    (r = check_fd_std(img, t, d, err)) < 0)
			return r;
	}
	return 0;
}

static int check_refs(const struct cd_image *img, cd_err *err)
{
	_cleanup_free_ int64_t *ids = calloc(img->npipes + 1, sizeof(*ids));
	size_t nobjs = 3;
	int64_t dup;
	int r;

	if (!ids)
		return cd_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < img->npipes; i++)
		ids[i] = img->pipes[i].id;
	/* fds find their pipe by id: two with one id would be one pipe */
	if (cd_ints_sorted_repeat(ids, img->npipes, &dup))
		return cd_err_set(err, EINVAL, "pipes: field \"id\": %" PRId64 " repeated", dup);
	for (size_t i = 0; i < img->ntasks; i++)
		nobjs += img->tasks[i].nfds;
	_cleanup_free_ struct cd_unix_ref *refs = NULL;
	size_t nrefs = 0;
	if ((r = cd_unix_refs(img, &refs, &nrefs, err)) < 0)
		return r;
	struct cd_fd_check c = {
	    .img = img, .pipe_ids = ids, .npipes = img->npipes, .unix_refs = refs, .nunix = nrefs};
	for (size_t i = 0; i < img->ntasks; i++)
		if ((r = check_fd_refs(&c, &img->tasks[i], nobjs, err)) < 0)
			return r;
	for (size_t i = 0; i < img->ntasks; i++)
		if ((r = cd_sysv_check_attachments(img, &img->tasks[i], err)) < 0)
			return r;
	if (!cd_image_task((struct cd_image *)img, img->root))
		return cd_err_set(err, EINVAL, "field \"root\": pid %d is not among the tasks",
		                  img->root);
	return cd_session_check((struct cd_image *)img, err);
}

/* "parent", optional: where the runs of CD_RUN_PREV come from. */
static int parent_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	json_t *o = json_object_get(root, "parent");
	int64_t hash;
	int r;

	if (!o)
		return 0;
	if ((r = cd_json_get_object(root, "parent", &o, err)) < 0 ||
	    (r = cd_json_get_strdup(o, "path", CD_PATH_MAX - 1, &img->parent, err)) < 0 ||
	    (r = cd_json_get_int(o, "hash", INT64_MIN, INT64_MAX, &hash, err)) < 0)
		return cd_err_wrap(err, "parent");
	if (img->parent[0] != '/')
		return cd_err_set(err, EINVAL, "parent: field \"path\": not absolute");
	img->parent_hash = (uint64_t)hash;
	return 0;
}

/* "pages", optional: how page data is stored (streams, codec); absent,
 * the plain single file per task. */
static int pages_layout_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	json_t *o = json_object_get(root, "pages");
	_cleanup_free_ char *codec = NULL;
	int64_t streams;
	int r;

	img->pages = (struct cd_page_layout){.streams = 1, .codec = CD_CODEC_NONE};
	if (!o)
		return 0;
	if ((r = cd_json_get_object(root, "pages", &o, err)) < 0 ||
	    (r = cd_json_get_int(o, "streams", 1, CD_STREAMS_MAX, &streams, err)) < 0 ||
	    (r = cd_json_get_strdup(o, "codec", 16, &codec, err)) < 0 ||
	    (r = cd_page_codec_parse(codec, &img->pages.codec, err)) < 0)
		return cd_err_wrap(err, "pages");
	img->pages.streams = (unsigned)streams;
	return 0;
}

/* Pages from the parent image: only in an image that has one, and only in
 * private anonymous mappings (the only ones tracked, dirty.c). */
static int check_prev_runs(const struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		for (size_t j = 0; j < t->nvmas; j++) {
			const struct cd_vma *v = &t->vmas[j];
			for (size_t k = 0; k < v->nruns; k++) {
				if (v->runs[k].src != CD_RUN_PREV)
					continue;
				if (!img->parent || v->kind != CD_VMA_ANON)
					return cd_err_set(err, EINVAL,
					                  "task %d: mapping %" PRIx64
					                  ": field \"runs\": pages from a parent "
					                  "image %s",
					                  t->pid, v->start,
					                  img->parent ? "in a mapping not private "
					                                "anonymous"
					                              : "the image does not name");
			}
		}
	}
	return 0;
}

static int image_from_json(json_t *root, const struct cd_runs_cuts *cuts, struct cd_image *img,
                           cd_err *err)
{
	int r;

	memset(img, 0, sizeof(*img));
	if (!json_is_object(root))
		return cd_err_set(err, EINVAL, "not a cedana image (not a JSON object)");
	if ((r = check_header(root, img, err)) < 0 || (r = pipes_from_json(root, img, err)) < 0 ||
	    (r = memfds_from_json(root, img, err)) < 0 ||
	    (r = deleted_list_from_json(root, img, err)) < 0 ||
	    (r = sysv_from_json(root, img, err)) < 0 ||
	    (r = tasks_from_json(root, cuts, img, err)) < 0 ||
	    (r = cd_image_plugins_from_json(root, img, err)) < 0 ||
	    (r = parent_from_json(root, img, err)) < 0 || (r = check_prev_runs(img, err)) < 0 ||
	    (r = pages_layout_from_json(root, img, err)) < 0)
		return r;
	return check_refs(img, err);
}

int cd_image_from_json(json_t *root, struct cd_image *img, cd_err *err)
{
	return image_from_json(root, NULL, img, err);
}

/* The checksum a child image names its parent by (cd_image_read_manifest_hashed). */
static uint64_t manifest_hash(const char *text, size_t len)
{
	struct cd_csum c;

	cd_csum_init(&c);
	cd_csum_update(&c, text, len);
	return cd_csum_final(&c);
}

int cd_image_write_manifest(const struct cd_image *img, int dirfd, uint64_t *ret_hash, cd_err *err)
{
	_cleanup_free_ char *s = NULL;
	_cleanup_close_ int fd = -1;
	size_t len = 0, off = 0;
	int r = manifest_text(img, &s, &len, err);

	if (r < 0)
		return r;
	/* refused now rather than by the restore, after the tree is gone */
	if (len > CD_MANIFEST_MAX)
		return cd_err_set(err, EFBIG, "%s: %zu bytes, more than the limit of %u bytes",
		                  CD_IMAGE_MANIFEST, len, CD_MANIFEST_MAX);
	fd = openat(dirfd, CD_IMAGE_MANIFEST, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cd_err_sys(err, errno, "create %s", CD_IMAGE_MANIFEST);
	while (off < len) {
		ssize_t n = write(fd, s + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cd_err_sys(err, errno, "write %s", CD_IMAGE_MANIFEST);
		off += (size_t)n;
	}
	if (fsync(fd) < 0)
		return cd_err_sys(err, errno, "fsync %s", CD_IMAGE_MANIFEST);
	/* of the bytes written: no read back to learn it */
	if (ret_hash)
		*ret_hash = manifest_hash(s, len);
	return 0;
}

/* Reads the whole manifest into memory in one go: through dirfd, never
 * following a link, refusing anything but a regular file of at most
 * CD_MANIFEST_MAX bytes before reading a byte of it. */
static int read_manifest_text(int dirfd, char **ret, size_t *ret_len, cd_err *err)
{
	_cleanup_close_ int fd =
	    openat(dirfd, CD_IMAGE_MANIFEST, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t len = 0;

	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", CD_IMAGE_MANIFEST);
	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "stat %s", CD_IMAGE_MANIFEST);
	if (!S_ISREG(st.st_mode))
		return cd_err_set(err, EINVAL, "%s: not a regular file", CD_IMAGE_MANIFEST);
	if (st.st_size > (off_t)CD_MANIFEST_MAX)
		return cd_err_set(err, EFBIG, "%s: %jd bytes, more than the limit of %u bytes",
		                  CD_IMAGE_MANIFEST, (intmax_t)st.st_size, CD_MANIFEST_MAX);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return cd_err_set(err, ENOMEM, "out of memory");
	cd_prefault(buf, (size_t)st.st_size);
	/* stops at the size seen: a file growing meanwhile reads as truncated */
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cd_err_sys(err, errno, "read %s", CD_IMAGE_MANIFEST);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* ---- the manifest read, with the mappings' runs cut out of jansson's way ----
 *
 * jansson keeps an object for every number of a list, about 1 us each: a
 * 4 GiB process whose memory is 440000 runs took 640 ms to parse, and the
 * objects held 100 MiB. Even as one string a list costs 25 ns a byte to
 * lex. So the writer's lists of runs are cut out of the text before
 * jansson sees it, each replaced by a placeholder string "\u0001K" (the K-th
 * cut), and the decode of a mapping reads the K-th list in place, from the
 * text (image-task.c, cd_runs_text; a copy of each was 5.7 MB of fresh
 * memory at 4 GiB). Only a list that follows ,"runs": is cut, which only a
 * key can be (inside a JSON string every quote is escaped), and only one
 * in the writer's form (no space, triples, numbers in range) with a run at
 * least: valid only in a mapping, where placeholders are read (an empty
 * list is a SysV segment's too); anything else is left to jansson. A text
 * that holds \u0001 itself is not cut at all: then every placeholder is one
 * of ours. */

struct cut_text {
	struct text t;
	struct cd_runs_cut *cut; /* in the original text */
	size_t n, cap;
};

static int cut_add(struct cut_text *c, const char *list, size_t n, const struct cd_runs_sum *sum)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct cd_runs_cut *p = realloc(c->cut, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->cut = p;
		c->cap = cap;
	}
	if (text_room(&c->t, 32) < 0)
		return -ENOMEM;
	c->t.len += (size_t)sprintf(c->t.s + c->t.len, "\"\\u0001%zu\"", c->n);
	c->cut[c->n++] = (struct cd_runs_cut){list, n, *sum};
	return 0;
}

/* Whether s holds \u0001. Searched between the cut lists only: a list
 * holds digits, commas and brackets. */
static bool has_mark(const char *s, size_t len)
{
	return memmem(s, len, "\\u0001", 6) != NULL;
}

/* c->t: text with the lists cut out, NUL-terminated; 1 where the text
 * holds \u0001 (then nothing of c is to be used); -ENOMEM. */
static int cut_runs(const char *text, size_t len, struct cut_text *c)
{
	static const char key[] = ",\"runs\":";
	const size_t klen = sizeof(key) - 1;
	const char *p = text, *end = text + len, *at;
	bool forgeable = false;

	while ((at = memmem(p, (size_t)(end - p), key, klen))) {
		const char *list = at + klen;
		struct cd_runs_sum sum;
		size_t n = cd_runs_text_scan(list, (size_t)(end - list), &sum);
		/* an empty list is left as it is: a SysV segment's pairs come
		 * under the same key, and no list is faster cut */
		n = n > 2 ? n : 0;
		forgeable |= has_mark(p, (size_t)(list - p));
		if (text_room(&c->t, (size_t)(list - p)) < 0)
			return -ENOMEM;
		memcpy(c->t.s + c->t.len, p, (size_t)(list - p));
		c->t.len += (size_t)(list - p);
		if (n && cut_add(c, list, n, &sum) < 0)
			return -ENOMEM;
		p = list + n;
	}
	if (text_room(&c->t, (size_t)(end - p) + 1) < 0)
		return -ENOMEM;
	memcpy(c->t.s + c->t.len, p, (size_t)(end - p));
	c->t.len += (size_t)(end - p);
	c->t.s[c->t.len] = 0;
	return forgeable || has_mark(p, (size_t)(end - p)) ? 1 : 0;
}

/* A task whose mappings share pages with a child copy-on-write is
 * premapped (mem.c, plan_lazy), and a child's pages of its parent are
 * looked up in the parent's runs (mem.c, parent_pages): such a parent's
 * runs are read now. */
static int load_shared_runs(struct cd_image *img, cd_err *err)
{
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		struct cd_task *p = cd_image_task(img, t->ppid);
		bool shares = false;
		for (size_t j = 0; j < t->nvmas && !shares; j++)
			for (size_t k = 0; k < t->vmas[j].nruns && !shares; k++)
				shares = t->vmas[j].runs[k].src == CD_RUN_PARENT;
		for (size_t j = 0; shares && p && j < p->nvmas; j++) {
			int r = cd_vma_runs_load(&p->vmas[j], err);
			if (r < 0)
				return cd_err_wrap(err, "task %d, mapping %zu", p->pid, j);
		}
	}
	return 0;
}

static int decode_manifest(const char *text, size_t len, bool later, struct cd_image *img,
                           cd_err *err)
{
	struct cut_text c = {0};
	json_error_t jerr;
	json_t *root = NULL;
	int r = cut_runs(text, len, &c);

	memset(img, 0, sizeof(*img));
	if (r > 0) {
		/* a placeholder could be forged: jansson reads the text whole */
		root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		c.n = 0;
	} else if (r == 0) {
		root = json_loadb(c.t.s, c.t.len, JSON_REJECT_DUPLICATES, &jerr);
	}
	free(c.t.s);
	if (r < 0)
		r = cd_err_set(err, ENOMEM, "out of memory");
	else if (!root)
		r = cd_err_set(err, EINVAL, "%s: corrupt or truncated (line %d: %s)",
		               CD_IMAGE_MANIFEST, jerr.line, jerr.text);
	else if ((r = image_from_json(root, &(struct cd_runs_cuts){c.cut, c.n, later}, img, err)) <
	             0 ||
	         (later && (r = load_shared_runs(img, err)) < 0))
		r = cd_err_wrap(err, "%s", CD_IMAGE_MANIFEST);
	if (r < 0)
		cd_image_free(img);
	json_decref(root);
	free(c.cut);
	return r;
}

int cd_image_decode_manifest(const char *text, size_t len, struct cd_image *img, cd_err *err)
{
	return decode_manifest(text, len, false, img, err);
}

int cd_image_decode_manifest_lazy(const char *text, size_t len, struct cd_image *img, cd_err *err)
{
	return decode_manifest(text, len, true, img, err);
}

/* The manifest of dirfd decoded into img; with ret_hash, the checksum of
 * its bytes; later: as cd_image_read_manifest_lazy. */
static int read_manifest(int dirfd, bool later, struct cd_image *img, uint64_t *ret_hash,
                         cd_err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_manifest_text(dirfd, &text, &len, err);

	if (r < 0)
		return r;
	if (ret_hash)
		*ret_hash = manifest_hash(text, len);
	if ((r = decode_manifest(text, len, later, img, err)) < 0)
		return r;
	/* what the mappings kept of it */
	if (later)
		img->text = TAKE_PTR(text);
	return 0;
}

int cd_image_read_manifest(int dirfd, struct cd_image *img, cd_err *err)
{
	return read_manifest(dirfd, false, img, NULL, err);
}

int cd_image_read_manifest_lazy(int dirfd, struct cd_image *img, cd_err *err)
{
	return read_manifest(dirfd, true, img, NULL, err);
}

int cd_image_read_manifest_hashed(int dirfd, struct cd_image *img, uint64_t *ret_hash, cd_err *err)
{
	return read_manifest(dirfd, false, img, ret_hash, err);
}

int cd_image_manifest_hash(int dirfd, uint64_t *ret_hash, cd_err *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_manifest_text(dirfd, &text, &len, err);

	if (r < 0)
		return r;
	*ret_hash = manifest_hash(text, len);
	return 0;
}

/* Checksums the file through read-only mappings: its pages land in the
 * page cache, where the restore that follows maps them again, and no copy
 * is made here. */
static int verify_file(int dirfd, const char *name, uint64_t size, uint64_t csum,
                       struct cd_progress *progress, cd_err *err)
{
	const uint64_t window = 64 << 20;
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct cd_csum c;
	struct stat st;

	if (fd < 0)
		return cd_err_sys(err, errno, "open %s", name);
	if (fstat(fd, &st) < 0)
		return cd_err_sys(err, errno, "stat %s", name);
	if ((uint64_t)st.st_size != size)
		return cd_err_set(err, EINVAL,
		                  "%s: truncated or corrupt (%jd bytes, expected %" PRIu64 ")",
		                  name, (intmax_t)st.st_size, size);
	cd_csum_init(&c);
	for (uint64_t off = 0; off < size; off += window) {
		size_t len = size - off < window ? (size_t)(size - off) : (size_t)window;
		void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)off);
		if (p == MAP_FAILED)
			return cd_err_sys(err, errno, "map %s", name);
		cd_csum_update(&c, p, len);
		munmap(p, len);
		if (progress)
			cd_progress_add(progress, len);
	}
	if (cd_csum_final(&c) != csum)
		return cd_err_set(err, EINVAL, "%s: checksum mismatch (corrupt image)", name);
	return 0;
}

/* verify_file for the streams of t's page data: decoded and summed. */
static int verify_streams(const struct cd_image *img, int dirfd, const struct cd_task *t,
                          struct cd_progress *progress, cd_err *err)
{
	_cleanup_(cd_pr_freep) struct cd_page_reader *pr = NULL;
	int r = cd_pr_open_layout(dirfd, t->pages_file, t->pages_size, &img->pages, &pr, err);

	for (uint64_t left = t->pages_size; r >= 0 && left;) {
		const void *src;
		size_t n;
		if ((r = cd_pr_next(pr, 64 << 20, &src, &n, err)) >= 0) {
			left -= n;
			if (progress)
				cd_progress_add(progress, n);
		}
	}
	return r < 0 ? r : cd_pr_check(pr, NULL, t->pages_csum, err);
}

static int check_size(int dirfd, const char *name, uint64_t size, cd_err *err)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, 0) < 0)
		return cd_err_sys(err, errno, "stat %s", name);
	if ((uint64_t)st.st_size != size)
		return cd_err_set(err, EINVAL,
		                  "%s: truncated or corrupt (%jd bytes, expected %" PRIu64 ")",
		                  name, (intmax_t)st.st_size, size);
	return 0;
}

/* The contents files of the memfds and deleted files that are their own
 * (images before those files hold the contents in the manifest): checked
 * whole before anything is made. */
static int verify_contents(const struct cd_image *img, int dirfd, struct cd_progress *progress,
                           cd_err *err)
{
	char name[64];
	int r;

	for (size_t i = 0; i < img->nmemfds; i++) {
		const struct cd_memfd *m = &img->memfds[i];
		if (m->of != (int)i || m->data)
			continue;
		cd_contents_file("memfd", i, name, sizeof(name));
		if ((r = verify_file(dirfd, name, m->len, m->csum, progress, err)) < 0)
			return r;
	}
	for (size_t i = 0; i < img->ndeleted; i++) {
		const struct cd_deleted *f = &img->deleted[i];
		if (f->of != (int)i || f->data)
			continue;
		cd_contents_file("deleted", i, name, sizeof(name));
		if ((r = verify_file(dirfd, name, f->len, f->csum, progress, err)) < 0)
			return r;
	}
	return 0;
}

int cd_image_check_pages(const struct cd_image *img, int dirfd, struct cd_progress *progress,
                         cd_err *err)
{
	char name[64];

	for (size_t i = 0; progress && i < img->nsysv_shm; i++)
		progress->total += img->sysv_shm[i].pages_size;
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		int r = t->zombie ? 0
		        : cd_page_layout_plain(&img->pages)
		            ? check_size(dirfd, t->pages_file, t->pages_size, err)
		            : cd_page_files_check(dirfd, t->pages_file, t->pages_size, &img->pages,
		                                  err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < img->nsysv_shm; i++) {
		const struct cd_sysv_shm *m = &img->sysv_shm[i];
		cd_sysv_shm_file(m, name, sizeof(name));
		int r = verify_file(dirfd, name, m->pages_size, m->pages_csum, progress, err);
		if (r < 0)
			return r;
	}
	int r = verify_contents(img, dirfd, NULL, err);
	if (r < 0)
		return r;
	if (progress && img->nsysv_shm)
		cd_progress_end(progress);
	return 0;
}

int cd_image_verify_pages(const struct cd_image *img, int dirfd, struct cd_progress *progress,
                          cd_err *err)
{
	char name[64];

	for (size_t i = 0; progress && i < img->ntasks; i++)
		progress->total += img->tasks[i].pages_size;
	for (size_t i = 0; progress && i < img->nsysv_shm; i++)
		progress->total += img->sysv_shm[i].pages_size;
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct cd_task *t = &img->tasks[i];
		int r = t->zombie ? 0
		        : cd_page_layout_plain(&img->pages)
		            ? verify_file(dirfd, t->pages_file, t->pages_size, t->pages_csum,
		                          progress, err)
		            : verify_streams(img, dirfd, t, progress, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < img->nsysv_shm; i++) {
		const struct cd_sysv_shm *m = &img->sysv_shm[i];
		cd_sysv_shm_file(m, name, sizeof(name));
		int r = verify_file(dirfd, name, m->pages_size, m->pages_csum, progress, err);
		if (r < 0)
			return r;
	}
	int r = verify_contents(img, dirfd, NULL, err);
	if (r < 0)
		return r;
	if (progress)
		cd_progress_end(progress);
	return 0;
}
