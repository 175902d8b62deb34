/* Host-side kernel extraction: SHA-256 against the FIPS 180-4 examples;
 * bzImages made here with every payload format Linux builds (and its size
 * trailer) give back the exact ELF; the cache is reused and rebuilt when
 * damaged; hostile files (truncated, inconsistent headers, corrupt payloads,
 * decompression bombs) fail with the file named and never crash. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include "vm/decompress.h"
#include "vm/sha256.h"
#include "common/util.h"

struct blob {
	uint8_t *p;
	size_t len;
};

static char tmpdir[] = "/tmp/tv-test-decompress-XXXXXX";

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* An x86-64 ELF with one PT_NOTE segment holding a note of the given type
 * from "Xen" (18 is the PVH entry), and size bytes of compressible text. */
static struct blob make_elf(uint32_t note_type, size_t size)
{
	struct blob b = {xcalloc(1, size), size};
	uint8_t *note = b.p + 64 + 56;

	memcpy(b.p,
	       "\x7f"
	       "ELF\x02\x01\x01",
	       7);
	put16(b.p + 16, 2);  /* ET_EXEC */
	put16(b.p + 18, 62); /* x86-64 */
	put32(b.p + 20, 1);
	put64(b.p + 32, 64); /* phoff */
	put16(b.p + 52, 64);
	put16(b.p + 54, 56);
	put16(b.p + 56, 1);
	put32(b.p + 64, 4);	  /* PT_NOTE */
	put64(b.p + 64 + 8, 120); /* offset */
	put64(b.p + 64 + 32, 24); /* filesz */
	put32(note, 4);
	put32(note + 4, 8);
	put32(note + 8, note_type);
	memcpy(note + 12, "Xen", 4);
	put64(note + 16, 0x1000850);
	for (size_t i = 144; i < size; i++)
		b.p[i] = (uint8_t)("termvisor boots kernels "[i % 24] ^ (i / 4096));
	return b;
}

static struct blob compress_gzip(const struct blob *in)
{
	struct blob o = {xmalloc(in->len + 1024), 0};
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = in->p;
	z.avail_in = (uInt)in->len;
	z.next_out = o.p;
	z.avail_out = (uInt)(in->len + 1024);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	o.len = z.total_out;
	deflateEnd(&z);
	return o;
}

static struct blob compress_xz(const struct blob *in)
{
	struct blob o = {xmalloc(in->len + 1024), 0};

	assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, in->p, in->len, o.p,
						 &o.len, in->len + 1024),
			 LZMA_OK);
	return o;
}

static struct blob compress_lzma(const struct blob *in)
{
	struct blob o = {xmalloc(in->len + 1024), 0};
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt;

	lzma_lzma_preset(&opt, 6);
	assert_int_equal(lzma_alone_encoder(&s, &opt), LZMA_OK);
	s.next_in = in->p;
	s.avail_in = in->len;
	s.next_out = o.p;
	s.avail_out = in->len + 1024;
	assert_int_equal(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
	o.len = s.total_out;
	lzma_end(&s);
	return o;
}

/* `lz4 -l`: magic, then (size, block) per 8 MiB of input. */
static struct blob compress_lz4(const struct blob *in)
{
	size_t cap = 4 + in->len + in->len / 200 + 1024;
	struct blob o = {xmalloc(cap), 4};

	put32(o.p, 0x184C2102);
	for (size_t i = 0; i < in->len; i += 8u << 20) {
		int n = (int)MIN(in->len - i, (size_t)8 << 20);
		int c = LZ4_compress_default((const char *)in->p + i, (char *)o.p + o.len + 4, n,
					     (int)(cap - o.len - 4));
		assert_true(c > 0);
		put32(o.p + o.len, (uint32_t)c);
		o.len += 4 + (size_t)c;
	}
	return o;
}

static struct blob compress_zstd(const struct blob *in)
{
	size_t cap = ZSTD_compressBound(in->len);
	struct blob o = {xmalloc(cap), 0};

	o.len = ZSTD_compress(o.p, cap, in->p, in->len, 19);
	assert_false(ZSTD_isError(o.len));
	return o;
}

/* A bzImage around payload, with Linux's 4-byte size trailer appended. */
static struct blob make_bzimage(const struct blob *payload, uint32_t orig_size)
{
	const size_t setup = 2 * 512, poff = 0x200;
	size_t plen = payload->len + 4, pm = ALIGN_UP(poff + plen + 100, 16);
	struct blob b = {xcalloc(1, setup + pm), setup + pm};

