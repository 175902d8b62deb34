/* libFuzzer target for VM definitions (src/core/vmdef.c): whatever a
 * definition file holds, loading it either fails with a message that names
 * the file (or the file it includes), or gives a definition that validates, saves, and loads back to
 * the same definition (saving it again writes the same bytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/vmdef.h"
#include "tests/fuzz/scratch.h"

/* The libconfig of this system (1.5) drops a string token its parser read
 * when a syntax error comes right after it (`name "x";`, `2"x"`, `a = ("x");""`):
 * the string, allocated by its scanner (libconfig_yylex, or strbuf_append
 * for one with characters), leaks inside the library, once per failed load,
 * as much as the string. No pointer to it reaches termvisor, so nothing here
 * can free it; the leak checker overlooks those two allocation sites. A
 * configuration left undestroyed still shows, by its settings, which
 * libconfig allocates elsewhere. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

/* Without the list of suppressions used after every leak check, which
 * would bury libFuzzer's own lines. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}

static const char *dir;
static char in[4200], out1[4200], out2[4200];

static void quiet(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

static void setup(void)
{
	if (dir != NULL)
		return;
	dir = fuzz_scratch_dir("vmdef");
	snprintf(in, sizeof(in), "%s/lab.conf", dir);
	snprintf(out1, sizeof(out1), "%s/lab-a.conf", dir);
	snprintf(out2, sizeof(out2), "%s/lab-b.conf", dir);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;

	*len = 0;
	if (f == NULL)
		abort();
	for (;;) {
		if (*len == cap && (buf = realloc(buf, cap = cap * 2 + 4096)) == NULL)
			abort();
		size_t n = fread(buf + *len, 1, cap - *len, f);
		if (n == 0)
			break;
		*len += n;
	}
	fclose(f);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmdef d, back;
	struct tv_err err;
	FILE *f;

	setup();
	f = fopen(in, "wb");
	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	if (vmdef_load(in, dir, &d, quiet, NULL, &err) < 0) {
		/* A refusal names a file: the definition, or one it @includes. */
		if (strchr(err.msg, '/') == NULL || strstr(err.msg, ": ") == NULL) {
			fprintf(stderr, "error without the file name: %s\n", err.msg);
			abort();
		}
		return 0;
	}
	if (vmdef_validate(&d, &err) < 0) {
		fprintf(stderr, "loaded but does not validate: %s\n", err.msg);
		abort();
	}
	/* The name comes from the file name: keep it across the round trip. */
	if (vmdef_save(&d, out1, &err) < 0) {
		fprintf(stderr, "save: %s\n", err.msg);
		abort();
	}
	unlink(in);
	if (rename(out1, in) < 0)
		abort();
	if (vmdef_load(in, dir, &back, quiet, NULL, &err) < 0) {
		fprintf(stderr, "what was saved does not load: %s\n", err.msg);
		abort();
	}
	if (vmdef_save(&back, out2, &err) < 0)
		abort();
	size_t l1, l2;
	char *a = slurp(in, &l1), *b = slurp(out2, &l2);
	if (l1 != l2 || memcmp(a, b, l1) != 0) {
		fprintf(stderr, "saving the loaded definition again changed it\n");
		abort();
	}
	free(a);
	free(b);
	vmdef_free(&back);
	vmdef_free(&d);
	unlink(out2);
	return 0;
}

#include "tests/fuzz/standalone.h"
