/* The in-memory model of a checkpoint image and its on-disk codec.
 * docs/image-format.md describes the files field by field. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "shared/error.h"

#define CD_IMAGE_FORMAT   "cedana-image"
#define CD_IMAGE_VERSION  1
#define CD_IMAGE_MANIFEST "manifest.json"
#define CD_PAGE_SIZE      ((uint64_t)4096)

/* Page data layout (engine/pageio.h, docs/image-format.md "pages"). */
#define CD_STREAMS_MAX 16

enum cd_page_codec {
	CD_CODEC_NONE,
	CD_CODEC_LZ4,
	CD_CODEC_ZSTD,
	CD_CODEC_COUNT,
};

struct cd_page_layout {
	unsigned streams; /* 1..CD_STREAMS_MAX */
	enum cd_page_codec codec;
};

#define CD_NSIG    64
#define CD_NRLIMIT 16

/* Limits of what a manifest may hold; docs/image-format.md ("Limits") gives
 * the reasons. A manifest is input from outside (an image can be copied in,
 * unpacked from an archive, edited), so nothing in it is trusted to be small.
 *
 * The size: the largest legitimate content is a few full pipes, whose
 * unread data is hex in the manifest (a full default 1 MiB pipe is 2 MiB of
 * text, one at the dump's CD_PIPE_DATA_MAX of 16 MiB is 32 MiB), plus one task at
 * vm.max_map_count mappings (65530 x ~250 bytes with paths, 16 MiB), plus
 * fds and the rest. 64 MiB holds that; decoded it takes about five times as
 * much memory (a 49 MiB one, 65530 mappings and a 16 MiB pipe: 255 MB,
 * 4 s), which a restore can afford, where the 1.7 GB manifest of issue 11
 * grew the process to 2.4 GB. */
#define CD_MANIFEST_MAX  (64u << 20)
#define CD_MAX_TASKS     4096         /* what one dump takes (src/engine/dump.c) */
#define CD_MAX_THREADS   16384        /* threads of one task besides its main one */
#define CD_MAX_VMAS      65530        /* vm.max_map_count default, per task */
#define CD_MAX_RUNS      (1u << 20)   /* per mapping; also at most one per page */
#define CD_MAX_FDS       (1u << 20)   /* fs.nr_open default, per task */
#define CD_MAX_PIPES     (1u << 16)   /* per image */
#define CD_MAX_MEMFDS    (1u << 12)   /* per image */
#define CD_MEMFD_BYTES   (8u << 20)   /* contents of one memfd, hex in an older manifest */
#define CD_CONTENTS_MAX  (1ull << 44) /* contents of a memfd or deleted file, in its file */
#define CD_MAX_DELETED   (1u << 12)   /* deleted files per image */
#define CD_DELETED_BYTES (8u << 20)   /* contents of one deleted file */
#define CD_MAX_GROUPS    65536        /* NGROUPS_MAX */
#define CD_MAX_PENDING   (1u << 16)   /* queued signals per queue (RLIMIT_SIGPENDING scale) */
#define CD_PIPE_DATA_MAX (16u << 20)  /* unread bytes one pipe copies at dump */
#define CD_XSTATE_MAX    (1u << 16)   /* XSAVE area, AMX included, is ~11 KiB */
#define CD_PATH_MAX      4096         /* PATH_MAX */
#define CD_PID_MAX       4194304      /* PID_MAX_LIMIT on 64-bit */
#define CD_PIPE_SIZE_MAX (1u << 31)   /* the kernel's ceiling for F_SETPIPE_SZ */
#define CD_ADDR_MAX      (1ULL << 57) /* top of user space with 5-level paging */
#define CD_MAX_TIMERS    (1u << 16)   /* POSIX timers per task (RLIMIT_SIGPENDING scale) */
#define CD_MAX_LOCKS     (1u << 20)   /* file locks per task */
#define CD_MAX_SYSV      (1u << 15)   /* SysV objects of one kind per image (IPCMNI) */
#define CD_SYSV_SHM_MAX  (1ULL << 40) /* bytes of one SysV segment */
#define CD_SYSV_MSG_MAX  (16u << 20)  /* bytes of the messages of one queue (hex in the manifest) */
#define CD_SYSV_MSGS     (1u << 16)   /* messages of one queue */
#define CD_SYSV_SEMS     32000        /* semaphores of one set (SEMMSL's ceiling) */
#define CD_UNIX_ADDR_MAX 108          /* sizeof(sun_path) */
#define CD_SK_QUEUE_MAX  (1u << 16)   /* messages queued in one unix socket */
#define CD_SK_FDS_MAX    253u         /* fds one message carries (SCM_MAX_FD) */
#define CD_TCP_QUEUE_MAX (64u << 20)  /* bytes of one TCP queue (send or receive) */