	b.p[0x1F1] = 1; /* setup_sects: 1 + the boot sector */
	put32(b.p + 0x1F4, (uint32_t)(pm / 16));
	put16(b.p + 0x1FE, 0xAA55);
	memcpy(b.p + 0x202, "HdrS", 4);
	put16(b.p + 0x206, 0x20F);
	put32(b.p + 0x248, (uint32_t)poff);
	put32(b.p + 0x24C, (uint32_t)plen);
	memcpy(b.p + setup + poff, payload->p, payload->len);
	put32(b.p + setup + poff + payload->len, orig_size);
	return b;
}

static char *write_tmp(const char *name, const struct blob *b)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, b->p, b->len), 0);
	close(fd);
	return path;
}

static struct blob read_path(const char *path)
{
	struct stat st;
	struct blob b;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	b.len = (size_t)st.st_size;
	b.p = xmalloc(b.len + 1);
	assert_int_equal(read_full(fd, b.p, b.len), 0);
	close(fd);
	return b;
}

/* ---- SHA-256 ---- */

static void test_sha256_vectors(void **state)
{
	char hex[SHA256_HEX_LEN + 1];
	char *million = xmalloc(1000000);
	struct sha256 s;
	uint8_t d[32];

	(void)state;
	sha256_hex("", 0, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	assert_string_equal(hex,
			    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	memset(million, 'a', 1000000);
	sha256_hex(million, 1000000, hex);
	assert_string_equal(hex,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	/* Fed in odd-sized pieces, the same digest. */
	sha256_init(&s);
	for (size_t i = 0; i < 1000000;) {
		size_t n = MIN((size_t)(i % 113) + 1, 1000000 - i);
		sha256_update(&s, million + i, n);
		i += n;
	}
	sha256_final(&s, d);
	assert_int_equal(d[0], 0xcd);
	assert_int_equal(d[31], 0xd0);
	free(million);
}

/* ---- extraction ---- */

typedef struct blob (*compress_fn)(const struct blob *);

static const struct {
	const char *name;
	compress_fn fn;
	enum kernel_payload_format f;
} formats[] = {
    {"gzip", compress_gzip, PAYLOAD_GZIP}, {"xz", compress_xz, PAYLOAD_XZ},
    {"lzma", compress_lzma, PAYLOAD_LZMA}, {"lz4", compress_lz4, PAYLOAD_LZ4},
    {"zstd", compress_zstd, PAYLOAD_ZSTD},
};

static void test_formats_roundtrip(void **state)
{
	/* Over 8 MiB so the lz4 frame has two blocks. */
	struct blob elf = make_elf(18, (9u << 20) + 12345);

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		struct blob c = formats[i].fn(&elf), bz = make_bzimage(&c, (uint32_t)elf.len), got;
		char *name = xasprintf("bz-%s", formats[i].name);
		char *path = write_tmp(name, &bz), *cache = xasprintf("%s/cache/k", tmpdir);
		char *out = NULL;
		struct tv_err err = {{0}};
		uint8_t *mem;
		size_t mem_len, off, plen;

		assert_int_equal(bzimage_payload(bz.p, bz.len, &off, &plen, &err), 0);
		assert_int_equal(kernel_payload_detect(bz.p + off, plen), formats[i].f);
		if (kernel_extract(path, cache, &out, &err) != 0)
			fail_msg("%s: %s", formats[i].name, err.msg);
		got = read_path(out);
		assert_int_equal(got.len, elf.len);
		assert_memory_equal(got.p, elf.p, elf.len);
		assert_int_equal(kernel_extract_mem(path, &mem, &mem_len, &err), 0);
		assert_int_equal(mem_len, elf.len);
		assert_memory_equal(mem, elf.p, elf.len);
		free(mem);
		free(got.p);
		free(out);
		free(cache);
		free(path);
		free(name);
		free(bz.p);
		free(c.p);
	}
	free(elf.p);
}

static void test_cache_reused_and_repaired(void **state)
{
	struct blob elf = make_elf(18, 200000), c = compress_lz4(&elf);
	struct blob bz = make_bzimage(&c, (uint32_t)elf.len);
	char *a = write_tmp("cache-a", &bz), *b = write_tmp("cache-b", &bz);
	char *cache = xasprintf("%s/cache2", tmpdir), *out1 = NULL, *out2 = NULL, *out3 = NULL;
	struct tv_err err = {{0}};
	struct stat st1, st2;
	char hex[SHA256_HEX_LEN + 1];

	(void)state;
	assert_int_equal(kernel_extract(a, cache, &out1, &err), 0);
	/* Named by the bzImage's content. */
	sha256_hex(bz.p, bz.len, hex);
	assert_non_null(strstr(out1, hex));
	assert_int_equal(stat(out1, &st1), 0);
	/* Another file with the same content: the same entry, not rewritten. */
	assert_int_equal(kernel_extract(b, cache, &out2, &err), 0);
	assert_string_equal(out1, out2);
	assert_int_equal(stat(out2, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino);
	/* A damaged entry is not trusted: it is extracted again. */
	assert_int_equal(truncate(out1, 10), 0);
	assert_int_equal(kernel_extract(a, cache, &out3, &err), 0);
	assert_int_equal(stat(out3, &st2), 0);
	assert_int_equal(st2.st_size, (off_t)elf.len);
	/* No temporary files left behind. */
	char *cmd = xasprintf("test -z \"$(ls -A %s | grep tmp)\"", cache);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(out1);
	free(out2);
	free(out3);
	free(cache);
	free(a);
	free(b);
	free(bz.p);
	free(c.p);
	free(elf.p);
}

/* The same path rewritten with another kernel: the new kernel, never the
 * vmlinux cached for the old content. */
static void test_rewritten_file_not_stale(void **state)
{
	struct blob e1 = make_elf(18, 150000), e2 = make_elf(18, 160000);
	struct blob c1 = compress_xz(&e1), c2 = compress_xz(&e2);
	struct blob b1 = make_bzimage(&c1, (uint32_t)e1.len),
		    b2 = make_bzimage(&c2, (uint32_t)e2.len);
	char *cache = xasprintf("%s/cache5", tmpdir), *path, *out = NULL;
	struct tv_err err = {{0}};
	struct blob got;

	(void)state;
	for (int round = 0; round < 3; round++) {
		const struct blob *b = round == 1 ? &b2 : &b1, *e = round == 1 ? &e2 : &e1;
		path = write_tmp("rewritten", b);
		assert_int_equal(kernel_extract(path, cache, &out, &err), 0);
		got = read_path(out);
		assert_int_equal(got.len, e->len);
		assert_memory_equal(got.p, e->p, e->len);
		/* The second boot of the unchanged file: the same entry. */
		free(out);
		assert_int_equal(kernel_extract(path, cache, &out, &err), 0);
		free(got.p);
		got = read_path(out);
		assert_memory_equal(got.p, e->p, e->len);
		free(got.p);
		free(out);
		free(path);
	}
	free(cache);
	free(b1.p);
	free(b2.p);
	free(c1.p);
	free(c2.p);
	free(e1.p);
	free(e2.p);
}

/* Six kernels through a cache that keeps four: the four used last stay. */
static void test_cache_pruned(void **state)
{
	char *cache = xasprintf("%s/cache6", tmpdir), *paths[6], *outs[6];
	struct tv_err err = {{0}};
	struct stat st;
	ino_t ino0 = 0;
	char *keep0 = xasprintf("%s/keep0", tmpdir);

	(void)state;
	for (int i = 0; i < 6; i++) {
		struct blob e = make_elf(18, 50000 + (size_t)i * 1000), c = compress_gzip(&e);
		struct blob b = make_bzimage(&c, (uint32_t)e.len);
		char *name = xasprintf("prune-%d", i);
		paths[i] = write_tmp(name, &b);
		assert_int_equal(kernel_extract(paths[i], cache, &outs[i], &err), 0);
		if (i == 0) {
			/* A second name holds on to this very file. */
			assert_int_equal(link(outs[0], keep0), 0);
			assert_int_equal(stat(outs[0], &st), 0);
			ino0 = st.st_ino;
		}
		/* Kernel 0 is booted again after each new one: always recent. */
		if (i > 0) {
			char *again = NULL;
			struct timespec pause = {0, 20 * 1000 * 1000};
			nanosleep(&pause, NULL);
			assert_int_equal(kernel_extract(paths[0], cache, &again, &err), 0);
			assert_string_equal(again, outs[0]);
			free(again);
		}
		free(name);
		free(b.p);
		free(c.p);
		free(e.p);
	}
	/* Kernel 0 stayed cached all along: never extracted again. */
	assert_int_equal(stat(outs[0], &st), 0);
	assert_int_equal(st.st_ino, ino0);
	assert_int_equal(st.st_nlink, 2);
	free(keep0);
	assert_int_equal(access(outs[1], F_OK), -1);
	assert_int_equal(access(outs[2], F_OK), -1);
	for (int i = 3; i < 6; i++)
		assert_int_equal(access(outs[i], F_OK), 0);
	for (int i = 0; i < 6; i++) {
		free(paths[i]);
		free(outs[i]);
	}
	free(cache);
}

static void test_no_pvh_note(void **state)
{
	struct blob elf = make_elf(6, 100000), c = compress_gzip(&elf);
	struct blob bz = make_bzimage(&c, (uint32_t)elf.len);
	char *path = write_tmp("nopvh", &bz), *cache = xasprintf("%s/cache3", tmpdir);
	char *out = NULL, *marker;
	struct tv_err err = {{0}};
	char hex[SHA256_HEX_LEN + 1];

	(void)state;
	assert_int_equal(kernel_extract(path, cache, &out, &err), 1);
	assert_null(out);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "no PVH entry note"));
	/* The verdict is remembered, so the next boot does not decompress. */
	sha256_hex(bz.p, bz.len, hex);
	marker = xasprintf("%s/vmlinux-%s.nopvh", cache, hex);
	assert_int_equal(access(marker, F_OK), 0);
	memset(&err, 0, sizeof(err));
	assert_int_equal(kernel_extract(path, cache, &out, &err), 1);
	assert_non_null(strstr(err.msg, "no PVH entry note"));
	free(marker);
	free(cache);
	free(path);
	free(bz.p);
	free(c.p);
	free(elf.p);
}

static void expect_error(const char *path, const char *cache, const char *what)
{
	struct tv_err err = {{0}};
	char *out = NULL;

	assert_int_equal(kernel_extract(path, cache, &out, &err), -1);
	assert_null(out);
	if (!strstr(err.msg, path) || !strstr(err.msg, what))
		fail_msg("expected \"%s\" and the file name, got: %s", what, err.msg);
}

static void test_hostile_files(void **state)
{
	struct blob elf = make_elf(18, 300000), c = compress_zstd(&elf);
	struct blob bz = make_bzimage(&c, (uint32_t)elf.len), t;
	char *cache = xasprintf("%s/cache4", tmpdir), *path;

	(void)state;
	expect_error("/nonexistent/vmlinuz", cache, "No such file");
	t = (struct blob){xcalloc(1, 4096), 4096};
	path = write_tmp("zeros", &t);
	expect_error(path, cache, "not a Linux bzImage");
	free(path);
	t.len = 100;
	path = write_tmp("tiny", &t);
	expect_error(path, cache, "too short");
	free(path);
	free(t.p);

	/* Every truncation of 16 bytes or more is caught by the header. */
	for (size_t len = 0; len + 16 <= bz.len; len += 997) {
		struct blob cut = {bz.p, len};
		path = write_tmp("cut", &cut);
		expect_error(path, cache, "");
		free(path);
	}
	/* A payload_length beyond the file. */
	t = (struct blob){xmalloc(bz.len), bz.len};
	memcpy(t.p, bz.p, bz.len);
	put32(t.p + 0x24C, 0x7fffffff);
	path = write_tmp("biglen", &t);
	expect_error(path, cache, "runs past the end");
	free(path);
	/* An old boot protocol without payload fields. */
	memcpy(t.p, bz.p, bz.len);
	put16(t.p + 0x206, 0x206);
	path = write_tmp("old", &t);
	expect_error(path, cache, "older than 2.08");
	free(path);
	/* An unknown payload format. */
	memcpy(t.p, bz.p, bz.len);
	memset(t.p + 1024 + 0x200, 0x42, 8);
	path = write_tmp("unknown", &t);
	expect_error(path, cache, "not recognised");
	free(path);
	/* Corrupt payload bytes: an error or a valid result, never a crash. */
	for (size_t i = 0; i < c.len; i += c.len / 50 + 1) {
		struct tv_err err = {{0}};
		char *out = NULL;
		int rc;
		memcpy(t.p, bz.p, bz.len);
		t.p[1024 + 0x200 + i] ^= 0x5a;
		path = write_tmp("flip", &t);
		rc = kernel_extract(path, cache, &out, &err);
		assert_true(rc >= -1 && rc <= 1);
		assert_true(rc == 0 ? out != NULL : strstr(err.msg, path) != NULL);
		free(out);
		free(path);
	}
	/* A cache that cannot be made. */
	path = write_tmp("good", &bz);
	{
		char *bad = xasprintf("%s/good/cache", tmpdir);
		expect_error(path, bad, "good");
		free(bad);
	}
	free(path);
	free(t.p);
	free(cache);
	free(bz.p);
	free(c.p);
	free(elf.p);
}

static void test_decompression_bomb(void **state)
{
	struct blob zeros = {xcalloc(1, 4u << 20), 4u << 20};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		struct blob c = formats[i].fn(&zeros);
		struct tv_err err = {{0}};
		uint8_t *out = NULL;
		size_t out_len = 0;

		assert_int_equal(kernel_payload_decompress(formats[i].f, c.p, c.len, 1u << 20, &out,
							   &out_len, &err),
				 -1);
		assert_null(out);
		if (!strstr(err.msg, "1 MiB"))
			fail_msg("%s: %s", formats[i].name, err.msg);
		free(c.p);
	}
	free(zeros.p);
}

