/* The console pane alone, on the terminal it runs in, for bench/console.sh:
 *   vtdrive feed FILE REPORT the file's bytes through the pane, then exit
 *   vtdrive latency REPORT [PIPE]   a child floods the pane through a pipe
 *                            (of PIPE bytes; default the system's 64 KiB):
 *                            each key typed is sent to the child, which
 *                            echoes it on the top row (kept out of the
 *                            flood's scroll region) behind what the pipe
 *                            holds; the time from the key's read to the
 *                            draw showing its echo is recorded
 *   vtdrive idle SECONDS REPORT   nothing to do for SECONDS
 * The loop is the one the interface's console view needs: guest output is
 * read in batches and fed, and the screen is drawn once input has drained
 * or a frame's time has passed, whichever is first. REPORT gets the
 * process's CPU time ("cpu USER SYS", seconds) and one "lat MS" per key. */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ui/vtpane.h"

#define FRAME_MS 8.0
#define BATCH	 (64 * 1024)
/* After a key, output is drawn after every read (of at most TYPING_BATCH)
 * for this long, so the echo is not held for a frame behind the flood. */
#define TYPING_MS    50.0
#define TYPING_BATCH (16 * 1024)

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void report_cpu(FILE *f)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	fprintf(f, "cpu %.3f %.3f\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

/* The flooding guest: numbered lines in colour below row 1, and on row 1
 * the echo of each key it is sent. */
static void guest(int keys, int out)
{
	static const char *const colours[] = {"31", "1;32", "38;5;208", "38;2;90;160;255",
					      "7",  "4;33"};
	char buf[8192], key;
	unsigned long n = 0, echoed = 0;

	signal(SIGPIPE, SIG_DFL);
	if (write(out, "\033[2J\033[2;24r\033[24;1H", 17) < 0)
		_exit(0);
	for (;;) {
		struct pollfd pf[2] = {{keys, POLLIN, 0}, {out, POLLOUT, 0}};
		size_t len = 0;

		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[0].revents & (POLLIN | POLLHUP)) {
			if (read(keys, &key, 1) != 1)
				_exit(0);
			len = (size_t)snprintf(buf, sizeof(buf),
					       "\0337\033[1;1H\033[2Kecho %lu\0338", ++echoed);
		} else {
			while (len < sizeof(buf) - 200) {
				len += (size_t)snprintf(
				    buf + len, sizeof(buf) - len,
				    "\033[%sm%06lu\033[m the guest floods its console "
				    "\xe6\xbc\xa2\xe5\xad\x97 %lu\r\n",
				    colours[n % 6], n, n * 7919);
				n++;
			}
		}
		if (write(out, buf, len) < 0)
			_exit(0);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	double idle_s = 0, last_draw = 0, last_key = -1e9, key_t0[64];
	unsigned long keys_sent = 0, keys_seen = 0;
	int data = -1, to_guest = -1;
	pid_t child = -1;
	struct vtpane *p;
	FILE *rep;
	char *buf;

	if (strcmp(mode, "idle") == 0 && argc == 4) {
		idle_s = atof(argv[2]);
	} else if (strcmp(mode, "feed") == 0 && argc == 4) {
		data = open(argv[2], O_RDONLY);
		if (data < 0) {
			perror(argv[2]);
			return 1;
		}
	} else if (strcmp(mode, "latency") != 0 || argc < 3 || argc > 4) {
		fprintf(stderr, "usage: vtdrive feed FILE REPORT, vtdrive latency REPORT [PIPE], "
				"vtdrive idle SECONDS REPORT\n");
		return 2;
	}
	rep = fopen(strcmp(mode, "latency") == 0 ? argv[2] : argv[3], "w");
	if (rep == NULL) {
		perror("vtdrive: report");
		return 1;
	}
	setlocale(LC_ALL, "");
	if (strcmp(mode, "latency") == 0) {
		int kp[2], op[2];

		if (pipe(kp) < 0 || pipe(op) < 0)
			return 1;
		if (argc == 4 && fcntl(op[1], F_SETPIPE_SZ, atoi(argv[3])) < 0)
			perror("vtdrive: pipe size");
		child = fork();
		if (child == 0) {
			close(kp[1]);
			close(op[0]);
			guest(kp[0], op[1]);
		}
		close(kp[0]);
		close(op[1]);
		to_guest = kp[1];
		data = op[0];
	}
	newterm(NULL, stdout, stdin);
	raw();
	noecho();
	nodelay(stdscr, TRUE);
	keypad(stdscr, TRUE);
	if (has_colors()) {
		start_color();
		use_default_colors();
	}
	p = vtpane_new(LINES, COLS, 5000, NULL, NULL);
	buf = malloc(BATCH);
	for (double end = now_ms() + idle_s * 1e3;;) {
		struct pollfd pf[2] = {{0, POLLIN, 0}, {data, POLLIN, 0}};
		double t = now_ms();
		int timeout = -1;
		bool more = false, eof = false, typing;

		if (idle_s > 0)
			timeout = t >= end ? 0 : (int)(end - t) + 1;
		if (vtpane_dirty(p))
			timeout =
			    t - last_draw >= FRAME_MS ? 0 : (int)(FRAME_MS - (t - last_draw)) + 1;
		if (idle_s > 0 && t >= end)
			break;
		if (poll(pf, data >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN) {
			wint_t ch;
			int r;

			while ((r = wget_wch(stdscr, &ch)) != ERR) {
				if (r == OK && ch == 'q')
					goto out;
				if (to_guest >= 0 && keys_sent - keys_seen < 64) {
					last_key = key_t0[keys_sent++ % 64] = now_ms();
					if (write(to_guest, "k", 1) < 0)
						goto out;
				}
			}
		}
		typing = now_ms() - last_key < TYPING_MS;
		if (data >= 0 && (pf[1].revents & (POLLIN | POLLHUP))) {
			size_t got = 0, batch = typing ? TYPING_BATCH : BATCH;

			while (got < batch) {
				ssize_t n =
				    read(data, buf, batch - got < 16384 ? batch - got : 16384);
				if (n <= 0) {
					eof = n == 0;
					break;
				}
				vtpane_feed(p, buf, (size_t)n);
				got += (size_t)n;
				if (poll(&pf[1], 1, 0) <= 0 || !(pf[1].revents & POLLIN))
					break;
			}
			more = got == batch;
		}
		t = now_ms();
		if (vtpane_dirty(p) && (eof || !more || typing || t - last_draw >= FRAME_MS)) {
			char row[256];

			vtpane_draw(p, stdscr);
			wnoutrefresh(stdscr);
			doupdate();
			last_draw = now_ms();
			vtpane_row_text(p, 0, row, sizeof(row));
			while (keys_seen < keys_sent && strncmp(row, "echo ", 5) == 0 &&
			       strtoul(row + 5, NULL, 10) > keys_seen) {
				fprintf(rep, "lat %.3f\n", last_draw - key_t0[keys_seen % 64]);
				keys_seen++;
			}
		}
		if (eof)
			break;
	}
out:
	endwin();
	report_cpu(rep);
	fclose(rep);
	if (child > 0) {
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	vtpane_free(p);
	free(buf);
	return 0;
}