enum cd_vma_kind {
	CD_VMA_ANON,        /* private anonymous (heap, stacks, bss) */
	CD_VMA_FILE,        /* private file mapping: only COW'd pages stored */
	CD_VMA_FILE_SHARED, /* shared file mapping: contents stay in the file */
	CD_VMA_ANON_SHARED, /* shared anonymous: contents stored once per object */
	CD_VMA_VDSO,
	CD_VMA_VVAR,
	CD_VMA_VVAR_VCLOCK,
	/* an attachment (shmat) of a SysV segment of the image: shmid is its
	 * id, its contents are the segment's (struct cd_sysv_shm); after the
	 * vDSO family so older images keep their numbers */
	CD_VMA_SYSV_SHM,
	/* an AIO ring (io_setup) with no completion unreaped: made again by
	 * io_setup and moved to start (its context id); shmid is its head (=
	 * its tail), which the restore moves the new ring's to (mem.c) */
	CD_VMA_AIO,
	CD_VMA_KIND_MAX,
};

/* The vDSO family: CD_VMA_VDSO .. CD_VMA_VVAR_VCLOCK. */
#define CD_VMA_VDSO_END (CD_VMA_VVAR_VCLOCK + 1)
static inline bool cd_vma_is_vdso(int kind)
{
	return kind >= CD_VMA_VDSO && kind < CD_VMA_VDSO_END;
}

/* Where the contents of a run of pages come from. */
enum cd_run_src {
	CD_RUN_DATA = 0,   /* the task's page file, back to back in VMA order */
	CD_RUN_ZERO = 1,   /* all zero: nothing stored */
	CD_RUN_PARENT = 2, /* still shared copy-on-write with the parent task at the
	                    * same address: the parent's image holds them */
	CD_RUN_GUARD = 3,  /* guard region (MADV_GUARD_INSTALL): no page, a touch faults;
	                    * installed again after the fill */
	CD_RUN_PREV = 4,   /* not written since the previous checkpoint (the image's
	                    * parent): the same task's pages at the same address there
	                    * (parent.c); private anonymous mappings only */
};

/* VMA flags a program sets with mlock or madvise and may notice (the
 * names are /proc/PID/smaps VmFlags): the dump records them, the restore
 * sets them again once the mapping is filled (mem.c). */
enum cd_vma_flag {
	CD_VMF_LOCKED = 1 << 0,      /* lo: mlock */
	CD_VMF_LOCKONFAULT = 1 << 1, /* lf: mlock2(MLOCK_ONFAULT), with lo */
	CD_VMF_DONTFORK = 1 << 2,    /* dc: MADV_DONTFORK */
	CD_VMF_WIPEONFORK = 1 << 3,  /* wf: MADV_WIPEONFORK */
	CD_VMF_HUGEPAGE = 1 << 4,    /* hg: MADV_HUGEPAGE */
	CD_VMF_NOHUGEPAGE = 1 << 5,  /* nh: MADV_NOHUGEPAGE */
	CD_VMF_DONTDUMP = 1 << 6,    /* dd: MADV_DONTDUMP */
	CD_VMF_MERGEABLE = 1 << 7,   /* mg: MADV_MERGEABLE */
	CD_VMF_RANDOM = 1 << 8,      /* rr: MADV_RANDOM */
	CD_VMF_SEQUENTIAL = 1 << 9,  /* sr: MADV_SEQUENTIAL */
	CD_VMF_MAYWRITE = 1 << 10,   /* mw: a shared file mapping's file was open for writing, so
	                              * mprotect may add PROT_WRITE; a SysV attachment made
	                              * without SHM_RDONLY */
	CD_VMF_NORESERVE = 1 << 11,  /* nr: MAP_NORESERVE */
	CD_VMF_ALL = (1 << 12) - 1,
};

/* mlockall(MCL_FUTURE) of a task: new mappings are locked. */
enum cd_mlock_future {
	CD_MLOCK_FUTURE_NONE,
	CD_MLOCK_FUTURE,         /* MCL_FUTURE */
	CD_MLOCK_FUTURE_ONFAULT, /* MCL_FUTURE | MCL_ONFAULT */
};

/* A run of pages of one VMA: page index from the VMA start, length, source. */
struct cd_run {
	uint64_t page;
	uint64_t npages;
	uint8_t src; /* enum cd_run_src */
};

struct cd_vma {
	uint64_t start, end, pgoff;
	int prot;
	bool shared, growsdown;
	enum cd_vma_kind kind;
	uint32_t flags; /* enum cd_vma_flag */
	char *path;     /* file mappings */
	uint64_t dev, ino;
	uint64_t fsize;   /* private file mappings: the file's size and mtime at */
	int64_t mtime_ns; /* dump time, so a changed file is refused on restore */
	/* ANON_SHARED: object id (its inode number) shared by the tasks mapping
	 * it; SYSV_SHM: the segment's SysV id */
	int64_t shmid;
	struct cd_run *runs;
	size_t nruns;
	/* Read by cd_image_read_manifest_lazy: a mapping a lazy restore leaves
	 * to its server (cd_vma_lazy_able, with data and only data and zero
	 * runs) keeps its runs as their list's text in the manifest, checked
	 * when read, instead of runs (NULL, nruns 0): the server reads them
	 * once the tree runs. text NULL: none. */
	struct cd_runs_later {
		const char *text; /* in cd_image.text */
		size_t len;
		size_t nruns, ndata; /* runs, data runs */
		uint64_t data_pages;
	} later;
};