static void test_elf_notes(void **state)
{
	struct blob elf = make_elf(18, 4096);
	struct tv_err err = {{0}};
	uint32_t entry = 0;

	(void)state;
	assert_int_equal(elf_pvh_entry(elf.p, elf.len, &entry, &err), 0);
	assert_int_equal(entry, 0x1000850);
	/* A 4-byte value works too. */
	put32(elf.p + 64 + 56 + 4, 4);
	put64(elf.p + 64 + 32, 20);
	assert_int_equal(elf_pvh_entry(elf.p, elf.len, &entry, &err), 0);
	assert_int_equal(entry, 0x1000850);
	/* A note longer than its segment. */
	put32(elf.p + 64 + 56 + 4, 4000);
	assert_int_equal(elf_pvh_entry(elf.p, elf.len, &entry, &err), -1);
	assert_non_null(strstr(err.msg, "runs past"));
	/* Program headers outside the file. */
	put64(elf.p + 32, 1ULL << 40);
	assert_int_equal(elf_pvh_entry(elf.p, elf.len, &entry, &err), -1);
	assert_non_null(strstr(err.msg, "outside"));
	/* A segment outside the file. */
	free(elf.p);
	elf = make_elf(18, 4096);
	put64(elf.p + 64 + 8, 1ULL << 40);
	assert_int_equal(elf_pvh_entry(elf.p, elf.len, &entry, &err), -1);
	/* Not x86-64, not 64-bit, not ELF. */
	free(elf.p);
	elf = make_elf(18, 4096);
	put16(elf.p + 18, 40);
	assert_int_equal(elf_pvh_entry(elf.p, elf.len, &entry, &err), -1);
	elf.p[4] = 1;
	assert_int_equal(elf_pvh_entry(elf.p, elf.len, &entry, &err), -1);
	elf.p[0] = 0;
	assert_int_equal(elf_pvh_entry(elf.p, elf.len, &entry, &err), -1);
	assert_int_equal(elf_pvh_entry(elf.p, 10, &entry, &err), -1);
	free(elf.p);
}

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	int rc = system(cmd);

	(void)state;
	free(cmd);
	return rc;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_vectors),
	    cmocka_unit_test(test_formats_roundtrip),
	    cmocka_unit_test(test_cache_reused_and_repaired),
	    cmocka_unit_test(test_rewritten_file_not_stale),
	    cmocka_unit_test(test_cache_pruned),
	    cmocka_unit_test(test_no_pvh_note),
	    cmocka_unit_test(test_hostile_files),
	    cmocka_unit_test(test_decompression_bomb),
	    cmocka_unit_test(test_elf_notes),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
