/*
 * shim_test.c — C unit tests of the shim's pure helpers (path resolution,
 * access classes, PATH search, the exec environment), run by `make test-c`
 * under ASan/UBSan. It includes shim_core.c so the static helpers are
 * reachable; no ring is attached (RESTRACK_RING is not set), so the
 * constructor leaves the shim off and the tests switch it on by hand where
 * a function requires it.
 */
#define _GNU_SOURCE
#include "../shim_core.c"
#include "../shim_rendezvous.c"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

static int failures;
#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                              \
		}                                                                \
	} while (0)

static char buf[RT_RESOLVED_MAX];

static const char *resolve(int dirfd, const char *path, uint16_t *rf)
{
	uint32_t len = 0;
	*rf = 0;
	const char *r = rt_resolve_path(dirfd, path, buf, &len, rf);
	CHECK(len == strlen(r));
	return r;
}

static void test_resolve(void)
{
	uint16_t rf;
	char cwd[4096];
	char want[8192];
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);

	/* Absolute paths pass through as they are (no copy). */
	const char *abs = "/etc/../etc/hosts";
	CHECK(resolve(AT_FDCWD, abs, &rf) == abs && rf == 0);

	snprintf(want, sizeof(want), "%s/a/b", cwd);
	CHECK(strcmp(resolve(AT_FDCWD, "a/b", &rf), want) == 0 && rf == 0);
	CHECK(strcmp(resolve(AT_FDCWD, "./a/b", &rf), want) == 0);
	CHECK(strcmp(resolve(AT_FDCWD, "././/a/b", &rf), want) == 0);
	CHECK(strcmp(resolve(AT_FDCWD, ".", &rf), cwd) == 0);
	CHECK(strcmp(resolve(AT_FDCWD, "", &rf), cwd) == 0);
	snprintf(want, sizeof(want), "%s/../x", cwd);
	CHECK(strcmp(resolve(AT_FDCWD, "../x", &rf), want) == 0); /* ".." is kept */

	/* A real directory fd. */
	int d = open("/usr/lib", O_RDONLY | O_DIRECTORY);
	CHECK(d >= 0);
	CHECK(strcmp(resolve(d, "x.so", &rf), "/usr/lib/x.so") == 0 && rf == 0);
	close(d);
	d = open("/", O_RDONLY | O_DIRECTORY);
	CHECK(strcmp(resolve(d, "etc", &rf), "/etc") == 0);
	close(d);

	/* A dirfd that is not a directory in the tree, or not open. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(strcmp(resolve(s, "x", &rf), "x") == 0 && (rf & RT_RF_UNRESOLVED));
	close(s);
	CHECK(strcmp(resolve(987, "x", &rf), "x") == 0 && (rf & RT_RF_UNRESOLVED));

	/* NULL (an EFAULT call) and a relative path longer than PATH_MAX:
	 * never read / never cut. */
	CHECK(strcmp(resolve(AT_FDCWD, NULL, &rf), "") == 0 && (rf & RT_RF_UNRESOLVED));
	char *longp = malloc(RT_PATH_MAX + 100);
	memset(longp, 'a', RT_PATH_MAX + 99);
	longp[RT_PATH_MAX + 99] = 0;
	CHECK(resolve(AT_FDCWD, longp, &rf) == longp && (rf & RT_RF_UNRESOLVED));
	free(longp);

	/* The cwd cache follows chdir once invalidated. */
	CHECK(chdir("/tmp") == 0);
	rt_cwd_invalidate();
	CHECK(strcmp(resolve(AT_FDCWD, "f", &rf), "/tmp/f") == 0);
	CHECK(chdir("/") == 0);
	rt_cwd_invalidate();
	CHECK(strcmp(resolve(AT_FDCWD, "f", &rf), "/f") == 0);
	CHECK(chdir(cwd) == 0);
	rt_cwd_invalidate();
}

static void test_access(void)
{
	CHECK(rt_open_access(O_RDONLY) == RT_ACCESS_READ);
	CHECK(rt_open_access(O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW) == RT_ACCESS_READ);
	CHECK(rt_open_access(O_WRONLY) == RT_ACCESS_WRITE);
	CHECK(rt_open_access(O_RDWR) == RT_ACCESS_WRITE);
	CHECK(rt_open_access(O_RDONLY | O_CREAT) == RT_ACCESS_WRITE);
	CHECK(rt_open_access(O_RDONLY | O_TRUNC) == RT_ACCESS_WRITE);
	CHECK(rt_open_access(O_RDONLY | O_APPEND) == RT_ACCESS_WRITE);
	CHECK(rt_open_access(O_TMPFILE | O_RDWR) == RT_ACCESS_WRITE);
	CHECK(rt_open_access(O_PATH) == RT_ACCESS_READ);
}

static void test_search_path(void)
{
	char sbuf[RT_PATH_MAX + 1];
	uint16_t rf = 0;
	setenv("PATH", "/nonexistent:/bin:/usr/bin", 1);
	const char *p = rt_search_path("sh", sbuf, &rf);
	CHECK(strcmp(p, "/bin/sh") == 0 && rf == 0);
	CHECK(strcmp(rt_search_path("./x", sbuf, &rf), "./x") == 0 && rf == 0);
	CHECK(strcmp(rt_search_path("no-such-program-here", sbuf, &rf), "no-such-program-here") == 0 &&
	      (rf & RT_RF_UNRESOLVED));
}