/* Whether a private anonymous mapping's kind and flags let a lazy restore
 * leave it to its server (lazy.c): not locked (mlock would fault before the
 * server runs), not wipe-on-fork (a forked child must read zero, not the
 * image), not shared or grow-down. */
bool cd_vma_lazy_able(const struct cd_vma *v);
/* v's runs from its text (cd_vma.later); 0 with none left there. */
int cd_vma_runs_load(struct cd_vma *v, cd_err *err);
/* Page data bytes of v: its data runs, stored or left as text. */
uint64_t cd_vma_data_bytes(const struct cd_vma *v);

struct cd_mm {
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv[128];
	size_t auxv_len; /* in u64 words */
	char *exe;
};

enum cd_fd_kind {
	CD_FD_REG,   /* regular file */
	CD_FD_DIR,   /* directory */
	CD_FD_CHR,   /* character device reopened by path: null, zero, urandom, tty */
	CD_FD_PIPE,  /* pipe end; obj names the pipe */
	CD_FD_FIFO,  /* named pipe; obj names the pipe */
	CD_FD_STDIO, /* external stdio (the dump caller's): replaced by the restore
	              * caller; obj = std = 0..2 */
	CD_FD_PATH,  /* O_PATH: reopened by path with O_PATH (O_NOFOLLOW for a symlink) */
	CD_FD_PROC,  /* a file under /proc/PID of a task of the image: reopened by the
	              * task itself once the tree exists (pids are restored as they were) */
	/* memfd (memfd.c): obj names its entry of the image's memfds */
	CD_FD_MEMFD,
	/* a deleted regular file (fd-deleted.c): obj names its entry of the
	 * image's deleted files */
	CD_FD_DELETED,
	CD_FD_EVENTFD,  /* eventfd: count and semaphore */
	CD_FD_SIGNALFD, /* signalfd: sigmask */
	CD_FD_TIMERFD,  /* timerfd: clock, settime flags, ticks, value, interval */
	CD_FD_EPOLL,    /* epoll: its watches, fds of the same task */
	CD_FD_INOTIFY,  /* inotify: its watches, by path */
	CD_FD_UNIX,     /* unix socket (fd-unix.c): type, name, listening state, options */
	CD_FD_INET,     /* TCP or UDP socket, IPv4 or IPv6 (fd-inet.c): address, state, options */
	CD_FD_NETLINK,  /* netlink socket (fd-netlink.c): protocol, multicast groups */
	CD_FD_PIDFD,    /* pidfd (fd-pidfd.c): the pid or tid it refers to */
	CD_FD_KIND_MAX,
};

/* A watch of an epoll (epoll_ctl): an fd of the epoll's task, its events
 * (EPOLLONESHOT, EPOLLET, EPOLLEXCLUSIVE included) and data. */
struct cd_epoll_watch {
	int tfd;
	uint32_t events;
	uint64_t data;
};

/* A watch of an inotify instance: its descriptor (1..n in order), mask
 * (IN_ONESHOT, IN_EXCL_UNLINK included) and the watched inode's path. */
struct cd_inotify_watch {
	int wd;
	uint32_t mask;
	char *path;
};

