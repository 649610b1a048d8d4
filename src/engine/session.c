/* Sessions and process groups: the dump plans the layout the restore will
 * create (new_sid, new_pgid of every task), refusing a tree whose layout
 * cannot be recreated; the decoder checks a plan read from an image; each
 * new task enters its place in it.
 *
 * The root always starts a session of its own (setsid): its session and
 * group may belong to a shell outside the tree, which the restore cannot
 * recreate. Tasks that shared the root's session share the new one; a
 * group whose leader is outside the tree becomes the group of the session's
 * restored leader, so its members still share one group. */
#include <errno.h>
#include <unistd.h>

#include "engine/internal.h"

/* A new task inherits its parent's session: only the root and session
 * leaders (setsid) can be in another. */
static int plan_session(struct cd_image *img, struct cd_task *t, cd_err *err)
{
	const struct cd_task *root = &img->tasks[0];

	if (t == root || t->sid == t->pid) {
		t->new_sid = t->pid;
		return 0;
	}
	const struct cd_task *parent = cd_image_task(img, t->ppid);
	const struct cd_task *leader = cd_image_task(img, t->sid);
	pid_t want = t->sid == root->sid ? root->pid : t->sid;
	if (t->sid != root->sid && !(leader && leader->sid == leader->pid))
		return cd_err_set(
		    err, EOPNOTSUPP,
		    "pid %d: its session leader %d is outside the tree and not the root's", t->pid,
		    t->sid);
	if (!parent || parent->new_sid != want)
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: in session %d, apart from its parent %d, and not its "
		                  "leader: the session cannot be recreated",
		                  t->pid, t->sid, t->ppid);
	t->new_sid = want;
	return 0;
}

/* Whether pid is below anc in the tree. */
static bool is_below(struct cd_image *img, pid_t pid, pid_t anc)
{
	for (size_t depth = 0; depth < img->ntasks; depth++) {
		const struct cd_task *t = cd_image_task(img, pid);
		if (!t || t->pid == img->root)
			return false;
		if (t->ppid == anc)
			return true;
		pid = t->ppid;
	}
	return false;
}

/* Sessions are planned for all before: a group's leader may be on a
 * branch that comes later in the tree order. */
static int plan_group(struct cd_image *img, struct cd_task *t, cd_err *err)
{
	if (t->new_sid == t->pid || t->pgid == t->pid) {
		t->new_pgid = t->pid;
		return 0;
	}
	const struct cd_task *leader = cd_image_task(img, t->pgid);
	if (!leader) {
		/* a session leader always leads its own group */
		t->new_pgid = t->new_sid;
		return 0;
	}
	/* a group whose leader moved on exists only while it has members:
	 * a new group can only be started by its leader; and a task enters
	 * its group before its children exist */
	if (leader->pgid != leader->pid || leader->new_sid != t->new_sid ||
	    is_below(img, leader->pid, t->pid))
		return cd_err_set(err, EOPNOTSUPP,
		                  "pid %d: its process group %d has lost its leader or is led by "
		                  "its descendant: the group cannot be recreated",
		                  t->pid, t->pgid);
	t->new_pgid = leader->pid;
	return 0;
}

int cd_session_plan(struct cd_image *img, cd_err *err)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < img->ntasks; i++)
		r = plan_session(img, &img->tasks[i], err);
	for (size_t i = 0; r >= 0 && i < img->ntasks; i++)
		r = plan_group(img, &img->tasks[i], err);
	return r;
}

/* What set_session relies on: each session and group is started by a task
 * of the image that leads it, and a task that does not start a session is
 * in its parent's. */
static int check_task(struct cd_image *img, const struct cd_task *t, cd_err *err)
{
	const struct cd_task *s = cd_image_task(img, t->new_sid);
	const struct cd_task *g = cd_image_task(img, t->new_pgid);
	const struct cd_task *parent = cd_image_task(img, t->ppid);
	bool root = t->pid == img->root;

	if (t->zombie && root)
		return cd_err_set(err, EINVAL, "pid %d: the root is a zombie", t->pid);
	if (!root && parent && parent->zombie)
		return cd_err_set(err, EINVAL, "pid %d: its parent %d is a zombie", t->pid,
		                  parent->pid);
	if (!s || s->new_sid != s->pid || (root && t->new_sid != t->pid))
		return cd_err_set(err, EINVAL,
		                  "pid %d: field \"new_sid\": %d does not lead a session", t->pid,
		                  t->new_sid);
	if (!root && t->new_sid != t->pid && (!parent || parent->new_sid != t->new_sid))
		return cd_err_set(err, EINVAL,
		                  "pid %d: field \"new_sid\": %d is not its parent's session",
		                  t->pid, t->new_sid);
	/* (a group led by a descendant is the dump's to refuse: walking the
	 * tree here for every task would let a crafted image cost minutes;
	 * such an image fails at restore after 5 s) */
	if (!g || g->new_pgid != g->pid || g->new_sid != t->new_sid ||
	    (t->new_sid == t->pid && t->new_pgid != t->pid))
		return cd_err_set(err, EINVAL,
		                  "pid %d: field \"new_pgid\": %d does not lead a group of its "
		                  "session",
		                  t->pid, t->new_pgid);
	return 0;
}

int cd_session_check(struct cd_image *img, cd_err *err)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < img->ntasks; i++)
		r = check_task(img, &img->tasks[i], err);
	return r;
}

int cd_session_enter(const struct cd_task *t, cd_err *err)
{
	if (t->new_sid == t->pid) {
		if (setsid() < 0)
			return cd_err_sys(err, errno, "setsid");
		return 0;
	}
	if (t->new_pgid == getpgid(0))
		return 0;
	/* A group led by a task on another branch may not exist yet: its
	 * leader is being created concurrently. The plan says it will (up to
	 * 5 s). */
	for (int tries = 0;; tries++) {
		if (setpgid(0, t->new_pgid == t->pid ? 0 : t->new_pgid) == 0)
			return 0;
		if (errno != EPERM || tries == 500)
			return cd_err_sys(err, errno, "setpgid %d", t->new_pgid);
		usleep(10000);
	}
}
