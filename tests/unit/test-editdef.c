/* Editing a definition the way visudo does (ui/editloop.c), with small shell
 * scripts as $EDITOR: a valid edit is saved, an invalid one never is and its
 * error names the file and the line, editing again fixes it, giving up or an
 * editor that fails leaves the file as it was, an untouched file is not
 * rewritten, and a file changed by another program meanwhile is not
 * overwritten. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "src/core/fsutil.h"
#include "ui/editloop.h"

#define ORIGINAL "cpus = 2;\nmemory = \"1G\";\ndescription = \"first lab\";\n"

struct fixture {
	char dir[64];
	char *conf, *editor, *tmp;
	/* What ask saw, and what it answers each time. */
	char asked[TV_ERR_MAX];
	int asks;
	enum editdef_answer answer[4];
};

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = xcalloc(1, 65536);

	assert_non_null(f);
	(void)!fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

/* The editor: a script run on the copy ($1). */
static void editor(struct fixture *f, const char *script)
{
	char *text = xasprintf("#!/bin/sh\n%s\n", script);

	write_file(f->editor, text, 0755);
	free(text);
	setenv("EDITOR", f->editor, 1);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/tv-editdef.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->conf = xasprintf("%s/lab.conf", f->dir);
	f->editor = xasprintf("%s/editor.sh", f->dir);
	f->tmp = xasprintf("%s/tmp", f->dir);
	mkdir(f->tmp, 0700);
	setenv("TMPDIR", f->tmp, 1);
	unsetenv("VISUAL");
	write_file(f->conf, ORIGINAL, 0640);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	remove_tree(f->dir);
	free(f->conf);
	free(f->editor);
	free(f->tmp);
	free(f);
	return 0;
}

static int run_editor(void *ctx, const char *file, struct tv_err *err)
{
	return editdef_run_editor(file, err);
}

static enum editdef_answer ask(void *ctx, const char *error)
{
	struct fixture *f = ctx;

	snprintf(f->asked, sizeof(f->asked), "%s", error);
	return f->answer[f->asks++ % 4];
}

static enum editdef_result edit(struct fixture *f, struct tv_err *err)
{
	struct editdef_ops ops = {.edit = run_editor, .ask = ask, .ctx = f};

	return editdef_loop(f->conf, f->dir, &ops, err);
}

/* Nothing is left behind in the temporary directory or beside the file. */
static void assert_no_leftovers(struct fixture *f)
{
	DIR *d = opendir(f->tmp);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 0);
	d = opendir(f->dir);
	while ((de = readdir(d)) != NULL)
		assert_null(strstr(de->d_name, ".edit-"));
	closedir(d);
}

