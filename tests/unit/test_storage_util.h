/* Helpers shared by the storage unit tests: scratch directories, a sample
 * image tree, and tree comparison. They fail the running test on any error. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $TMPDIR (or /var/tmp); free with tu_rmtree + free. */
char *tu_tmpdir(void);
void tu_rmtree(const char *path);
/* "a" + "/" + "b", caller frees. */
char *tu_join(const char *a, const char *b);

void tu_write(const char *dir, const char *rel, const void *data, size_t len);
/* Reads a whole file; *len gets its size. Caller frees. */
uint8_t *tu_read(const char *path, size_t *len);

/* A sample image: a multi-MiB page file of random and zero pages, nested
 * directories, a small and an empty file, an empty directory. */
void tu_make_image(const char *dir);
/* A tiny image: two small files in one subdirectory. */
void tu_make_small_image(const char *dir);

/* Asserts that both trees hold the same names, types and file contents. */
void tu_assert_same_tree(const char *a, const char *b);
/* Number of entries directly in dir (without . and ..). */
int tu_count_entries(const char *dir);
/* st_mode & 07777 of path. */
unsigned tu_mode(const char *path);