struct cd_fd {
	int fd;
	enum cd_fd_kind kind;
	int flags;    /* open flags (fdinfo), O_CLOEXEC included */
	uint64_t pos; /* file position */
	char *path;
	int obj;     /* shared open file description id within the image */
	bool writer; /* pipe: the write end */
	/* SIGIO ownership (F_GETOWN_EX, F_GETSIG): own_pid 0 when none; the
	 * owner is always a task (or a group) of the image */
	int own_type; /* F_OWNER_TID, F_OWNER_PID or F_OWNER_PGRP */
	pid_t own_pid;
	int sig; /* F_SETSIG: 0 is SIGIO */
	/* The root's std slot (0..2) whose open file this is, -1 for none: the
	 * root's fd N is slot N, another fd sharing the open file of root fds
	 * 0-2 the lowest of them. A restore caller may replace a slot
	 * (engine.h, stdio_fd); a CD_FD_STDIO fd always has std == obj. */
	int std;
	/* The kind's own fields (docs/image-format.md, Files). */
	uint64_t count;   /* eventfd: the counter, below UINT64_MAX */
	bool semaphore;   /* eventfd: EFD_SEMAPHORE */
	uint64_t sigmask; /* signalfd: the signals it reads, bit N-1 for signal N */
	/* timerfd: its clock, timerfd_settime flags, expirations not yet read,
	 * and its value: with TFD_TIMER_ABSTIME the deadline on its clock, else
	 * the time left; both 0 when disarmed */
	int tclock;
	int tflags;
	uint64_t ticks;
	int64_t vsec, vnsec, isec, insec;
	/* epoll: its watches, on the first fd of its open file in the image */
	struct cd_epoll_watch *watches;
	size_t nwatches;
	/* inotify: its watches in wd order, on the first fd of its open file */
	struct cd_inotify_watch *iwatches;
	size_t niwatches;
	/* unix socket: SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET; listening
	 * (with its backlog); SO_PASSCRED; SO_RCVBUF and SO_SNDBUF as getsockopt
	 * reads them (0: a fresh socket's default); its name, the bytes of
	 * sun_path (none: unbound; a leading NUL: an abstract name), and for a
	 * name in the filesystem its socket file's mode and owner */
	int sk_type;
	bool sk_listen, sk_passcred;
	uint32_t sk_backlog, sk_rcvbuf, sk_sndbuf;
	uint32_t sk_mode, sk_uid, sk_gid;
	uint8_t *sk_addr;
	size_t sk_addrlen;
	/* its inode and its peer's (0: not connected): a peer is always a
	 * socket of the image, connected back to this one; RCV_SHUTDOWN (1) and
	 * SEND_SHUTDOWN (2) of a connected stream or seqpacket socket; the
	 * messages waiting in its receive queue, in order (a stream's bytes in
	 * any number of pieces) */
	int64_t sk_ino, sk_peer;
	int sk_shutdown;
	uint32_t sk_iuid, sk_igid; /* the socket's own owner (fstat of the fd) */
	struct cd_sk_msg *sk_queue;
	size_t sk_nqueue;
	/* pidfd: the process (or with O_EXCL, PIDFD_THREAD, the thread) it
	 * refers to, always a task or a thread of the image */
	pid_t pidfd_pid;
	/* inet and netlink sockets (also sk_type, sk_listen, sk_backlog,
	 * sk_rcvbuf, sk_sndbuf, sk_ino, sk_iuid, sk_igid, and sk_addr: the
	 * socket's own address as getsockname gives it, none when unbound): the
	 * family and protocol; CD_SKO_* options; SO_LINGER's seconds (with
	 * CD_SKO_LINGER); SO_RCVTIMEO and SO_SNDTIMEO in microseconds (0: none);
	 * TCP_DEFER_ACCEPT in seconds; a connected UDP socket's peer address */
	int sk_family, sk_proto;
	uint32_t sk_opts, sk_linger, sk_defer;
	uint64_t sk_rcvtimeo, sk_sndtimeo;
	uint8_t *sk_paddr;
	size_t sk_paddrlen;
	/* an established TCP connection (sk_paddr its peer), restored through
	 * TCP repair; NULL for any other socket and on every fd of the open
	 * file but its first in the image */
	struct cd_tcp_conn *sk_tcp;
};

/* What TCP repair reads of an established connection and sets again
 * (fd-tcp.c). The queues' bytes are in the image file tcp-INO.img (INO the
 * socket's sk_ino): the send queue (sent but unacknowledged, then not yet
 * sent), then the receive queue (unread). */
struct cd_tcp_conn {
	uint32_t snd_seq; /* the first byte of the send queue (snd_una) */
	uint32_t rcv_seq; /* the first unread byte (copied_seq) */
	uint32_t sndq;    /* bytes of the send queue */
	uint32_t unsq;    /* of them, never sent */
	uint32_t rcvq;    /* bytes of the receive queue */
	uint32_t mss;     /* TCP_MAXSEG */
	uint32_t topts;   /* TCPI_OPT_TIMESTAMPS | _SACK | _WSCALE as negotiated */
	uint32_t swscale; /* the peer's window scale, with TCPI_OPT_WSCALE */
	uint32_t rwscale; /* ours */
	uint32_t tsval;   /* TCP_TIMESTAMP, with TCPI_OPT_TIMESTAMPS */
	uint32_t wl1, swnd, maxwnd, rwnd, rwup; /* TCP_REPAIR_WINDOW */
	uint32_t shut_rd;                       /* shutdown(SHUT_RD) was called: 1 */
	uint32_t kidle, kintvl, kcnt;           /* TCP_KEEPIDLE, _KEEPINTVL, _KEEPCNT */
	uint32_t cork;                          /* TCP_CORK */
};

/* Options of an inet socket (struct cd_fd, sk_opts). */
enum {
	CD_SKO_REUSEADDR = 1u << 0,
	CD_SKO_REUSEPORT = 1u << 1,
	CD_SKO_KEEPALIVE = 1u << 2,
	CD_SKO_NODELAY = 1u << 3,   /* TCP_NODELAY */
	CD_SKO_V6ONLY = 1u << 4,    /* IPV6_V6ONLY */
	CD_SKO_BROADCAST = 1u << 5, /* SO_BROADCAST */
	CD_SKO_LINGER = 1u << 6,    /* SO_LINGER on, for sk_linger seconds */
	CD_SKO_ALL = (1u << 7) - 1,
};