static int has(char **env, const char *entry)
{
	for (; *env; env++)
		if (strcmp(*env, entry) == 0)
			return 1;
	return 0;
}

static int count_prefix(char **env, const char *prefix)
{
	int n = 0;
	for (; *env; env++)
		n += strncmp(*env, prefix, strlen(prefix)) == 0;
	return n;
}

static void test_exec_env(void)
{
	char *out[16];
	char sb[RT_ENV_STRBUF];
	char mark[64];
	/* Pretend the shim is on, with what rt_save_env would have copied. The
	 * marker carries no start time: this binary's own constructor may have
	 * registered with a collector listening at the default socket. */
	rt_state = RT_ST_READY;
	g.start_ns = 0;
	g.self_path = "/opt/rt/librestrack.so";
	rt_env_saved[0] = "LD_PRELOAD=/opt/rt/librestrack.so";
	rt_env_saved[1] = "RESTRACK_RING=/dev/shm/r";
	snprintf(mark, sizeof(mark), "RESTRACK_EXEC_FROM=%d", getpid());

	/* An empty environment gets everything back, and the marker. */
	char *empty[] = {NULL};
	char **e = rt_env_for_exec(empty, out, sb, sizeof(sb));
	CHECK(has(e, "LD_PRELOAD=/opt/rt/librestrack.so"));
	CHECK(has(e, "RESTRACK_RING=/dev/shm/r"));
	CHECK(has(e, mark));
	CHECK(rt_env_count(e) == 3);

	/* Present variables are kept as they are; a stale marker is replaced. */
	char *full[] = {"A=1", "LD_PRELOAD=/x.so:/opt/rt/librestrack.so", "RESTRACK_RING=/other",
			"RESTRACK_EXEC_FROM=1", NULL};
	e = rt_env_for_exec(full, out, sb, sizeof(sb));
	CHECK(has(e, "A=1"));
	CHECK(has(e, "LD_PRELOAD=/x.so:/opt/rt/librestrack.so"));
	CHECK(has(e, "RESTRACK_RING=/other"));
	CHECK(count_prefix(e, "RESTRACK_RING=") == 1);
	CHECK(count_prefix(e, "RESTRACK_EXEC_FROM=") == 1 && has(e, mark));

	/* A program's own LD_PRELOAD without us: we go in front of it. */
	char *theirs[] = {"LD_PRELOAD=/their.so", NULL};
	e = rt_env_for_exec(theirs, out, sb, sizeof(sb));
	CHECK(has(e, "LD_PRELOAD=/opt/rt/librestrack.so:/their.so"));
	CHECK(count_prefix(e, "LD_PRELOAD=") == 1);
	/* A name that merely contains ours is not ours. */
	char *similar[] = {"LD_PRELOAD=/opt/rt/librestrack.so.old", NULL};
	e = rt_env_for_exec(similar, out, sb, sizeof(sb));
	CHECK(has(e, "LD_PRELOAD=/opt/rt/librestrack.so:/opt/rt/librestrack.so.old"));

	/* The buffer rt_env_strbuf_size asks for is enough, and a small one
	 * (the exec hook's, on a forked child's stack) is never overrun: two
	 * long LD_PRELOAD entries get what fits, the marker always. */
	{
		size_t need = rt_env_strbuf_size(theirs);
		CHECK(need < 512);
		char small[need + 16];
		memset(small, 'Z', sizeof(small));
		e = rt_env_for_exec(theirs, out, small, need);
		CHECK(has(e, "LD_PRELOAD=/opt/rt/librestrack.so:/their.so"));
		CHECK(has(e, mark));
		CHECK(small[need] == 'Z');

		static char long1[2 * RT_PATH_MAX - 64], long2[2 * RT_PATH_MAX - 64];
		memset(long1, 'a', sizeof(long1) - 1);
		memcpy(long1, "LD_PRELOAD=/", 12);
		memset(long2, 'b', sizeof(long2) - 1);
		memcpy(long2, "LD_PRELOAD=/", 12);
		char *two[] = {long1, long2, NULL};
		need = rt_env_strbuf_size(two);
		CHECK(need <= RT_ENV_STRBUF);
		static char big[RT_ENV_STRBUF + 16];
		memset(big, 'Z', sizeof(big));
		e = rt_env_for_exec(two, out, big, need);
		CHECK(has(e, mark));
		CHECK(count_prefix(e, "LD_PRELOAD=") == 2);
		CHECK(count_prefix(e, "LD_PRELOAD=/opt/rt/librestrack.so:") == 1); /* the second did not fit */
		CHECK(big[need] == 'Z');
	}

	/* Off: the environment is passed on untouched. */
	rt_state = RT_ST_OFF;
	CHECK(rt_env_for_exec(full, out, sb, sizeof(sb)) == full);
}

static void test_utoa(void)
{
	char b[32];
	*rt_utoa(b, 0) = 0;
	CHECK(strcmp(b, "0") == 0);
	*rt_utoa(b, 18446744073709551615ull) = 0;
	CHECK(strcmp(b, "18446744073709551615") == 0);
}

int main(void)
{
	test_resolve();
	test_access();
	test_search_path();
	test_exec_env();
	test_utoa();
	if (failures) {
		fprintf(stderr, "shim_test: %d failures\n", failures);
		return 1;
	}
	printf("shim_test: ok\n");
	return 0;
}
