/* The one key table (ui/keys.h): the defaults below are the documentation:
 * the footer, the help view and termvisor(1)'s key list come from them. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curses.h>

#include "src/core/settings.h"
#include "ui/keys.h"
#include "common/util.h"

#define NC(k) ((k) | KEYS_NC)
#define META(k) ((k) | KEYS_META)
#define CTRL(c) ((c) & 0x1f)

static const struct binding defaults[] = {
	/* Any view but a focused console. */
	{"global", 'q', "quit", "quit (running VMs keep running)", true},
	{"global", '?', "help", "help: every key", true},
	{"global", NC(KEY_F(1)), "help", "help: every key", false},
	{"global", '\t', "next-tab", "next tab", false},
	{"global", NC(KEY_BTAB), "prev-tab", "previous tab", false},
	{"global", '1', "tab-1", "tab 1", false},
	{"global", '2', "tab-2", "tab 2", false},
	{"global", '3', "tab-3", "tab 3", false},
	{"global", '4', "tab-4", "tab 4", false},
	{"global", '5', "tab-5", "tab 5", false},
	{"global", '6', "tab-6", "tab 6", false},
	{"global", '7', "tab-7", "tab 7", false},
	{"global", '8', "tab-8", "tab 8", false},
	{"global", '9', "tab-9", "tab 9", false},
	{"global", 'l', "last-tab", "the tab shown before", false},
	{"global", 'w', "close-tab", "close the tab shown (a running VM's console: its details until Enter)",
	 false},
	{"global", 'z', "zoom", "zoom the pane to the whole screen and back", true},
	{"global", '\r', "focus", "focus the pane (keys go to the guest)", false},
	{"global", 'W', "resize-send", "type `stty rows R cols C` into the pane's serial console",
	 false},
	/* The VM list. */
	{"list", NC(KEY_UP), "up", "previous VM", false},
	{"list", 'k', "up", "previous VM", false},
	{"list", NC(KEY_DOWN), "down", "next VM", false},
	{"list", 'j', "down", "next VM", false},
	{"list", NC(KEY_HOME), "first", "first VM", false},
	{"list", NC(KEY_END), "last", "last VM", false},
	{"list", '\r', "console", "console: start if needed, keys go to the guest", true},
	{"list", 's', "start", "start in the background", true},
	{"list", 'X', "stop", "stop: ACPI power button, forced off after 30 s (asks)", true},
	{"list", 'F', "force-off", "force off now, like pulling the plug (asks)", false},
	{"list", 'p', "pause", "pause / resume", true},
	{"list", 'n', "create", "new VM (a form)", true},
	{"list", 'D', "delete", "delete (asks for the VM's name)", false},
	{"list", 't', "take", "take a snapshot", true},
	{"list", 'T', "tree", "snapshot tree", true},
	{"list", 'r', "rollback", "roll back (the tree, on the newest snapshot)", false},
	{"list", 'e', "edit", "edit the definition in $EDITOR", false},
	{"list", NC(KEY_PPAGE), "scroll-up", "scroll the pane back", false},
	{"list", NC(KEY_NPAGE), "scroll-down", "scroll the pane forward", false},
	/* A focused console: every other key goes to the guest. */
	{"console", CTRL('g'), "release", "give the keyboard back to the list", true},
	{"console", META('z'), "zoom", "zoom the console to the whole screen and back", true},
	{"console", NC(KEY_SPREVIOUS), "scroll-up", "scroll back", true},
	{"console", NC(KEY_SNEXT), "scroll-down", "scroll forward", false},
	{"console", META('w'), "resize-send", "type `stty rows R cols C` into the guest", false},
	{"console", META('n'), "next-tab", "next tab", false},
	{"console", META('p'), "prev-tab", "previous tab", false},
	{"console", META('c'), "copy-mode", "copy mode: move through the scrollback, select, copy",
	 true},
	{"console", META('/'), "search", "copy mode, then search back through the scrollback",
	 false},
	{"console", META('v'), "paste", "type the text copied last into the guest", true},
	/* A console's copy mode (like tmux's): keys move a cursor over the
	 * scrollback, none goes to the guest. */
	{"copy", NC(KEY_UP), "up", "cursor up (scrolls back at the top)", false},
	{"copy", 'k', "up", "cursor up (scrolls back at the top)", false},
	{"copy", NC(KEY_DOWN), "down", "cursor down", false},
	{"copy", 'j', "down", "cursor down", false},
	{"copy", NC(KEY_LEFT), "left", "cursor left", false},
	{"copy", 'h', "left", "cursor left", false},
	{"copy", NC(KEY_RIGHT), "right", "cursor right", false},
	{"copy", 'l', "right", "cursor right", false},
	{"copy", NC(KEY_PPAGE), "page-up", "a page back", false},
	{"copy", CTRL('b'), "page-up", "a page back", false},
	{"copy", NC(KEY_NPAGE), "page-down", "a page forward", false},
	{"copy", CTRL('f'), "page-down", "a page forward", false},
	{"copy", 'g', "top", "the oldest line", false},
	{"copy", 'G', "bottom", "the newest line", false},
	{"copy", '0', "line-start", "start of the line", false},
	{"copy", NC(KEY_HOME), "line-start", "start of the line", false},
	{"copy", '$', "line-end", "end of the line", false},
	{"copy", NC(KEY_END), "line-end", "end of the line", false},
	{"copy", ' ', "select", "start a selection here", true},
	{"copy", 'v', "select", "start a selection here", false},
	{"copy", 'V', "select-lines", "start a selection of whole lines", false},
	{"copy", '\r', "copy", "copy the selection (your terminal's clipboard, OSC 52) and leave",
	 true},
	{"copy", 'y', "copy", "copy the selection (your terminal's clipboard, OSC 52) and leave",
	 false},
	{"copy", '/', "search-forward", "search forward (newer)", true},
	{"copy", '?', "search-back", "search back (older)", true},
	{"copy", 'n', "search-next", "the next match, in the search's direction", true},
	{"copy", 'N', "search-prev", "the match the other way", false},
	{"copy", 'q', "leave", "leave copy mode", true},
	{"copy", 27, "leave", "leave copy mode", false},
	{"copy", CTRL('g'), "leave", "leave copy mode", false},
	/* The snapshot tree. */
	{"snapshots", NC(KEY_UP), "up", "previous snapshot", false},
	{"snapshots", 'k', "up", "previous snapshot", false},
	{"snapshots", NC(KEY_DOWN), "down", "next snapshot", false},
	{"snapshots", 'j', "down", "next snapshot", false},
	{"snapshots", 't', "take", "take a snapshot", true},
	{"snapshots", 'r', "rollback", "roll back to this snapshot (asks)", true},
	{"snapshots", 'D', "delete", "delete this snapshot (asks)", true},
	{"snapshots", 'R', "rename", "rename this snapshot", true},
	{"snapshots", 'c', "clone", "a new VM from this snapshot", true},
	{"snapshots", 27, "close", "close the tree", true},
	{"snapshots", 'q', "close", "close the tree", false},
	/* The help view. */
	{"help", NC(KEY_UP), "up", "scroll up", false},
	{"help", 'k', "up", "scroll up", false},
	{"help", NC(KEY_DOWN), "down", "scroll down", false},
	{"help", 'j', "down", "scroll down", false},
	{"help", 27, "close", "close the help", true},
	{"help", 'q', "close", "close the help", true},
};

