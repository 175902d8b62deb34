#include <stdbool.h>
#include <string.h>

#include "src/core/json.h"

void json_string(FILE *f, const char *s)
{
	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static size_t skip_space(const char *js, size_t i, size_t len)
{
	while (i < len && (js[i] == ' ' || js[i] == '\t' || js[i] == '\r' || js[i] == '\n'))
		i++;
	return i;
}

/* js[i] is '"': the index after its closing quote, or 0 when there is none. */
static size_t string_end(const char *js, size_t i, size_t len)
{
	for (i++; i < len; i++) {
		if (js[i] == '\\')
			i++;
		else if (js[i] == '"')
			return i + 1;
	}
	return 0;
}

static int copy_value(const char *js, size_t i, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	if (i >= len || js[i] == '{' || js[i] == '[')
		return -1;
	if (js[i] == '"') {
		size_t e = string_end(js, i, len);
		if (e == 0)
			return -1;
		for (size_t k = i + 1; k + 1 < e; k++) {
			char ch = js[k];
			if (ch == '\\') {
				ch = js[++k]; /* inside the string: k + 1 < e still */
				if (ch == 'n')
					ch = '\n';
				else if (ch == 't')
					ch = '\t';
				else if (ch == 'r' || ch == 'b' || ch == 'f')
					ch = ' ';
				else if (ch == 'u') {
					ch = '?';
					k = k + 4 < e - 1 ? k + 4 : e - 2;
				}
			}
			if (o + 1 < outlen)
				out[o++] = ch;
		}
	} else {
		for (; i < len && strchr(",}] \t\r\n", js[i]) == NULL; i++)
			if (o + 1 < outlen)
				out[o++] = js[i];
		if (o == 0)
			return -1;
	}
	out[o] = 0;
	return 0;
}

int json_flat_get(const char *js, size_t len, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key), i = 0;
	int depth = 0;

	if (outlen == 0)
		return -1;
	while (i < len) {
		if (js[i] == '"') {
			size_t e = string_end(js, i, len), j;
			if (e == 0)
				return -1;
			j = skip_space(js, e, len);
			if (depth == 1 && j < len && js[j] == ':' && e - i - 2 == klen &&
			    memcmp(js + i + 1, key, klen) == 0)
				return copy_value(js, skip_space(js, j + 1, len), len, out, outlen);
			i = e;
			continue;
		}
		if (js[i] == '{' || js[i] == '[')
			depth++;
		else if (js[i] == '}' || js[i] == ']')
			depth--;
		i++;
	}
	return -1;
}
