/* spawncost N PROG [ARGS]: runs PROG N times in each of three modes (plain,
 * LD_AUDIT=quiet.so, LD_AUDIT=audit.so), interleaved, and prints the child's
 * CPU time (user+sys from wait4) and wall time per run: mean and median. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
extern char **environ;
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
static double ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	const char *modes[3] = {NULL, "LD_AUDIT=./quiet.so", "LD_AUDIT=./audit.so"};
	double *cpu[3], *wall[3];
	for (int m = 0; m < 3; m++) { cpu[m] = calloc(n, sizeof(double)); wall[m] = calloc(n, sizeof(double)); }
	int envn = 0; while (environ[envn]) envn++;
	char **env = calloc(envn + 3, sizeof(char *));
	memcpy(env, environ, envn * sizeof(char *));
	posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
	for (int i = 0; i < n; i++)
		for (int m = 0; m < 3; m++) {
			env[envn] = (char *)modes[m]; env[envn + 1] = m == 2 ? "RT_AUDIT_FD=2" : NULL; env[envn + 2] = NULL;
			if (!modes[m]) env[envn] = NULL;
			pid_t pid; struct rusage ru; int st;
			double t0 = ns();
			if (posix_spawn(&pid, argv[2], &fa, NULL, argv + 2, env) != 0) return 1;
			wait4(pid, &st, 0, &ru);
			wall[m][i] = (ns() - t0) / 1e6;
			cpu[m][i] = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
		}
	const char *names[3] = {"plain", "LD_AUDIT la_objopen only", "LD_AUDIT objopen+objsearch, writing"};
	for (int m = 0; m < 3; m++) {
		double sc = 0, sw = 0;
		for (int i = 0; i < n; i++) { sc += cpu[m][i]; sw += wall[m][i]; }
		qsort(cpu[m], n, sizeof(double), cmp); qsort(wall[m], n, sizeof(double), cmp);
		printf("| %s | %s | %.3f | %.3f | %.3f | %.3f |\n", argv[2], names[m], sc / n, cpu[m][n / 2], sw / n, wall[m][n / 2]);
	}
	return 0;
}