/* A message in a unix socket's receive queue, with the open files it
 * carries (SCM_RIGHTS): object ids of the image, in order; and when its
 * receiver has SO_PASSCRED, the credentials it carries (SCM_CREDENTIALS):
 * a task of the image and the ids it sent with. */
struct cd_sk_msg {
	uint8_t *data;
	size_t len;
	int *fds;
	size_t nfds;
	bool creds;
	pid_t cred_pid;
	uint32_t cred_uid, cred_gid;
};

/* A pipe (or FIFO) with the data that was unread at dump time. */
struct cd_pipe {
	int64_t id;    /* the pipe's inode number at dump time */
	uint32_t size; /* F_GETPIPE_SZ, at least len */
	char *data;
	size_t len;
};

/* A memfd (memfd_create) held by fds of one open file, or only mapped by
 * the tree, with its contents. */
struct cd_memfd {
	int obj;        /* the open file's id (struct cd_fd's obj); -1: an own entry of a
	                 * memfd only mapped by the tree (no fd holds it; shmid set) */
	int of;         /* the entry of the memfd itself: this one's own index, or an
	                 * earlier entry's (another open file of the same memfd) */
	char *name;     /* memfd_create's name, without "memfd:" */
	uint32_t seals; /* F_GET_SEALS; F_SEAL_SEAL alone when sealing was never allowed */
	uint32_t mode;  /* permission bits (0777, or 0666 once exec was removed) */
	uint32_t uid, gid;
	int64_t ino;  /* dump only: the inode, to find other opens and mappings of it */
	bool pending; /* dump only: mapped, its contents not saved yet */
	/* the contents, of size len: in the file "memfd-INDEX.img" of checksum
	 * csum, or (data not NULL: an image before those files) here */
	char *data;
	size_t len;
	uint64_t csum;
	/* an own entry of a memfd the tree also maps shared: the shmid of those
	 * mappings (struct cd_vma's, its inode), which the restore makes of
	 * this memfd; 0: not mapped */
	int64_t shmid;
};

/* A regular file deleted while open, held by fds of one open file, with its
 * contents: made again under its path and unlinked (fd-deleted.c). */
struct cd_deleted {
	int obj;    /* the open file's id (struct cd_fd's obj); -1: an own entry of a
	             * file only mapped shared (no fd of the tree holds it) */
	int of;     /* the entry of the file itself (as struct cd_memfd's) */
	char *path; /* where it was, without " (deleted)" */
	uint32_t mode, uid, gid;
	bool pending;     /* dump only: mapped, its contents not saved yet */
	int64_t ino, dev; /* dump only: to find other opens and mappings of it */
	/* the contents, as a memfd's: the file "deleted-INDEX.img" or data */
	char *data;
	size_t len;
	uint64_t csum;
};

/* A POSIX timer (timer_create), restored with the same id (posix-timers.c). */
struct cd_posix_timer {
	int id;
	int clock;      /* as /proc/PID/timers shows it: a CPU clock of the task is negative */
	int signo;      /* 0 only with SIGEV_NONE */
	int notify;     /* SIGEV_SIGNAL, SIGEV_NONE, or SIGEV_SIGNAL | SIGEV_THREAD_ID */
	pid_t tid;      /* SIGEV_THREAD_ID: the thread notified (the task's pid or one of its
	                 * threads); otherwise the task's pid */
	uint64_t value; /* sigev_value */
	/* timer_gettime: interval and time left (relative; 0 left: disarmed) */
	int64_t isec, insec, vsec, vnsec;
};

/* A file lock (locks.c), set again through the task's fd. POSIX locks
 * belong to the task, OFD and flock locks to the open file description:
 * each of those is recorded once in the image. */
enum cd_lock_kind {
	CD_LOCK_POSIX,
	CD_LOCK_OFD,
	CD_LOCK_FLOCK,
	CD_LOCK_KIND_MAX,
};

struct cd_lock {
	int fd;
	int kind; /* enum cd_lock_kind */
	int type; /* F_RDLCK or F_WRLCK (flock: LOCK_SH or LOCK_EX) */
	int64_t start;
	int64_t len; /* 0: to the end of the file, however far it grows */
};

/* A SysV shared memory segment the tree used (sysv-shm.c), made again with
 * its key and id in the restoring host's IPC namespace. Its contents are in
 * the page file "sysv-shm-ID.img": the pages of its data runs, back to back;
 * the other pages are zero. */
struct cd_sysv_shm {
	int32_t key; /* IPC_PRIVATE (0) for a private or removed one */
	int32_t id;
	uint32_t mode; /* permission bits */
	uint32_t uid, gid;
	bool removed; /* IPC_RMID'ed while attached (SHM_DEST): removed again once attached */
	bool locked;  /* SHM_LOCK */
	uint64_t size;
	uint64_t pages_size, pages_csum;
	struct cd_run *runs; /* src CD_RUN_DATA only, in page order */
	size_t nruns;
};

