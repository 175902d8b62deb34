/* Included last by every fuzz target: without libFuzzer (no clang), the
 * target is a plain program that runs each file named on its command line
 * once, so the seeds are still replayed. */
#ifndef TV_FUZZ_STANDALONE_H
#define TV_FUZZ_STANDALONE_H
#ifdef FUZZ_STANDALONE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *buf = NULL;
		size_t len = 0, cap = 0, n;

		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		do {
			if (len == cap && (buf = realloc(buf, cap = cap * 2 + 65536)) == NULL)
				abort();
			n = fread(buf + len, 1, cap - len, f);
			len += n;
		} while (n > 0);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		free(buf);
	}
	return 0;
}
#endif
#endif