void keys_defaults(struct keytable *t)
{
	t->n = ARRAY_SIZE(defaults);
	t->b = xcalloc(t->n, sizeof(*t->b));
	memcpy(t->b, defaults, sizeof(defaults));
}

void keys_free(struct keytable *t)
{
	free(t->b);
	t->b = NULL;
	t->n = 0;
}

static const struct {
	const char *name;
	int key;
} named[] = {
	{"Enter", '\r'},
	{"Esc", 27},
	{"Tab", '\t'},
	{"Space", ' '},
	{"BSpace", 127},
	{"BTab", NC(KEY_BTAB)},
	{"Up", NC(KEY_UP)},
	{"Down", NC(KEY_DOWN)},
	{"Left", NC(KEY_LEFT)},
	{"Right", NC(KEY_RIGHT)},
	{"PgUp", NC(KEY_PPAGE)},
	{"PgDn", NC(KEY_NPAGE)},
	{"S-PgUp", NC(KEY_SPREVIOUS)},
	{"S-PgDn", NC(KEY_SNEXT)},
	{"Home", NC(KEY_HOME)},
	{"End", NC(KEY_END)},
	{"Del", NC(KEY_DC)},
	{"Ins", NC(KEY_IC)},
};

const char *keys_name(int key, char *buf, size_t len)
{
	const char *meta = key & KEYS_META ? "M-" : "";
	int k = key & ~KEYS_META;

	for (size_t i = 0; i < ARRAY_SIZE(named); i++)
		if (named[i].key == k) {
			snprintf(buf, len, "%s%s", meta, named[i].name);
			return buf;
		}
	if (k & KEYS_NC) {
		int c = k & ~KEYS_NC;
		if (c >= KEY_F(1) && c <= KEY_F(12))
			snprintf(buf, len, "%sF%d", meta, c - KEY_F0);
		else
			snprintf(buf, len, "%skey-%d", meta, c);
	} else if (k >= 1 && k <= 26) {
		snprintf(buf, len, "%sC-%c", meta, 'a' + k - 1);
	} else if (k >= 28 && k < 32) {
		snprintf(buf, len, "%sC-%c", meta, "\\]^_"[k - 28]);
	} else if (k > 32 && k < 127) {
		snprintf(buf, len, "%s%c", meta, k);
	} else {
		snprintf(buf, len, "%s#%d", meta, k);
	}
	return buf;
}

