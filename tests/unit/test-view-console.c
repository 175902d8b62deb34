/* The console view's copy mode (ui/view-console.c) against stand-ins for the
 * application object, the model and the VM's connection: keys are routed as
 * the interface's loop routes them (the key table of the view's context,
 * then the view), the guest's output arrives as the connection delivers it,
 * and what the view types for the guest or copies is recorded. It checks
 * that copy mode has the keyboard while it is on (nothing reaches the
 * guest), that a search is typed on the title line and found, that the
 * selection copied is what the user saw, and that the paste key types it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/client.h"
#include "src/core/protocol.h"
#include "ui/app.h"
#include "ui/keys.h"
#include "ui/model.h"
#include "ui/view.h"
#include "common/util.h"

/* ---- stand-ins ---- */

struct model {
	struct model_vm vm;
};

struct app {
	struct model model;
	struct tv_paths paths;
	struct keytable keys;
	char message[512];
	char copied[256];
	int copies;
};

static struct app A;

struct model *app_model(struct app *a) { return &a->model; }
const struct tv_paths *app_paths(struct app *a) { return &a->paths; }
const struct keytable *app_keys(struct app *a) { return &a->keys; }
void app_dirty(struct app *a) {}
const char *app_state_name(int state); /* ui/app-int.h, whose struct app is the real one */
const char *app_state_name(int state) { return "running"; }

void app_message(struct app *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
}

void app_copy(struct app *a, const char *text, size_t len)
{
	snprintf(a->copied, sizeof(a->copied), "%.*s", (int)len, text);
	a->copies++;
}

const char *app_pasted(const struct app *a, size_t *len)
{
	*len = strlen(a->copied);
	return a->copies ? a->copied : NULL;
}

const struct model_vm *model_find(const struct model *m, const char *name)
{
	return strcmp(m->vm.name, name) == 0 ? &m->vm : NULL;
}

uint64_t model_generation(const struct model *m) { return 1; }

/* The VM's connection: what the view typed for the guest, and the handlers
 * through which the "guest" prints. */
static struct {
	int fake;
	const struct client_handlers *h;
	void *ctx;
	char typed[256];
	size_t ntyped;
	int pace; /* what the pane last asked (PROTO_PACE): 0, 1, or -1 nothing yet */
} conn;

struct tv_client *client_connect(const struct tv_paths *p, const char *name, struct tv_err *err)
{
	return (struct tv_client *)&conn.fake;
}

void client_set_handlers(struct tv_client *c, const struct client_handlers *h, void *ctx)
{
	conn.h = h;
	conn.ctx = ctx;
}

int client_attach(struct tv_client *c, bool readonly, uint8_t console, uint16_t rows,
		  uint16_t cols, struct tv_err *err)
{
	return 0;
}

int client_input(struct tv_client *c, const void *bytes, size_t len, struct tv_err *err)
{
	len = MIN(len, sizeof(conn.typed) - 1 - conn.ntyped);
	memcpy(conn.typed + conn.ntyped, bytes, len);
	conn.ntyped += len;
	conn.typed[conn.ntyped] = '\0';
	return 0;
}

int client_winsize(struct tv_client *c, uint16_t rows, uint16_t cols, struct tv_err *err)
{
	return 0;
}

int client_pace(struct tv_client *c, bool on, struct tv_err *err)
{
	conn.pace = on;
	return 0;
}

int client_fd(const struct tv_client *c) { return -1; }
int client_pump(struct tv_client *c, struct tv_err *err) { return 0; }
void client_close(struct tv_client *c) {}

/* ---- helpers ---- */

static void guest_prints(const char *s)
{
	conn.h->console(conn.ctx, (const uint8_t *)s, strlen(s));
}

static const char *context(struct view *v)
{
	return v->ops->context(v);
}

/* A key as the interface's loop hands it on: the action the key table has
 * for the view's context, else the key itself to the view. */
static void press(struct view *v, int key)
{
	const char *action = keys_lookup(&A.keys, context(v), key);

	if (action)
		assert_true(v->ops->action(v, action));
	else if (key & KEYS_META)
		v->ops->key(v, 27, false), v->ops->key(v, key & ~KEYS_META, false);
	else
		v->ops->key(v, key & ~KEYS_NC, (key & KEYS_NC) != 0);
}

static void type(struct view *v, const char *s)
{
	for (; *s; s++)
		press(v, (unsigned char)*s);
}

