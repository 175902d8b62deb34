#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "src/core/client.h"
#include "src/vmm/console-buf.h"
#include "src/cli/attach.h"
#include "common/util.h"

/* Set by the signal handlers; the main loop looks at them after poll. */
static volatile sig_atomic_t got_winch, got_quit;

static void on_winch(int sig)
{
	got_winch = 1;
}

static void on_quit(int sig)
{
	got_quit = 1;
}

void console_escape_name(unsigned char escape, char buf[3])
{
	buf[0] = '^';
	buf[1] = (char)(escape + '@');
	buf[2] = '\0';
}

static void window_size(uint16_t *rows, uint16_t *cols)
{
	struct winsize ws;

	*rows = CONSOLE_DEFAULT_ROWS;
	*cols = CONSOLE_DEFAULT_COLS;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row >= PROTO_MIN_DIM &&
	    ws.ws_col >= PROTO_MIN_DIM) {
		*rows = MIN(ws.ws_row, PROTO_MAX_DIM);
		*cols = MIN(ws.ws_col, PROTO_MAX_DIM);
	}
}

static void on_console(void *ctx, const uint8_t *bytes, size_t len)
{
	write_full(STDOUT_FILENO, bytes, len);
}

static const struct client_handlers handlers = {.console = on_console};

/* Keys to the guest, up to the escape key. Returns 1 when it was typed. */
static int forward_keys(struct tv_client *c, bool readonly, unsigned char escape, int *eof,
			struct tv_err *err)
{
	uint8_t buf[4096];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	uint8_t *esc;
	size_t len;

	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return 0;
		*eof = 1;
		return 0;
	}
	len = (size_t)n;
	esc = memchr(buf, escape, len);
	if (esc)
		len = (size_t)(esc - buf);
	if (!readonly && len > 0 && client_input(c, buf, len, err) < 0)
		return -1;
	return esc != NULL;
}

static void install_signals(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = on_winch;
	sigaction(SIGWINCH, &sa, NULL);
	sa.sa_handler = on_quit;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int terminal_attach(const struct tv_paths *p, const char *name, bool readonly, uint8_t console,
		    unsigned char escape, struct tv_err *err)
{
	struct tv_client *c = client_connect(p, name, err);
	bool tty = isatty(STDIN_FILENO);
	struct termios saved, raw;
	uint16_t rows, cols;
	char escname[3];
	int rc = 0, eof = 0, detached = 0;

	if (c == NULL)
		return -1;
	install_signals();
	window_size(&rows, &cols);
	client_set_handlers(c, &handlers, NULL);
	console_escape_name(escape, escname);
	fprintf(stderr, "Connected to %s%s (escape: %s)\n", name, readonly ? ", read-only" : "",
		escname);
	if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
	} else {
		tty = false;
	}
	if (client_attach(c, readonly, console, rows, cols, err) < 0) {
		rc = -1;
		goto out;
	}
	while (!got_quit && !detached) {
		struct pollfd pfd[2] = {
			{.fd = client_fd(c), .events = POLLIN},
			{.fd = eof ? -1 : STDIN_FILENO, .events = POLLIN},
		};
		if (got_winch) {
			got_winch = 0;
			window_size(&rows, &cols);
			if (client_winsize(c, rows, cols, err) < 0)
				break;
		}
		if (poll(pfd, 2, eof ? 200 : -1) < 0 && errno != EINTR) {
			rc = tv_errno(err, "poll");
			break;
		}
		if ((pfd[0].revents & (POLLIN | POLLHUP)) && client_pump(c, err) < 0)
			break; /* the VM ended: err says why */
		if (pfd[1].revents & (POLLIN | POLLHUP)) {
			detached = forward_keys(c, readonly, escape, &eof, err);
			if (detached < 0) {
				rc = -1;
				break;
			}
		}
		/* Input from a pipe has ended: let the output catch up, then go. */
		if (eof && !(pfd[0].revents & POLLIN))
			detached = 1;
	}
out:
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		/* Leave the terminal as it was: attributes reset, cursor shown. */
		write_full(STDOUT_FILENO, "\033[m\033[?25h", 9);
	}
	if (rc == 0) {
		if (detached || got_quit)
			fprintf(stderr, "\r\n[detached from %s]\n", name);
		else
			fprintf(stderr, "\r\n[%s]\n", err->msg);
	}
	client_close(c);
	return rc;
}