int keys_parse(const char *name, int *key, struct tv_err *err)
{
	const char *s = name;
	int meta = 0;

	if (strncmp(s, "M-", 2) == 0 && s[2]) {
		meta = KEYS_META;
		s += 2;
	}
	for (size_t i = 0; i < ARRAY_SIZE(named); i++)
		if (strcmp(s, named[i].name) == 0) {
			*key = named[i].key | meta;
			return 0;
		}
	if (s[0] == 'F' && s[1] >= '1' && s[1] <= '9') {
		char *end;
		long n = strtol(s + 1, &end, 10);
		if (*end == '\0' && n >= 1 && n <= 12) {
			*key = NC(KEY_F((int)n)) | meta;
			return 0;
		}
	}
	if (strncmp(s, "C-", 2) == 0 && s[2] && !s[3]) {
		int c = tolower((unsigned char)s[2]);
		if (c >= 'a' && c <= 'z') {
			*key = (c - 'a' + 1) | meta;
			return 0;
		}
		if (strchr("\\]^_", c)) {
			*key = CTRL(c) | meta;
			return 0;
		}
	}
	if (s[0] > 32 && s[0] < 127 && s[1] == '\0') {
		*key = s[0] | meta;
		return 0;
	}
	return tv_errf(err,
		       "unknown key name \"%s\": expected a character (\"t\"), C-x, M-x, Enter, "
		       "Esc, Tab, BTab, Space, Up, Down, Left, Right, PgUp, PgDn, S-PgUp, "
		       "S-PgDn, Home, End, Del or F1..F12",
		       name);
}

static bool known_context(const struct keytable *t, const char *context)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->b[i].context, context) == 0)
			return true;
	return false;
}

