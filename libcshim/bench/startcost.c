/*
 * startcost.c — what the shim adds to a process start (issue 12, "process
 * start ≤ +100 µs").
 *
 *   startcost N PROG VARIANT...
 *
 * Each VARIANT is a ';'-separated list of KEY=VALUE added to the
 * environment (an empty string adds nothing: the untraced start). The
 * variants take turns, one start each, N rounds: on a shared machine the
 * load then falls on all of them alike, which separate loops would not
 * ensure. One start is posix_spawn of PROG (no arguments, stdout and stderr
 * kept) and waitpid, timed with CLOCK_MONOTONIC: what a shell loop of
 * `PROG` pays per iteration, without the shell's own fork. Prints, per
 * variant, the mean and the median in µs and both as added over the first
 * variant, and the CPU the child itself spent (user + sys from wait4's
 * rusage, mean; on a loaded machine the wall time adds the wait for a
 * core, the CPU does not); a non-zero exit of PROG is an error (the
 * measurement would be of something else).
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* envp for one variant: environ minus the keys the variant sets, plus them. */
static char **variant_env(char *spec)
{
	size_t n = 0, k = 0;
	char *keys[32];
	for (char *tok = strtok(spec, ";"); tok && k < 32; tok = strtok(NULL, ";"))
		if (*tok)
			keys[k++] = tok;
	while (environ[n])
		n++;
	char **env = calloc(n + k + 1, sizeof(char *));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		int skip = 0;
		for (size_t j = 0; j < k; j++) {
			size_t kl = strcspn(keys[j], "=");
			if (strncmp(environ[i], keys[j], kl) == 0 && environ[i][kl] == '=')
				skip = 1;
		}
		/* A RESTRACK_* or LD_PRELOAD of the caller's would trace every variant. */
		if (strncmp(environ[i], "LD_PRELOAD=", 11) == 0 || strncmp(environ[i], "RESTRACK_", 9) == 0)
			skip = 1;
		if (!skip)
			env[m++] = environ[i];
	}
	for (size_t j = 0; j < k; j++)
		env[m++] = keys[j];
	env[m] = NULL;
	return env;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: startcost N PROG VARIANT...\n");
		return 2;
	}
	int n = atoi(argv[1]), nv = argc - 3;
	if (n <= 0) {
		fprintf(stderr, "startcost: N must be positive\n");
		return 2;
	}
	char *prog = argv[2];
	char **envs[nv];
	double *t[nv], cpu[nv];
	for (int v = 0; v < nv; v++) {
		char *spec = strdup(argv[3 + v]);
		envs[v] = variant_env(spec);
		t[v] = calloc((size_t)n, sizeof(double));
		cpu[v] = 0;
	}
	char *pargv[] = {prog, NULL};
	for (int i = -5; i < n; i++) { /* 5 untimed rounds warm the caches */
		for (int v = 0; v < nv; v++) {
			pid_t pid;
			int st;
			struct rusage ru;
			double t0 = now_us();
			if (posix_spawn(&pid, prog, NULL, NULL, pargv, envs[v]) != 0) {
				perror("startcost: posix_spawn");
				return 1;
			}
			if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				fprintf(stderr, "startcost: %s failed (status %#x) in variant %d\n", prog, st, v);
				return 1;
			}
			if (i >= 0) {
				t[v][i] = now_us() - t0;
				cpu[v] += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
					  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
			}
		}
	}
	double base_mean = 0, base_med = 0, base_cpu = 0;
	printf("%-4s %10s %10s %12s %12s %10s %10s  %s\n", "#", "mean_us", "median_us", "added_mean", "added_median",
	       "cpu_us", "added_cpu", "variant");
	for (int v = 0; v < nv; v++) {
		double sum = 0;
		for (int i = 0; i < n; i++)
			sum += t[v][i];
		qsort(t[v], (size_t)n, sizeof(double), cmp_double);
		double mean = sum / n, med = n % 2 ? t[v][n / 2] : (t[v][n / 2 - 1] + t[v][n / 2]) / 2;
		if (v == 0) {
			base_mean = mean;
			base_med = med;
			base_cpu = cpu[0] / n;
		}
		printf("%-4d %10.1f %10.1f %+12.1f %+12.1f %10.1f %+10.1f  %s\n", v, mean, med, mean - base_mean,
		       med - base_med, cpu[v] / n, cpu[v] / n - base_cpu, argv[3 + v][0] ? argv[3 + v] : "(untraced)");
	}
	return 0;
}
