#include "tools/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *tool_name = "df11";
volatile sig_atomic_t tool_interrupted;
static int bar_drawn;

static void on_signal(int sig)
{
	(void)sig;
	tool_interrupted = 1;
}

void tool_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

void tool_error(const char *fmt, ...)
{
	va_list ap;
	tool_progress_end();
	fprintf(stderr, "%s: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int tool_fail(df11_result r)
{
	if (tool_interrupted) {
		tool_error("interrupted; no output written");
		return EXIT_INTERRUPTED;
	}
	tool_error("%s", df11_last_error());
	return r == DF11_INVALID_ARG ? EXIT_USAGE : EXIT_FAIL;
}

int tool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

int tool_threads(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > 256) {
		tool_error("bad thread count \"%s\" (0..256)", s);
		exit(EXIT_USAGE);
	}
	return v == 0 ? tool_default_threads() : (int)v;
}

double tool_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *tool_bytes(uint64_t n, char *buf, int size)
{
	static const char *unit[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)n;
	int u = 0;
	while (v >= 1000.0 && u < 4) {
		v /= 1000.0;
		u++;
	}
	snprintf(buf, (size_t)size, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

int tool_progress(void *ctx, uint64_t done, uint64_t total)
{
	static double start, last;
	if (!isatty(STDERR_FILENO))
		return tool_interrupted;
	double now = tool_now();
	if (!start)
		start = now;
	if (now - last < 0.1 && done < total)
		return tool_interrupted;
	last = now;
	double f = total ? (double)done / (double)total : 1.0;
	char bar[41];
	int fill = (int)(f * 40.0);
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = 0;
	char b1[32], b2[32];
	double rate = now > start ? (double)done / (now - start) / 1e6 : 0.0;
	/* ETA from the average rate so far, once there is one. */
	char eta[32] = "ETA  --:--";
	if (rate > 0 && done < total && now - start >= 0.5) {
		double left = (double)(total - done) / (rate * 1e6);
		unsigned long s = left > 359999 ? 359999 : (unsigned long)(left + 0.5);
		if (s >= 3600)
			snprintf(eta, sizeof eta, "ETA %lu:%02lu:%02lu", s / 3600,
				 s / 60 % 60, s % 60);
		else
			snprintf(eta, sizeof eta, "ETA  %02lu:%02lu", s / 60, s % 60);
	} else if (done >= total) {
		snprintf(eta, sizeof eta, "%10s", "");
	}
	fprintf(stderr, "\r%s [%s] %3.0f%% %s / %s %6.0f MB/s %s ",
		ctx ? (const char *)ctx : "", bar, 100.0 * f,
		tool_bytes(done, b1, sizeof b1), tool_bytes(total, b2, sizeof b2),
		rate, eta);
	bar_drawn = 1;
	return tool_interrupted;
}

void tool_progress_end(void)
{
	if (bar_drawn)
		fputs("\r\033[K", stderr);
	bar_drawn = 0;
}