int keys_bind(struct keytable *t, const char *context, const char *action, const char *key,
	      struct tv_err *err)
{
	const struct binding *proto = NULL;
	struct binding nb;
	size_t j = 0;
	int k;

	for (size_t i = 0; i < t->n && proto == NULL; i++)
		if (strcmp(t->b[i].context, context) == 0 && strcmp(t->b[i].action, action) == 0)
			proto = &t->b[i];
	if (proto == NULL) {
		if (!known_context(t, context))
			return tv_errf(err, "unknown key context \"%s\": expected global, list, "
					    "console, copy, snapshots or help",
				       context);
		return tv_errf(err, "unknown action \"%s\" in the %s keys (termvisor(1) lists them)",
			       action, context);
	}
	if (keys_parse(key, &k, err) < 0)
		return -1;
	nb = *proto;
	nb.key = k;
	/* The action's old keys go, and any other action on this key loses it
	 * (kept unbound, so it can be given another key after). */
	for (size_t i = 0; i < t->n; i++) {
		struct binding *b = &t->b[i];
		bool here = strcmp(b->context, context) == 0;
		if (here && strcmp(b->action, action) == 0)
			continue;
		if (here && b->key == k)
			b->key = KEYS_UNBOUND;
		t->b[j++] = *b;
	}
	t->b = xreallocarray(t->b, j + 1, sizeof(*t->b));
	t->b[j++] = nb;
	t->n = j;
	return 0;
}

/* A focused console and its modes keep every key the table does not give
 * them: the guest's, copy mode's, a search being typed. */
static bool takes_global(const char *context)
{
	static const char *const own[] = {"global", "console", "copy", "search"};

	for (size_t i = 0; i < ARRAY_SIZE(own); i++)
		if (strcmp(context, own[i]) == 0)
			return false;
	return true;
}

const char *keys_lookup(const struct keytable *t, const char *context, int key)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->b[i].key == key && strcmp(t->b[i].context, context) == 0)
			return t->b[i].action;
	if (!takes_global(context))
		return NULL;
	return keys_lookup(t, "global", key);
}

/* The first key of action in context (for footers and messages). */
int keys_key_of(const struct keytable *t, const char *context, const char *action)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->b[i].context, context) == 0 && strcmp(t->b[i].action, action) == 0 &&
		    t->b[i].key != KEYS_UNBOUND)
			return t->b[i].key;
	return -1;
}

static void footer_add(char *buf, size_t len, size_t *used, int cols, const struct binding *b,
		       bool *full)
{
	char kn[32], item[128];
	int n;

	if (*full || b->key == KEYS_UNBOUND)
		return;
	n = snprintf(item, sizeof(item), "%s%s %s", *used ? "  " : "",
		     keys_name(b->key, kn, sizeof(kn)), b->action);
	if (n < 0 || *used + (size_t)n > (size_t)cols || *used + (size_t)n + 1 > len) {
		*full = true;
		return;
	}
	memcpy(buf + *used, item, (size_t)n + 1);
	*used += (size_t)n;
}

void keys_footer(const struct keytable *t, const char *context, int cols, char *buf, size_t len)
{
	size_t used = 0;
	bool full = false;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < t->n; i++)
		if (t->b[i].footer && strcmp(t->b[i].context, context) == 0)
			footer_add(buf, len, &used, cols, &t->b[i], &full);
	if (!takes_global(context))
		return;
	for (size_t i = 0; i < t->n; i++)
		if (t->b[i].footer && strcmp(t->b[i].context, "global") == 0 &&
		    keys_lookup(t, context, t->b[i].key) == t->b[i].action)
			footer_add(buf, len, &used, cols, &t->b[i], &full);
}

static int conf_entry(void *ctx, const char *section, const char *name, const char *value,
		      const char *where, struct tv_err *err)
{
	if (keys_bind(ctx, section, name, value, err) < 0)
		return tv_err_prefix(err, "%s: keys.%s.%s: ", where, section, name);
	return 0;
}

