/* The network lock of a TCP connection to a peer outside the tree, while it
 * is dumped and until it is restored: an nftables table of our own per
 * connection, named after it, that drops its packets both ways.
 *
 * Why a lock: TCP repair mode only stops the socket from sending; the
 * kernel still takes (and acknowledges) what the peer sends, which would
 * come after the queues were read and be lost, and once the tree is killed
 * the peer's next segment would find no socket and be answered with a
 * reset. Dropped segments are retransmitted by the peer, and reach the
 * restored socket once the restore deletes the table. docs/engine.md,
 * "TCP connections". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h"
#include "shared/cleanup.h"

static const char *nft_path(void)
{
	static const char *const paths[] = {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft",
	                                    "/bin/nft"};

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

bool cd_tcp_lock_available(void)
{
	return nft_path() != NULL;
}

/* Runs nft on script; its output becomes the error when it fails. */
static int nft_run(const char *script, cd_err *err)
{
	const char *nft = nft_path();
	char *const argv[] = {(char *)"nft", (char *)"-f", (char *)"-", NULL};
	char *const envp[] = {(char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
	posix_spawn_file_actions_t fa;
	char out[512] = "";
	pid_t pid;
	int status = 0, r;

	if (!nft)
		return cd_err_set(err, ENOENT, "nft (nftables) is not installed");
	_cleanup_close_ int in = memfd_create("cedana-nft-in", MFD_CLOEXEC);
	_cleanup_close_ int o = memfd_create("cedana-nft-out", MFD_CLOEXEC);
	if (in < 0 || o < 0)
		return cd_err_sys(err, errno, "memfd_create");
	if (write(in, script, strlen(script)) != (ssize_t)strlen(script) || lseek(in, 0, SEEK_SET))
		return cd_err_sys(err, errno, "nft script");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, o, 1);
	posix_spawn_file_actions_adddup2(&fa, o, 2);
	r = posix_spawn(&pid, nft, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (r)
		return cd_err_sys(err, r, "spawn %s", nft);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return cd_err_sys(err, errno, "wait for nft");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	ssize_t n = pread(o, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = 0;
	out[strcspn(out, "\n")] = 0;
	return cd_err_set(err, EIO, "nft: %s", out[0] ? out : "failed");
}

/* An address as nft writes it, and whether it is IPv4 (or v4-mapped). */
static bool addr_of(const uint8_t *sa, size_t len, char *buf, size_t size, unsigned *port)
{
	if (len == sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)size);
		*port = ntohs(s4->sin_port);
		return true;
	}
	const struct sockaddr_in6 *s6 = (const void *)sa;
	*port = ntohs(s6->sin6_port);
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)size);
		return true;
	}
	inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)size);
	return false;
}

/* The table's name: the connection's two ends, as hex. */
static void table_name(const uint8_t *a, size_t alen, const uint8_t *pa, size_t plen, char *buf,
                       size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "cedana_tcp_");

	for (size_t i = 0; i < alen && n + 3 < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%02x", a[i]);
	for (size_t i = 0; i < plen && n + 3 < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%02x", i ? "" : "_", pa[i]);
}

int cd_tcp_lock(const uint8_t *a, size_t alen, const uint8_t *pa, size_t plen, cd_err *err)
{
	char name[160], l[INET6_ADDRSTRLEN], p[INET6_ADDRSTRLEN], script[1024];
	unsigned lp, pp;
	bool v4 = addr_of(a, alen, l, sizeof(l), &lp);
	const char *ip = v4 ? "ip" : "ip6";

	addr_of(pa, plen, p, sizeof(p), &pp);
	table_name(a, alen, pa, plen, name, sizeof(name));
	/* "create" fails when the table exists: another dump holds the lock */
	snprintf(script, sizeof(script),
	         "create table inet %s\n"
	         "table inet %s {\n"
	         " chain in { type filter hook input priority -300; policy accept;\n"
	         "  %s saddr %s %s daddr %s tcp sport %u tcp dport %u drop; }\n"
	         " chain out { type filter hook output priority -300; policy accept;\n"
	         "  %s saddr %s %s daddr %s tcp sport %u tcp dport %u drop; }\n"
	         "}\n",
	         name, name, ip, p, ip, l, pp, lp, ip, l, ip, p, lp, pp);
	return nft_run(script, err);
}

void cd_tcp_unlock(const uint8_t *a, size_t alen, const uint8_t *pa, size_t plen)
{
	char name[160], script[200];
	cd_err ignored = {0};

	if (!cd_tcp_lock_available())
		return;
	table_name(a, alen, pa, plen, name, sizeof(name));
	snprintf(script, sizeof(script), "delete table inet %s\n", name);
	nft_run(script, &ignored);
}