/* The pane's title line as drawn into a window of 60x12. */
static const char *title(struct view *v)
{
	static char buf[128];
	WINDOW *w = newwin(12, 60, 0, 0);
	int n;

	v->ops->draw(v, w, true);
	n = mvwinnstr(w, 0, 0, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	for (n = (int)strlen(buf); n > 0 && buf[n - 1] == ' '; n--)
		buf[n - 1] = '\0';
	delwin(w);
	return buf;
}

static int setup(void **state)
{
	FILE *out = fopen("/dev/null", "w");
	struct view *v;

	memset(&A, 0, sizeof(A));
	memset(&conn, 0, sizeof(conn));
	conn.pace = -1;
	keys_defaults(&A.keys);
	snprintf(A.model.vm.name, sizeof(A.model.vm.name), "vm");
	A.model.vm.state = MODEL_RUNNING;
	A.model.vm.pid = 42;
	setlocale(LC_ALL, "C.UTF-8");
	newterm("xterm-256color", out, stdin);
	v = view_console_new(&A, "vm", PROTO_CONSOLE_PRIMARY);
	v->ops->resize(v, 12, 60);
	assert_true(v->ops->dirty(v)); /* attaches to the running VM */
	assert_non_null(conn.h);
	*state = v;
	return 0;
}

static int teardown(void **state)
{
	struct view *v = *state;

	v->ops->free(v);
	endwin();
	keys_free(&A.keys);
	return 0;
}

/* ---- tests ---- */

static void test_copy_mode_search_copy_paste(void **state)
{
	struct view *v = *state;
	char line[64];

	for (int i = 0; i < 30; i++) {
		snprintf(line, sizeof(line), "%s %d\r\n", i == 7 ? "the needle is here" : "hay",
			 i);
		guest_prints(line);
	}
	guest_prints("$ ");
	assert_string_equal(context(v), "console");
	type(v, "ls");
	assert_string_equal(conn.typed, "ls"); /* a focused console's keys go to the guest */

	press(v, KEYS_META | 'c');
	assert_string_equal(context(v), "copy");
	assert_non_null(strstr(title(v), "[copy mode]"));
	conn.ntyped = 0;
	type(v, "xjk");
	assert_int_equal(conn.ntyped, 0); /* copy mode keeps the keys from the guest */

	/* A search that finds nothing says so and stays in copy mode. */
	press(v, '/');
	assert_string_equal(context(v), "search");
	type(v, "zebra");
	assert_string_equal(title(v), " vm  search forward: zebra");
	press(v, '\r');
	assert_string_equal(context(v), "copy");
	assert_non_null(strstr(title(v), "not found"));
	/* Back, with a mistake taken back by Backspace. */
	press(v, '?');
	type(v, "needlx");
	press(v, 127);
	type(v, "e");
	assert_string_equal(title(v), " vm  search back: needle");
	press(v, '\r');
	assert_non_null(strstr(title(v), "[copy mode, ")); /* scrolled back to the match */
	assert_null(strstr(title(v), "not found"));

	/* Enter before any selection copies nothing and says how to start one. */
	press(v, '\r');
	assert_int_equal(A.copies, 0);
	if (strstr(title(v), "select first: Space") == NULL)
		fail_msg("title: \"%s\"", title(v));
	/* Space, five steps right, Enter: the word, to the clipboard, and out. */
	press(v, ' ');
	for (int i = 0; i < 5; i++)
		press(v, 'l');
	press(v, '\r');
	assert_int_equal(A.copies, 1);
	assert_string_equal(A.copied, "needle");
	assert_string_equal(context(v), "console");
	assert_non_null(strstr(A.message, "M-v types them"));
	assert_null(strstr(title(v), "copy mode"));

	/* The paste key types it into the guest. */
	conn.ntyped = 0;
	press(v, KEYS_META | 'v');
	assert_string_equal(conn.typed, "needle");
}

static void test_leave_and_lines(void **state)
{
	struct view *v = *state;

	guest_prints("one\r\ntwo\r\nthree\r\n");
	press(v, KEYS_META | '/'); /* copy mode, with a search back at once */
	assert_string_equal(context(v), "search");
	press(v, 27); /* Esc: the search is dropped, copy mode stays */
	assert_string_equal(context(v), "copy");
	press(v, 'k');
	press(v, 'k');
	press(v, 'k');
	press(v, 'V');
	press(v, 'j');
	press(v, 'y');
	assert_string_equal(A.copied, "one\ntwo");
	/* q leaves without copying; the paste turns line feeds into Enter. */
	press(v, KEYS_META | 'c');
	press(v, 'q');
	assert_string_equal(context(v), "console");
	assert_int_equal(A.copies, 1);
	conn.ntyped = 0;
	press(v, KEYS_META | 'v');
	assert_string_equal(conn.typed, "one\rtwo");
}

/* The pane asks the VM process for screens instead of a flood while it
 * shows the live console, and for every line while the user reads the
 * scrollback; the lines it missed land above the view. */
static void test_paced_while_live(void **state)
{
	struct view *v = *state;
	char line[64];

	v->ops->dirty(v);
	assert_int_equal(conn.pace, 1);
	for (int i = 0; i < 30; i++) {
		snprintf(line, sizeof(line), "line %d\r\n", i);
		guest_prints(line);
	}
	press(v, KEYS_META | 'c'); /* copy mode */
	v->ops->dirty(v);
	assert_int_equal(conn.pace, 0);
	press(v, 'q');
	v->ops->dirty(v);
	assert_int_equal(conn.pace, 1);
	v->ops->mouse(v, 3, 3, BUTTON4_PRESSED); /* the wheel, back */
	v->ops->dirty(v);
	assert_int_equal(conn.pace, 0);
	/* The lines missed arrive: the view stays 3 lines from the bottom. */
	const char *sync = "\033[H\033[2Jmissed 1\r\nmissed 2\r\nmissed 3\r\n";
	conn.h->sync(conn.ctx, (const uint8_t *)sync, strlen(sync));
	assert_non_null(strstr(title(v), "[scrolled back 3 lines]"));
	type(v, "x"); /* a key returns to the live screen, paced again */
	v->ops->dirty(v);
	assert_int_equal(conn.pace, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_copy_mode_search_copy_paste, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leave_and_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_paced_while_live, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