int keys_load(struct keytable *t, const char *file, struct tv_err *err)
{
	if (settings_group(file, "keys", true, conf_entry, t, err) < 0)
		return -1;
	return keys_check(t, err);
}

int keys_check(const struct keytable *t, struct tv_err *err)
{
	char kn[32];

	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
		if (keys_key_of(t, defaults[i].context, defaults[i].action) < 0)
			return tv_errf(err, "the %s action \"%s\" has no key left (its key was given "
					    "to another action)",
				       defaults[i].context, defaults[i].action);
	for (size_t i = 0; i < t->n; i++)
		for (size_t j = i + 1; j < t->n; j++)
			if (t->b[i].key == t->b[j].key && t->b[i].key != KEYS_UNBOUND &&
			    strcmp(t->b[i].context, t->b[j].context) == 0 &&
			    strcmp(t->b[i].action, t->b[j].action) != 0)
				return tv_errf(err, "key %s is bound to both %s and %s in %s",
					       keys_name(t->b[i].key, kn, sizeof(kn)),
					       t->b[i].action, t->b[j].action, t->b[i].context);
	return 0;
}

static void append(char **out, size_t *len, size_t *cap, const char *text)
{
	size_t n = strlen(text);

	if (*len + n + 1 > *cap)
		*out = xrealloc(*out, *cap = (*cap + n) * 2);
	memcpy(*out + *len, text, n + 1);
	*len += n;
}

static bool same_action(const struct binding *a, const struct binding *b)
{
	return strcmp(a->context, b->context) == 0 && strcmp(a->action, b->action) == 0;
}

void keys_each_action(const struct keytable *t, keys_each_fn fn, void *ctx)
{
	static const char *const contexts[] = {"global", "list",      "console",
					       "copy",   "snapshots", "help"};
	static const char *const titles[] = {
		"Everywhere but in a focused console", "In the VM list",
		"In a focused console (every other key goes to the guest)",
		"In a console's copy mode (a search is typed on its title line: Enter "
		"searches, Esc cancels)",
		"In the snapshot tree", "In the help"};

	for (size_t c = 0; c < ARRAY_SIZE(contexts); c++) {
		fn(ctx, titles[c], NULL, NULL);
		for (size_t i = 0; i < t->n; i++) {
			const struct binding *b = &t->b[i];
			char keys[96] = "", kn[32];
			bool first = strcmp(b->context, contexts[c]) == 0 && b->key != KEYS_UNBOUND;
			/* An action once, where its first key is. */
			for (size_t j = 0; j < i && first; j++)
				first = !same_action(&t->b[j], b) || t->b[j].key == KEYS_UNBOUND;
			if (!first)
				continue;
			for (size_t j = i; j < t->n; j++) {
				size_t kl = strlen(keys);
				if (same_action(&t->b[j], b) && t->b[j].key != KEYS_UNBOUND)
					snprintf(keys + kl, sizeof(keys) - kl, "%s%s", kl ? ", " : "",
						 keys_name(t->b[j].key, kn, sizeof(kn)));
			}
			fn(ctx, titles[c], keys, b);
		}
	}
}

struct text {
	char *out;
	size_t len, cap;
};

static void help_line(void *ctx, const char *title, const char *keys, const struct binding *b)
{
	struct text *t = ctx;
	char line[256];

	if (keys)
		snprintf(line, sizeof(line), "  %-14s %-12s %s\n", keys, b->action, b->help);
	else
		snprintf(line, sizeof(line), "%s%s:\n", t->len ? "\n" : "", title);
	append(&t->out, &t->len, &t->cap, line);
}

/* The help text of every context, one line per action with all its keys. */
char *keys_help_text(const struct keytable *t)
{
	struct text text = {xmalloc(4096), 0, 4096};

	text.out[0] = '\0';
	keys_each_action(t, help_line, &text);
	return text.out;
}
