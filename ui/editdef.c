/* `e`: a VM's definition in $EDITOR (ui/actions.h). The terminal is handed to
 * the editor and taken back; the copy it edited is checked, saved only when
 * it changed and loads, and on an error the user is asked, as visudo asks,
 * whether to edit again or discard (ui/editloop.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "src/core/paths.h"
#include "ui/actions.h"
#include "ui/app.h"
#include "ui/editloop.h"
#include "ui/overlay.h"

struct edit_session {
	struct app *app;
	char vm[80];
	struct editdef e;
};

static void session_end(struct edit_session *s)
{
	editdef_end(&s->e);
	free(s);
}

static void edit_round(struct edit_session *s);

static void answered(void *ctx, bool again)
{
	struct edit_session *s = ctx;

	if (again) {
		edit_round(s);
		return;
	}
	app_message(s->app, "changes discarded: %s is as it was", s->e.conf);
	session_end(s);
}

/* One run of the editor, then what its copy says. */
static void edit_round(struct edit_session *s)
{
	const struct model_vm *vm;
	struct tv_err err;
	char question[TV_ERR_MAX + 128];
	int rc;

	app_suspend(s->app);
	rc = editdef_run_editor(s->e.copy, &err);
	app_resume(s->app);
	if (rc < 0) {
		app_message(s->app, "%s", err.msg);
		session_end(s);
		return;
	}
	switch (editdef_check(&s->e, &err)) {
	case EDITDEF_SAVED:
		model_refresh(app_model(s->app), s->vm);
		vm = model_find(app_model(s->app), s->vm);
		app_message(s->app, "saved %s%s", s->e.conf,
			    vm && (vm->state == MODEL_RUNNING || vm->state == MODEL_PAUSED)
				    ? "; the running VM uses it from its next start"
				    : "");
		break;
	case EDITDEF_UNCHANGED:
		app_message(s->app, "%s unchanged", s->e.conf);
		break;
	case EDITDEF_INVALID:
		snprintf(question, sizeof(question),
			 "%s\n\nThe definition was not saved. e edits it again; x (or any other "
			 "key) discards your changes.",
			 err.msg);
		overlay_confirm(s->app, question, "e", answered, s);
		return;
	default:
		overlay_message(s->app, "Definition not saved", err.msg);
		break;
	}
	session_end(s);
}

void action_edit(struct app *a, const char *vm)
{
	struct edit_session *s;
	struct tv_err err;
	char *conf, *data;
	int rc;

	if (vm == NULL) {
		app_message(a, "no VM selected");
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->app = a;
	snprintf(s->vm, sizeof(s->vm), "%s", vm);
	conf = paths_vm_conf(app_paths(a), vm);
	data = paths_vm_data(app_paths(a), vm);
	rc = editdef_begin(&s->e, conf, data, &err);
	free(conf);
	free(data);
	if (rc < 0) {
		app_message(a, "%s", err.msg);
		free(s);
		return;
	}
	edit_round(s);
}