/* A message of a SysV queue: its type and text. */
struct cd_sysv_msg {
	int64_t mtype; /* > 0 */
	uint8_t *data;
	size_t len;
};

/* A SysV message queue the tree used, made again with its key and id, its
 * messages sent again in order. */
struct cd_sysv_msq {
	int32_t key;
	int32_t id;
	uint32_t mode, uid, gid;
	uint64_t qbytes; /* msg_qbytes */
	struct cd_sysv_msg *msgs;
	size_t nmsgs;
};

/* A SysV semaphore set the tree used, made again with its key, id and
 * values. */
struct cd_sysv_sem {
	int32_t key;
	int32_t id;
	uint32_t mode, uid, gid;
	bool operated;  /* semop'ed once (sem_otime set): programs wait for it after semget */
	uint16_t *vals; /* one per semaphore, at most SEMVMX (32767) */
	size_t nsems;
};

struct cd_sigact {
	uint64_t handler, flags, restorer, mask;
};

/* A NUMA memory policy (mempolicy.c), as get_mempolicy shows it: its mode
 * (MPOL_DEFAULT .. MPOL_WEIGHTED_INTERLEAVE), the mode flags
 * (MPOL_F_STATIC_NODES, _RELATIVE_NODES, _NUMA_BALANCING) and the nodes
 * as given (relative ones are not node numbers), bit N for node N. */
#define CD_MAX_NUMA_NODES 1024 /* MAX_NUMNODES with NODES_SHIFT 10 */
struct cd_mempolicy {
	int mode;
	int flags;
	uint64_t nodes[CD_MAX_NUMA_NODES / 64];
};

/* A private mapping's own policy (mbind): [start, end) is one mapping of
 * the task, which mbind made a mapping of its own. */
struct cd_vma_policy {
	uint64_t start, end;
	struct cd_mempolicy pol;
};

/* A seccomp filter (seccomp.c): its BPF program (struct sock_filter, 8
 * bytes each) and its flags (SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW). */
#define CD_SECCOMP_MAX_INSNS   4096  /* BPF_MAXINSNS */
#define CD_SECCOMP_MAX_PATH    32768 /* MAX_INSNS_PER_PATH: a chain's instructions, 4 more each */
#define CD_SECCOMP_MAX_FILTERS (CD_SECCOMP_MAX_PATH / 5)
struct cd_seccomp_filter {
	uint32_t flags;
	uint64_t *insns;
	size_t ninsns;
};

/* A thread of a task besides its main one (tid == pid), whose state is the
 * task's own fields. Process-wide state (memory, fds, handlers, the shared
 * pending queue, credentials) is the task's; these are the thread's own. */
struct cd_thread {
	pid_t tid;
	char comm[16];
	struct user_regs_struct regs; /* fs_base: its TLS */
	uint8_t *xstate;
	size_t xstate_len;
	uint64_t blocked;
	uint64_t ss_sp, ss_size;
	int ss_flags;
	uint8_t (*pending)[128]; /* siginfo_t, its private queue */
	size_t npending;
	uint64_t rseq_addr, rseq_sig;
	uint32_t rseq_len;
	uint64_t robust_head, robust_len, clear_tid;
	int nice, sched_policy, sched_prio, sched_reset_on_fork;
	uint64_t timer_slack_ns;
	uint64_t affinity[16];
	struct cd_mempolicy mempolicy; /* set_mempolicy: each thread has its own */
};

