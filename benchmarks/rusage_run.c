/* Runs a command and writes "wall user sys peak_rss_kb" to a file: the
 * command's own figures, nothing else's.
 *
 * usage: rusage_run OUT [--cpus N] CMD [ARGS...]
 *
 * A small program forks and execs the command and takes user and system
 * seconds and peak resident memory from wait4, which reports the child
 * alone. Running the command under /usr/bin/time added that program's
 * own start-up (1.3 ms of CPU here) to every figure, a tenth of a 16 MiB
 * decode; a peak taken from a Python parent's fork would include the
 * interpreter's pages, which the kernel carries across exec into the
 * child's account (this program's few hundred KiB are carried instead).
 * Wall seconds come from a monotonic clock around fork and wait4.
 * --cpus N: the command runs on CPUs 0..N-1 (sched_setaffinity in the
 * child, so no taskset starts up inside the measurement).
 * The command's standard output goes to /dev/null; its exit status is
 * returned (128 + signal if it was killed). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double secs(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
	int a = 2, cpus = 0;
	if (argc >= 4 && strcmp(argv[2], "--cpus") == 0) {
		cpus = atoi(argv[3]);
		a = 4;
		if (cpus < 1 || cpus > CPU_SETSIZE) {
			fprintf(stderr, "rusage_run: bad --cpus %s\n", argv[3]);
			return 2;
		}
	}
	if (argc <= a) {
		fprintf(stderr, "usage: rusage_run OUT [--cpus N] CMD [ARGS...]\n");
		return 2;
	}
	FILE *out = fopen(argv[1], "w");
	if (!out) {
		fprintf(stderr, "rusage_run: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	double t0 = now();
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rusage_run: fork: %s\n", strerror(errno));
		return 2;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		if (cpus) {
			cpu_set_t set;
			CPU_ZERO(&set);
			for (int c = 0; c < cpus; c++)
				CPU_SET(c, &set);
			if (sched_setaffinity(0, sizeof set, &set) < 0) {
				fprintf(stderr, "rusage_run: sched_setaffinity: %s\n",
					strerror(errno));
				_exit(127);
			}
		}
		execvp(argv[a], argv + a);
		fprintf(stderr, "rusage_run: %s: %s\n", argv[a], strerror(errno));
		_exit(127);
	}
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "rusage_run: wait4: %s\n", strerror(errno));
			return 2;
		}
	double wall = now() - t0;
	fprintf(out, "%.6f %.6f %.6f %ld\n", wall, secs(ru.ru_utime),
		secs(ru.ru_stime), ru.ru_maxrss);
	if (fclose(out) != 0) {
		fprintf(stderr, "rusage_run: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