static void test_valid_edit_saved(void **state)
{
	struct fixture *f = *state;
	struct tv_err err;
	struct stat st;
	char *text;

	/* The copy carries the VM's file name, so its name field still matches. */
	editor(f, "case \"$1\" in */lab.conf) ;; *) exit 3;; esac\n"
		  "sed -i 's/cpus = 2/cpus = 4/' \"$1\"");
	assert_int_equal(edit(f, &err), EDITDEF_SAVED);
	text = read_file(f->conf);
	assert_non_null(strstr(text, "cpus = 4;"));
	assert_non_null(strstr(text, "first lab"));
	free(text);
	/* The file keeps its mode. */
	assert_int_equal(stat(f->conf, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(f->asks, 0);
	assert_no_leftovers(f);
}

static void test_invalid_not_saved(void **state)
{
	struct fixture *f = *state;
	struct tv_err err;
	char *text, *want;

	editor(f, "sed -i 's/memory = \"1G\"/memory = \"lots\"/' \"$1\"");
	f->answer[0] = EDITDEF_DISCARD;
	assert_int_equal(edit(f, &err), EDITDEF_DISCARDED);
	assert_int_equal(f->asks, 1);
	/* The error names the user's file (not the copy) and the line. */
	want = xasprintf("%s:2: memory: expected a size", f->conf);
	if (strstr(f->asked, want) == NULL)
		fail_msg("asked '%s', want it to hold '%s'", f->asked, want);
	free(want);
	text = read_file(f->conf);
	assert_string_equal(text, ORIGINAL);
	free(text);
	assert_no_leftovers(f);
}

/* Edit again: the second run fixes what the first broke, and that is saved. */
static void test_edit_again(void **state)
{
	struct fixture *f = *state;
	struct tv_err err;
	char *text, *script;

	script = xasprintf("if [ -e %s/once ]; then\n"
			   "  sed -i 's/memory = \"lots\"/memory = \"2G\"/' \"$1\"\n"
			   "else\n"
			   "  touch %s/once; sed -i 's/memory = \"1G\"/memory = \"lots\"/' \"$1\"\n"
			   "fi",
			   f->dir, f->dir);
	editor(f, script);
	free(script);
	f->answer[0] = EDITDEF_EDIT_AGAIN;
	assert_int_equal(edit(f, &err), EDITDEF_SAVED);
	assert_int_equal(f->asks, 1);
	text = read_file(f->conf);
	assert_non_null(strstr(text, "memory = \"2G\";"));
	free(text);
	assert_no_leftovers(f);
}

/* Giving up in the editor (it exits with an error, as vi's :cq does) after
 * changing the copy leaves the file as it was. */
static void test_editor_gives_up(void **state)
{
	struct fixture *f = *state;
	struct tv_err err;
	char *text;

	editor(f, "sed -i 's/cpus = 2/cpus = 8/' \"$1\"; exit 1");
	assert_int_equal(edit(f, &err), EDITDEF_DISCARDED);
	assert_non_null(strstr(err.msg, "exited with an error; nothing was saved"));
	text = read_file(f->conf);
	assert_string_equal(text, ORIGINAL);
	free(text);
	assert_no_leftovers(f);
}

/* An editor that is not there says so. */
static void test_editor_missing(void **state)
{
	struct fixture *f = *state;
	struct tv_err err;

	setenv("EDITOR", "/nonexistent/editor", 1);
	assert_int_equal(edit(f, &err), EDITDEF_DISCARDED);
	assert_non_null(strstr(err.msg, "could not be run"));
}

/* Quitting without a change rewrites nothing. */
static void test_unchanged_not_rewritten(void **state)
{
	struct fixture *f = *state;
	struct tv_err err;
	struct stat before, after;

	assert_int_equal(stat(f->conf, &before), 0);
	editor(f, "true");
	assert_int_equal(edit(f, &err), EDITDEF_UNCHANGED);
	assert_int_equal(stat(f->conf, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	assert_no_leftovers(f);
}

/* VISUAL comes before EDITOR, which comes before vi. */
static void test_editor_choice(void **state)
{
	struct fixture *f = *state;
	struct tv_err err;
	char *text, *visual = xasprintf("%s/visual.sh", f->dir);

	write_file(visual, "#!/bin/sh\nsed -i 's/first lab/from visual/' \"$1\"\n", 0755);
	editor(f, "exit 1");
	setenv("VISUAL", visual, 1);
	assert_string_equal(editdef_editor(), visual);
	assert_int_equal(edit(f, &err), EDITDEF_SAVED);
	text = read_file(f->conf);
	assert_non_null(strstr(text, "from visual"));
	free(text);
	unsetenv("VISUAL");
	unsetenv("EDITOR");
	assert_string_equal(editdef_editor(), "vi");
	free(visual);
}

/* Another program changed the file while the user edited: nothing is
 * overwritten, and the user's version is kept where the message says. */
static void test_changed_meanwhile(void **state)
{
	struct fixture *f = *state;
	struct tv_err err;
	char *text, *script, *kept;

	script = xasprintf("sed -i 's/cpus = 2/cpus = 4/' \"$1\"\n"
			   "printf 'cpus = 6;\\n' > %s",
			   f->conf);
	editor(f, script);
	free(script);
	assert_int_equal(edit(f, &err), EDITDEF_FAILED);
	text = read_file(f->conf);
	assert_string_equal(text, "cpus = 6;\n");
	free(text);
	assert_non_null(strstr(err.msg, "changed by another program"));
	kept = strstr(err.msg, "kept in ");
	assert_non_null(kept);
	text = read_file(kept + strlen("kept in "));
	assert_non_null(strstr(text, "cpus = 4;"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid_edit_saved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_not_saved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_editor_gives_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_editor_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unchanged_not_rewritten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_editor_choice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_meanwhile, setup, teardown),
	};

	return cmocka_run_group_tests_name("editdef", tests, NULL, NULL);
}