struct cd_task {
	pid_t pid, ppid, pgid, sid;
	/* the session and group the restore puts it in (session.c): the root
	 * starts its own, a group led outside the tree becomes its session's */
	pid_t new_pgid, new_sid;
	/* a zombie: exited, not yet reaped; only the fields above, comm and
	 * its wait status are recorded (restore.c re-creates it, it exits) */
	bool zombie;
	int exit_status;
	/* stopped (jobctl.c): the signal that stopped its group (SIGSTOP,
	 * SIGTSTP, SIGTTIN, SIGTTOU; 0: running), and whether its parent's
	 * wait (WUNTRACED) has still to report the stop */
	int stop_sig;
	bool stop_notify;
	char comm[16];
	struct user_regs_struct regs;
	uint8_t *xstate;
	size_t xstate_len;
	struct cd_vma *vmas;
	size_t nvmas;
	struct cd_mm mm;
	/* page file */
	char pages_file[64];
	uint64_t pages_size, pages_csum;
	/* files */
	struct cd_fd *fds;
	size_t nfds;
	char *cwd, *root;
	unsigned umask;
	/* signals */
	uint64_t blocked;
	struct cd_sigact act[CD_NSIG];
	uint64_t ss_sp, ss_size;
	int ss_flags;
	uint8_t (*pending)[128]; /* siginfo_t, private queue */
	size_t npending;
	uint8_t (*pending_shared)[128];
	size_t npending_shared;
	/* timers: it_interval/it_value sec,usec for REAL, VIRTUAL, PROF */
	int64_t itimer[3][4];
	struct cd_posix_timer *timers;
	size_t ntimers;
	/* file locks held through the task's fds */
	struct cd_lock *locks;
	size_t nlocks;
	/* misc attributes */
	uint64_t rseq_addr, rseq_sig;
	uint32_t rseq_len;
	uint64_t robust_head, robust_len, clear_tid;
	uint64_t rlim[CD_NRLIMIT][2];
	uint32_t uid[4], gid[4]; /* real, effective, saved, fs */
	uint32_t *groups;
	size_t ngroups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	unsigned long personality;
	int nice, oom_score_adj, no_new_privs, dumpable;
	/* sched_getscheduler (SCHED_RESET_ON_FORK apart) and sched_getparam */
	int sched_policy, sched_prio, sched_reset_on_fork;
	/* prctl: PR_GET_PDEATHSIG, _CHILD_SUBREAPER, _THP_DISABLE, _TIMERSLACK */
	int pdeathsig, child_subreaper, thp_disable;
	uint64_t timer_slack_ns;
	uint32_t loginuid;     /* /proc/PID/loginuid; (uint32_t)-1 when unset */
	uint32_t membarrier;   /* MEMBARRIER_CMD_REGISTER_* bits registered for the mm */
	int mlock_future;      /* enum cd_mlock_future */
	uint64_t affinity[16]; /* cpu mask, 1024 cpus */
	/* seccomp: 0 none, 1 strict, 2 filters (oldest first), every thread's */
	int seccomp_mode;
	struct cd_seccomp_filter *filters;
	size_t nfilters;
	/* NUMA: the main thread's policy, and the mappings with their own */
	struct cd_mempolicy mempolicy;
	struct cd_vma_policy *vpols;
	size_t nvpols;
	/* the other threads, in the order they are recreated */
	struct cd_thread *threads;
	size_t nthreads;
};

/* The plugins that took part in a dump (docs/plugins.md): for each, the
 * tasks whose pause_devices or checkpoint_devices returned CD_PLUGIN_OK.
 * A restore refuses the image unless each is loaded and ready, and calls
 * its restore_devices for those tasks. */
#define CD_MAX_IMAGE_PLUGINS 16
#define CD_PLUGIN_NAME_MAX   64
struct cd_image_plugin {
	char name[CD_PLUGIN_NAME_MAX + 1]; /* [a-z0-9-]+ */
	pid_t *pids;
	size_t npids;
};

struct cd_image {
	int version;
	char kernel[65];
	pid_t root;
	bool shell_job;
	struct cd_task *tasks;
	size_t ntasks;
	struct cd_pipe *pipes;
	size_t npipes;
	struct cd_memfd *memfds;
	size_t nmemfds;
	struct cd_deleted *deleted;
	size_t ndeleted;
	struct cd_sysv_shm *sysv_shm;
	size_t nsysv_shm;
	struct cd_sysv_msq *sysv_msq;
	size_t nsysv_msq;
	struct cd_sysv_sem *sysv_sem;
	size_t nsysv_sem;
	/* size of each vDSO family mapping at dump time, to refuse a different kernel layout */
	uint64_t vdso_size[CD_VMA_KIND_MAX];
	struct cd_image_plugin *plugins;
	size_t nplugins;
	/* An incremental image: the previous checkpoint's image directory
	 * (absolute) and the checksum of its manifest's bytes (parent.c);
	 * NULL: a full image, no run says CD_RUN_PREV. */
	char *parent;
	uint64_t parent_hash;
	/* How every task's page data is stored (engine/pageio.h): zeroed, or
	 * one stream with no codec, for the plain file pages-PID.img. */
	struct cd_page_layout pages;
	/* the manifest's text, where mappings keep their runs (cd_vma.later);
	 * NULL when none does */
	char *text;
};

void cd_image_free(struct cd_image *img);
/* The image's SysV segment of id id, NULL when none; its page file's name. */
const struct cd_sysv_shm *cd_image_sysv_shm(const struct cd_image *img, int64_t id);
void cd_sysv_shm_file(const struct cd_sysv_shm *m, char *buf, size_t len);
/* Whether a mapping's path is a deleted file's ("/PATH (deleted)", not the
 * kernel's name of a memfd, SysV segment, AIO ring or shared anonymous
 * memory): a shared one maps the image's deleted file of that path. */
bool cd_deleted_path(const char *path);
/* Whether mapping v (shared or private) is of a deleted file: the image's
 * deleted file of its path (fd-deleted.c), made again at restore. */
bool cd_vma_deleted(const struct cd_vma *v);
/* Whether mapping v is a private mapping of a memfd: of the image's memfd
 * whose shmid is v's (memfd.c), made again at restore. */
