/* A checkpoint of a user's job is the user's file: they may have edited its
 * manifest to ask for root's credentials. Checked before root restores it. */
#pragma once

#include <sys/types.h>

#include "shared/error.h"

/* 0 when owner is root, or when every task of the image in dir has real,
 * effective, saved and filesystem uid owner and gid gid, supplementary
 * groups among owner's (group database) or gid, and empty inheritable,
 * permitted, effective and ambient capability sets; else -EPERM naming the
 * task and the field. */
int image_trust_check(const char *dir, uid_t owner, gid_t gid, cd_err *err);
