/* Overlays: forms, confirmations, pickers and messages drawn over the views by
 * the one event loop. None of them blocks: each takes a callback that runs
 * when the user answers, and every other VM keeps being pumped meanwhile. */
#ifndef TV_UI_OVERLAY_H
#define TV_UI_OVERLAY_H

#include <stdbool.h>
#include <stddef.h>

struct app;

#define OVERLAY_FIELD_MAX 256

struct overlay_field {
	const char *label;
	char value[OVERLAY_FIELD_MAX];
	const char *hint;
	/* Optional: the choices of a picker field (NULL-terminated); Left/Right
	 * or typing cycles through them. */
	const char *const *choices;
};

/* Checks the values as they are typed; returns false with a reason (shown
 * under the fields, wrapped to the box) to refuse. field: the index being
 * edited, or -1 when the form is submitted. */
typedef bool (*overlay_validate_fn)(void *ctx, struct overlay_field *f, size_t n, int field,
				    char *msg, size_t len);
/* Called once: ok false when cancelled. The fields are the overlay's and are
 * freed after the callback returns. */
typedef void (*overlay_form_done_fn)(void *ctx, bool ok, struct overlay_field *f, size_t n);
typedef void (*overlay_confirm_fn)(void *ctx, bool yes);

/* A form of n fields (copied). */
void overlay_form(struct app *a, const char *title, const struct overlay_field *f, size_t n,
		  overlay_validate_fn validate, overlay_form_done_fn done, void *ctx);
/* A yes/no question: only the key named by yes_key ("y", or a word the user must
 * type, such as a VM's name for delete) answers yes. */
void overlay_confirm(struct app *a, const char *question, const char *yes_key,
		     overlay_confirm_fn done, void *ctx);
/* A message in a box, wrapped to fit (80 columns included); any key closes it. */
void overlay_message(struct app *a, const char *title, const char *text);
/* A list to pick from; done gets the index, or -1. */
typedef void (*overlay_pick_fn)(void *ctx, int index);
void overlay_pick(struct app *a, const char *title, const char *const *items, size_t n,
		  overlay_pick_fn done, void *ctx);

bool overlay_active(const struct app *a);

#endif