bool cd_vma_memfd(const struct cd_vma *v);
/* Frees what an fd holds (its path, its kind's lists), not the fd itself. */
void cd_fd_free(struct cd_fd *d);
/* The pid in a path /proc/PID or /proc/PID/...; 0 for any other path. */
pid_t cd_fd_proc_pid(const char *path);
struct cd_task *cd_image_task(struct cd_image *img, pid_t pid);
/* Whether a task of the image other than pid is a child of pid. */
bool cd_image_has_child(const struct cd_image *img, pid_t pid);
/* Whether tid is one of t's threads other than its main one. */
bool cd_task_has_thread(const struct cd_task *t, pid_t tid);

/* Writes dir/manifest.json (0600) and fsyncs it; with ret_hash, the
 * checksum of the bytes written (as cd_image_read_manifest_hashed gives it). */
int cd_image_write_manifest(const struct cd_image *img, int dirfd, uint64_t *ret_hash, cd_err *err);
/* Reads and validates the manifest: format, version, architecture and
 * internal consistency. */
int cd_image_read_manifest(int dirfd, struct cd_image *img, cd_err *err);
/* The same for a lazy restore: the mappings it may leave to its server
 * keep their runs as text (cd_vma.later; img->text holds it), all but
 * those of a task a child shares pages with copy-on-write. Such an image
 * is encoded (cd_image_to_json) only once cd_vma_runs_load read them. */
int cd_image_read_manifest_lazy(int dirfd, struct cd_image *img, cd_err *err);
/* The same, and the checksum (cd_csum) of the very bytes decoded: how a
 * child image names its parent (parent.c). */
int cd_image_read_manifest_hashed(int dirfd, struct cd_image *img, uint64_t *ret_hash, cd_err *err);
/* That checksum alone: the manifest read as above, not decoded (whether
 * an image is the one a tracker was tied to, dirty.c). */
int cd_image_manifest_hash(int dirfd, uint64_t *ret_hash, cd_err *err);
/* The manifest's text decoded into img: each mapping's list of runs in
 * the writer's form read by a parser of its own, in place (image.c,
 * cut_runs); the image the same as cd_image_from_json gives of jansson's
 * parse of the text. */
int cd_image_decode_manifest(const char *text, size_t len, struct cd_image *img, cd_err *err);
/* The same as cd_image_read_manifest_lazy reads: mappings keep their runs
 * in text, which must outlive img (img->text is left NULL). */
int cd_image_decode_manifest_lazy(const char *text, size_t len, struct cd_image *img, cd_err *err);
/* Checks every page file's size and checksum against the manifest. */
struct cd_progress;
/* The checks the restore makes before any task exists: each task's page
 * file has the size the manifest gives (its checksum is checked as its
 * pages stream into the task, mem.c), each System V segment's file its
 * checksum (read whole here: it is filled before the tree exists). */
int cd_image_check_pages(const struct cd_image *img, int dirfd, struct cd_progress *progress,
                         cd_err *err);
int cd_image_verify_pages(const struct cd_image *img, int dirfd, struct cd_progress *progress,
                          cd_err *err);

/* Encoding of a whole manifest to/from JSON (exposed for unit tests). */
json_t *cd_image_to_json(const struct cd_image *img, cd_err *err);
int cd_image_from_json(json_t *root, struct cd_image *img, cd_err *err);

/* The page-file checksum: Fletcher-style sums over 64-bit words in eight
 * lanes (a position-weighted sum per lane, additions only, so it vectorizes),
 * mixed into 64 bits at the end (see docs/image-format.md). Detects
 * corruption and truncation, not tampering. State carries across calls. */
struct cd_csum {
	uint64_t a[8], b[8];
	uint64_t len;
	uint8_t tail[64];
	size_t ntail;
};
void cd_csum_init(struct cd_csum *c);
void cd_csum_update(struct cd_csum *c, const void *buf, size_t len);
uint64_t cd_csum_final(const struct cd_csum *c);

/* A part of a page file's checksum: the sums of some of the file's 64-byte
 * blocks, each already weighted by where it lies in the file, so that parts
 * gathered in any order, by any process, add up to the sums of the whole
 * file (the restore checks pages as they stream into the new tasks, by the
 * controller and by the tasks themselves, docs/engine.md). Offsets, lengths
 * and the file size are multiples of 64. */
struct cd_csum_part {
	uint64_t a[8], b[8];
};
void cd_csum_part_add(struct cd_csum_part *p, const void *buf, size_t len, uint64_t off,
                      uint64_t size);
void cd_csum_part_merge(struct cd_csum_part *into, const struct cd_csum_part *p);
/* The checksum of a file of size bytes whose every block is in p. */
uint64_t cd_csum_part_final(const struct cd_csum_part *p, uint64_t size);

/* JSON helpers shared by the module codecs. */
static inline void cd_json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(cd_json_decrefp)))

int cd_json_hex_encode(json_t *obj, const char *key, const void *buf, size_t len);
/* Decodes hex string obj[key] of at most max bytes into a fresh buffer. */
int cd_json_hex_decode(json_t *obj, const char *key, size_t max, uint8_t **ret, size_t *ret_len,
                       cd_err *err);
