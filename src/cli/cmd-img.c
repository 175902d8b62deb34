/* `termvisor img`: disk image tools modelled on qemu-img, so habits carry
 * over (same subcommands, options and exit statuses). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "src/cli/cmd.h"
#include "src/core/json.h"
#include "src/core/vmdisk.h"
#include "vm/block/block.h"
#include "common/util.h"

static const struct cmd_entry *img_self;

static int img_fail(struct tv_err *err)
{
	fprintf(stderr, "termvisor img: %s\n", err->msg);
	return TV_EXIT_ERROR;
}

static int img_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int img_usage(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cmd_usage_error(img_self, "%s", msg);
}

/* -o cluster_size=64k,refcount_bits=16,compression_type=zstd,backing_file=..,backing_fmt=.. */
static int parse_create_opts(char *s, struct blk_create_opts *o)
{
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		char *v = strchr(tok, '=');
		uint64_t n;
		if (!v)
			return img_usage("option '%s': expected NAME=VALUE", tok);
		*v++ = 0;
		if (strcmp(tok, "cluster_size") == 0) {
			if (parse_size(v, &n) < 0)
				return img_usage("cluster_size: expected a size like 64K, not '%s'", v);
			o->cluster_size = n;
		} else if (strcmp(tok, "refcount_bits") == 0) {
			o->refcount_bits = atoi(v);
		} else if (strcmp(tok, "compression_type") == 0) {
			o->compression = v;
		} else if (strcmp(tok, "backing_file") == 0) {
			o->backing = v;
		} else if (strcmp(tok, "backing_fmt") == 0) {
			o->backing_fmt = v;
		} else if (strcmp(tok, "compat") == 0) {
			if (strcmp(v, "1.1") != 0 && strcmp(v, "v3") != 0)
				return img_usage("compat=%s: only version 3 (1.1) images are created",
						 v);
		} else {
			return img_usage("unknown option '%s' (expected cluster_size, refcount_bits, "
					 "compression_type, backing_file, backing_fmt)",
					 tok);
		}
	}
	return 0;
}

static int img_create(int argc, char **argv)
{
	struct blk_create_opts o = {0};
	const char *fmt = "qcow2";
	uint64_t size = 0;
	struct tv_err err;
	int c, rc;

	optind = 1;
	while ((c = getopt(argc, argv, "f:b:F:o:u")) != -1) {
		switch (c) {
		case 'f':
			fmt = optarg;
			break;
		case 'b':
			o.backing = optarg;
			break;
		case 'F':
			o.backing_fmt = optarg;
			break;
		case 'o':
			if ((rc = parse_create_opts(optarg, &o)) != 0)
				return rc;
			break;
		case 'u':
			break;
		default:
			return img_usage("create: bad option");
		}
	}
	if (optind >= argc)
		return img_usage("create: expected FILE [SIZE]");
	if (optind + 1 < argc && parse_size(argv[optind + 1], &size) < 0)
		return img_usage("create: expected a size like 10G, not '%s'", argv[optind + 1]);
	if (optind + 1 >= argc && !o.backing)
		return img_usage("create: expected a SIZE");
	o.size_from_backing = optind + 1 >= argc;
	if (blk_create(argv[optind], fmt, size, &o, &err) < 0)
		return img_fail(&err);
	printf("Formatting '%s', fmt=%s size=%" PRIu64 "\n", argv[optind], fmt, size);
	return TV_EXIT_OK;
}

static void info_print(struct blk *b, bool json, bool first, bool last)
{
	struct blk_info in;
	struct blk_snapshot *sn = NULL;
	int nsn = 0;

	blk_get_info(b, &in);
	if (!strcmp(in.format, "qcow2"))
		blk_snapshot_list(b, &sn, &nsn, NULL);
	if (json) {
		printf("%s{\n    \"filename\": ", first ? "" : "");
		json_string(stdout, blk_path(b));
		printf(",\n    \"format\": \"%s\",\n    \"virtual-size\": %" PRIu64
		       ",\n    \"actual-size\": %" PRIu64,
		       in.format, in.virtual_size, in.disk_size);
		if (in.cluster_size)
			printf(",\n    \"cluster-size\": %" PRIu64, in.cluster_size);
		if (in.backing) {
			printf(",\n    \"backing-filename\": ");
			json_string(stdout, in.backing);
		}
		if (in.backing_fmt) {
			printf(",\n    \"backing-filename-format\": ");
			json_string(stdout, in.backing_fmt);
		}
		printf(",\n    \"dirty-flag\": %s", in.dirty ? "true" : "false");
		if (in.version)
			printf(",\n    \"format-specific\": {\"type\": \"qcow2\", \"data\": "
			       "{\"compat\": \"%s\", \"refcount-bits\": %d, \"compression-type\": "
			       "\"%s\", \"corrupt\": %s, \"lazy-refcounts\": %s}}",
			       in.version == 3 ? "1.1" : "0.10", in.refcount_bits, in.compression,
			       in.corrupt ? "true" : "false", in.lazy_refcounts ? "true" : "false");
		if (nsn) {
			printf(",\n    \"snapshots\": [");
			for (int i = 0; i < nsn; i++) {
				printf("%s\n        {\"id\": ", i ? "," : "");
				json_string(stdout, sn[i].id);
				printf(", \"name\": ");
				json_string(stdout, sn[i].name);
				printf(", \"vm-state-size\": %" PRIu64 ", \"date-sec\": %u, "
				       "\"date-nsec\": %u, \"vm-clock-nsec\": %" PRIu64 "}",
				       sn[i].vm_state_size, sn[i].date_sec, sn[i].date_nsec,
				       sn[i].vm_clock_nsec);
			}
			printf("\n    ]");
		}
		printf("\n}%s\n", last ? "" : ",");
	} else {
		printf("image: %s\nfile format: %s\nvirtual size: %" PRIu64 " bytes\n"
		       "disk size: %" PRIu64 " bytes\n",
		       blk_path(b), in.format, in.virtual_size, in.disk_size);
		if (in.cluster_size)
			printf("cluster_size: %" PRIu64 "\n", in.cluster_size);
		if (in.backing)
			printf("backing file: %s\n", in.backing);
		if (in.backing_fmt)
			printf("backing file format: %s\n", in.backing_fmt);
		if (nsn) {
			printf("Snapshot list:\nID        TAG                 VM SIZE    DATE\n");
			for (int i = 0; i < nsn; i++) {
				char d[32];
				time_t t = sn[i].date_sec;
				strftime(d, sizeof(d), "%Y-%m-%d %H:%M:%S", localtime(&t));
				printf("%-9s %-19s %-10" PRIu64 " %s\n", sn[i].id, sn[i].name,
				       sn[i].vm_state_size, d);
			}
		}
		if (in.version)
			printf("Format specific information:\n    compat: %s\n"
			       "    compression type: %s\n    lazy refcounts: %s\n"
			       "    refcount bits: %d\n    corrupt: %s\n",
			       in.version == 3 ? "1.1" : "0.10", in.compression,
			       in.lazy_refcounts ? "true" : "false", in.refcount_bits,
			       in.corrupt ? "true" : "false");
		if (!last)
			printf("\n");
	}
	blk_snapshot_list_free(sn, nsn);
}

static int img_info(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"output", required_argument, NULL, 'O'},
					   {"backing-chain", no_argument, NULL, 'c'},
					   {"force-share", no_argument, NULL, 'U'},
					   {0}};
	const char *fmt = NULL;
	bool json = false, chain = false;
	struct tv_err err;
	struct blk *b;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:U", lo, NULL)) != -1) {
		if (c == 'f')
			fmt = optarg;
		else if (c == 'j')
			json = true;
		else if (c == 'O')
			json = strcmp(optarg, "json") == 0;
		else if (c == 'c')
			chain = true;
		else if (c != 'U')
			return img_usage("info: bad option");
	}
	if (optind != argc - 1)
		return img_usage("info: expected one FILE");
	if (blk_open(&b, argv[optind], fmt, BLK_SHARE | BLK_NO_REPAIR | (chain ? 0 : BLK_NO_BACKING),
		     &err) < 0)
		return img_fail(&err);
	if (json && chain)
		printf("[\n");
	for (struct blk *x = b; x; x = chain ? blk_backing(x) : NULL)
		info_print(x, json, x == b, !chain || !blk_backing(x));
	if (json && chain)
		printf("]\n");
	blk_close(b, NULL);
	return TV_EXIT_OK;
}

static int img_check(int argc, char **argv)
{
	static const struct option lo[] = {{"repair", required_argument, NULL, 'r'},
					   {"force-share", no_argument, NULL, 'U'},
					   {0}};
	const char *fmt = NULL;
	int fix = 0, c;
	struct blk_check_result r;
	struct tv_err err;
	struct blk *b;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:r:U", lo, NULL)) != -1) {
		if (c == 'f') {
			fmt = optarg;
		} else if (c == 'r') {
			if (strcmp(optarg, "leaks") == 0)
				fix = BLK_FIX_LEAKS;
			else if (strcmp(optarg, "all") == 0)
				fix = BLK_FIX_LEAKS | BLK_FIX_ERRORS;
			else
				return img_usage("check: -r %s: expected leaks or all", optarg);
		} else if (c != 'U') {
			return img_usage("check: bad option");
		}
	}
	if (optind != argc - 1)
		return img_usage("check: expected one FILE");
	if (blk_open(&b, argv[optind], fmt,
		     BLK_NO_BACKING | BLK_NO_REPAIR | (fix ? BLK_CHECK : BLK_READONLY), &err) < 0)
		return img_fail(&err);
	if (blk_check(b, fix, &r, &err) < 0) {
		blk_close(b, NULL);
		return img_fail(&err);
	}
	if (blk_close(b, &err) < 0)
		return img_fail(&err);
	if (r.leaks_fixed || r.corruptions_fixed)
		printf("The following inconsistencies were found and repaired:\n\n"
		       "    %" PRIu64 " leaked clusters\n    %" PRIu64 " corruptions\n\n",
		       r.leaks_fixed, r.corruptions_fixed);
	r.leaks -= r.leaks_fixed;
	r.corruptions -= r.corruptions_fixed;
	if (!r.leaks && !r.corruptions && !r.check_errors)
		printf("No errors were found on the image.\n");
	if (r.corruptions)
		printf("\n%" PRIu64 " errors were found on the image.\nData may be corrupted, or "
		       "further writes to the image may corrupt it.\n",
		       r.corruptions);
	if (r.leaks)
		printf("\n%" PRIu64 " leaked clusters were found on the image.\nThis means waste "
		       "of disk space, but no harm to data.\n",
		       r.leaks);
	if (r.total_clusters)
		printf("%" PRIu64 "/%" PRIu64 " = %.2f%% allocated\n", r.allocated_clusters,
		       r.total_clusters, 100.0 * (double)r.allocated_clusters / (double)r.total_clusters);
	if (r.image_end_offset)
		printf("Image end offset: %" PRIu64 "\n", r.image_end_offset);
	if (r.check_errors)
		return 1;
	return r.corruptions ? 2 : r.leaks ? 3 : 0;
}

static int img_snapshot(int argc, char **argv)
{
	int op = 0, c;
	const char *name = NULL;
	struct tv_err err;
	struct blk *b;
	int rc = 0;

	optind = 1;
	while ((c = getopt(argc, argv, "c:a:d:lU")) != -1) {
		if (c == 'l') {
			op = 'l';
		} else if (c == 'c' || c == 'a' || c == 'd') {
			op = c;
			name = optarg;
		} else if (c != 'U') {
			return img_usage("snapshot: bad option");
		}
	}
	if (!op || optind != argc - 1)
		return img_usage("snapshot: expected -c|-a|-d NAME or -l, and one FILE");
	if (blk_open(&b, argv[optind], NULL, op == 'l' ? BLK_SHARE : 0, &err) < 0)
		return img_fail(&err);
	if (op == 'l') {
		struct blk_snapshot *sn;
		int n;
		if (blk_snapshot_list(b, &sn, &n, &err) < 0) {
			blk_close(b, NULL);
			return img_fail(&err);
		}
		printf("Snapshot list:\nID        TAG                 VM SIZE    DATE                "
		       "VM CLOCK\n");
		for (int i = 0; i < n; i++) {
			char d[32];
			time_t t = sn[i].date_sec;
			uint64_t ms = sn[i].vm_clock_nsec / 1000000;
			strftime(d, sizeof(d), "%Y-%m-%d %H:%M:%S", localtime(&t));
			printf("%-9s %-19s %-10" PRIu64 " %s %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64
			       ".%03" PRIu64 "\n",
			       sn[i].id, sn[i].name, sn[i].vm_state_size, d, ms / 3600000,
			       ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
		}
		blk_snapshot_list_free(sn, n);
	} else if (op == 'c') {
		rc = blk_snapshot_create(b, name, 0, 0, &err);
	} else if (op == 'a') {
		rc = blk_snapshot_apply(b, name, &err);
	} else {
		rc = blk_snapshot_delete(b, name, &err);
	}
	if (rc < 0) {
		blk_close(b, NULL);
		return img_fail(&err);
	}
	if (blk_close(b, &err) < 0)
		return img_fail(&err);
	return TV_EXIT_OK;
}

static int img_convert(int argc, char **argv)
{
	const char *ofmt = "raw", *ifmt = NULL;
	bool no_create = false, compress = false;
	struct blk_create_opts o = {0};
	struct tv_err err;
	struct blk *in, *out;
	uint64_t size;
	int c, rc = TV_EXIT_OK;

	optind = 1;
	while ((c = getopt(argc, argv, "nc f:O:o:pU")) != -1) {
		switch (c) {
		case 'n':
			no_create = true;
			break;
		case 'c':
			compress = true;
			break;
		case 'f':
			ifmt = optarg;
			break;
		case 'O':
			ofmt = optarg;
			break;
		case 'o':
			if ((rc = parse_create_opts(optarg, &o)) != 0)
				return rc;
			break;
		case 'p':
		case 'U':
			break;
		default:
			return img_usage("convert: bad option");
		}
	}
	if (optind != argc - 2)
		return img_usage("convert: expected IN OUT");
	if (compress && strcmp(ofmt, "qcow2") != 0)
		return img_usage("convert: -c needs -O qcow2, not %s", ofmt);
	if (blk_open(&in, argv[optind], ifmt, BLK_SHARE, &err) < 0)
		return img_fail(&err);
	size = blk_size(in);
	if (!no_create && blk_create(argv[optind + 1], ofmt, size, &o, &err) < 0) {
		blk_close(in, NULL);
		return img_fail(&err);
	}
	if (blk_open(&out, argv[optind + 1], no_create ? NULL : ofmt, 0, &err) < 0) {
		blk_close(in, NULL);
		return img_fail(&err);
	}
	if (blk_size(out) < size) {
		tv_errf(&err, "%s: smaller than %s (%" PRIu64 " < %" PRIu64 " bytes)",
			argv[optind + 1], argv[optind], blk_size(out), size);
		goto fail;
	}
	if (vmdisk_copy(in, out, compress, no_create, &err) < 0)
		goto fail;
	blk_close(in, NULL);
	if (blk_close(out, &err) < 0)
		return img_fail(&err);
	return TV_EXIT_OK;
fail:
	blk_close(in, NULL);
	blk_close(out, NULL);
	return img_fail(&err);
}

static int img_compare(int argc, char **argv)
{
	struct tv_err err;
	struct blk *a, *b;
	uint64_t sa, sb, chunk = 1 << 20;
	uint8_t *ba, *bb;
	int rc = 0, c;

	optind = 1;
	while ((c = getopt(argc, argv, "f:F:U")) != -1)
		;
	if (optind != argc - 2)
		return img_usage("compare: expected two FILEs");
	if (blk_open(&a, argv[optind], NULL, BLK_SHARE, &err) < 0)
		return img_fail(&err);
	if (blk_open(&b, argv[optind + 1], NULL, BLK_SHARE, &err) < 0) {
		blk_close(a, NULL);
		return img_fail(&err);
	}
	sa = blk_size(a);
	sb = blk_size(b);
	ba = xmalloc(chunk);
	bb = xmalloc(chunk);
	for (uint64_t off = 0; off < MAX(sa, sb) && rc == 0; off += chunk) {
		uint64_t n = MIN(chunk, MAX(sa, sb) - off);
		uint64_t na = off < sa ? MIN(n, sa - off) : 0, nb = off < sb ? MIN(n, sb - off) : 0;
		memset(ba, 0, n);
		memset(bb, 0, n);
		if ((na && blk_pread(a, ba, na, off, &err) < 0) ||
		    (nb && blk_pread(b, bb, nb, off, &err) < 0)) {
			rc = -1;
			break;
		}
		if (memcmp(ba, bb, n) != 0) {
			uint64_t i = 0;
			while (ba[i] == bb[i])
				i++;
			printf("Content mismatch at offset %" PRIu64 "!\n", off + i);
			rc = 1;
		}
	}
	free(ba);
	free(bb);
	blk_close(a, NULL);
	blk_close(b, NULL);
	if (rc < 0) {
		fprintf(stderr, "termvisor img: %s\n", err.msg);
		return 2;
	}
	if (rc == 0)
		printf("Images are identical.\n");
	return rc;
}

static int img_resize(int argc, char **argv)
{
	struct tv_err err;
	struct blk *b;
	uint64_t size;
	const char *s;

	if (argc != 3)
		return img_usage("resize: expected FILE SIZE");
	s = argv[2];
	if (*s == '+') {
		uint64_t d;
		if (parse_size(s + 1, &d) < 0)
			return img_usage("resize: expected a size like 10G or +1G, not '%s'", s);
		if (blk_open(&b, argv[1], NULL, 0, &err) < 0)
			return img_fail(&err);
		size = blk_size(b) + d;
	} else {
		if (parse_size(s, &size) < 0)
			return img_usage("resize: expected a size like 10G or +1G, not '%s'", s);
		if (blk_open(&b, argv[1], NULL, 0, &err) < 0)
			return img_fail(&err);
	}
	if (blk_resize(b, size, &err) < 0) {
		blk_close(b, NULL);
		return img_fail(&err);
	}
	if (blk_close(b, &err) < 0)
		return img_fail(&err);
	printf("Image resized.\n");
	return TV_EXIT_OK;
}

static int img_map(int argc, char **argv)
{
	static const struct option lo[] = {{"output", required_argument, NULL, 'O'}, {0}};
	bool json = false;
	struct tv_err err;
	struct blk *b;
	uint64_t off = 0, size;
	int c, first = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:U", lo, NULL)) != -1)
		if (c == 'O')
			json = strcmp(optarg, "json") == 0;
	if (optind != argc - 1)
		return img_usage("map: expected one FILE");
	if (blk_open(&b, argv[optind], NULL, BLK_SHARE, &err) < 0)
		return img_fail(&err);
	size = blk_size(b);
	if (json)
		printf("[");
	else
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
	while (off < size) {
		uint64_t n, host, start = off, h0 = 0;
		int st = blk_block_status(b, off, size - off, &n, &host, &err), st2;
		if (st < 0) {
			blk_close(b, NULL);
			return img_fail(&err);
		}
		h0 = host;
		off += n;
		/* Merge runs that continue the same mapping. */
		while (off < size) {
			uint64_t n2, host2;
			st2 = blk_block_status(b, off, size - off, &n2, &host2, &err);
			if (st2 != st || ((st & BLK_STATUS_DATA) && host2 != h0 + (off - start)))
				break;
			off += n2;
		}
		if (json) {
			printf("%s\n{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
			       ", \"depth\": %d, \"zero\": %s, \"data\": %s",
			       first ? "" : ",", start, off - start, (st & BLK_STATUS_ALLOCATED) ? 0 : 1,
			       (st & BLK_STATUS_ZERO) ? "true" : "false",
			       (st & BLK_STATUS_DATA) ? "true" : "false");
			if ((st & BLK_STATUS_DATA) && !(st & BLK_STATUS_COMPRESSED))
				printf(", \"offset\": %" PRIu64, h0);
			printf("}");
			first = 0;
		} else if (st & BLK_STATUS_DATA) {
			printf("0x%-14" PRIx64 "0x%-14" PRIx64 "0x%-14" PRIx64 "%s\n", start,
			       off - start, h0, blk_path(b));
		}
	}
	if (json)
		printf("]\n");
	blk_close(b, NULL);
	return TV_EXIT_OK;
}

struct bench {
	struct blk *b;
	uint64_t count, size, step, offset, image_size;
	bool write;
	atomic_uint_fast64_t next;
	atomic_int failed;
	uint8_t pattern;
	struct tv_err err;
};

struct bench_worker {
	struct bench *bn;
	uint8_t *buf;
	pthread_t th;
};

static void *bench_thread(void *arg)
{
	struct bench_worker *w = arg;
	struct bench *bn = w->bn;
	uint8_t *buf = w->buf;
	struct tv_err err;

	for (;;) {
		uint64_t i = atomic_fetch_add(&bn->next, 1), off;
		int rc;
		if (i >= bn->count || atomic_load(&bn->failed))
			break;
		/* Same walk as qemu-img bench: start, start+step, ... wrapping. */
		off = bn->offset + i * bn->step;
		if (bn->image_size > bn->size)
			off %= bn->image_size - bn->size;
		else
			off = 0;
		rc = bn->write ? blk_pwrite(bn->b, buf, bn->size, off, &err)
			       : blk_pread(bn->b, buf, bn->size, off, &err);
		if (rc < 0 && !atomic_exchange(&bn->failed, 1))
			bn->err = err;
	}
	return NULL;
}

static int img_bench(int argc, char **argv)
{
	struct bench bn = {.count = 75000, .size = 4096};
	const char *fmt = NULL, *cache = "writeback";
	int depth = 64, c, flags = 0, flush_interval = 0;
	bool step_set = false;
	struct bench_worker *w;
	uint64_t t0, t1;

	optind = 1;
	while ((c = getopt(argc, argv, "c:d:f:o:s:S:t:wP:i:nU")) != -1) {
		uint64_t v;
		switch (c) {
		case 'c':
			bn.count = strtoull(optarg, NULL, 0);
			break;
		case 'd':
			depth = atoi(optarg);
			break;
		case 'f':
			fmt = optarg;
			break;
		case 'o':
			if (parse_size(optarg, &bn.offset) < 0)
				return img_usage("bench: -o %s: expected an offset", optarg);
			break;
		case 's':
			if (parse_size(optarg, &v) < 0 || !v)
				return img_usage("bench: -s %s: expected a size", optarg);
			bn.size = v;
			break;
		case 'S':
			if (parse_size(optarg, &bn.step) < 0)
				return img_usage("bench: -S %s: expected a size", optarg);
			step_set = true;
			break;
		case 't':
			cache = optarg;
			break;
		case 'w':
			bn.write = true;
			break;
		case 'P':
			bn.pattern = (uint8_t)strtoul(optarg, NULL, 0);
			break;
		case 'i':
		case 'n':
		case 'U':
			break;
		default:
			return img_usage("bench: bad option");
		}
	}
	(void)flush_interval;
	if (optind != argc - 1)
		return img_usage("bench: expected one FILE");
	if (depth < 1 || depth > 1024)
		return img_usage("bench: -d %s: expected a depth from 1 to 1024", optarg);
	if (!step_set)
		bn.step = bn.size;
	if (strcmp(cache, "none") == 0 || strcmp(cache, "directsync") == 0)
		flags |= BLK_DIRECT;
	if (!bn.write)
		flags |= BLK_READONLY;
	if (blk_open(&bn.b, argv[optind], fmt, flags, &bn.err) < 0)
		return img_fail(&bn.err);
	bn.image_size = blk_size(bn.b);
	printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %d in parallel "
	       "(starting at offset %" PRIu64 ", step size %" PRIu64 ")\n",
	       bn.count, bn.write ? "write" : "read", bn.size, depth, bn.offset, bn.step);
	/* Buffers are ready before the clock starts, as qemu-img's are. */
	w = xcalloc((size_t)depth, sizeof(*w));
	for (int i = 0; i < depth; i++) {
		w[i].bn = &bn;
		if (posix_memalign((void **)&w[i].buf, 4096, bn.size) != 0) {
			fprintf(stderr, "termvisor img: out of memory for %d buffers\n", depth);
			exit(TV_EXIT_ERROR);
		}
		memset(w[i].buf, bn.pattern, bn.size);
	}
	t0 = monotonic_ns();
	for (int i = 0; i < depth; i++)
		pthread_create(&w[i].th, NULL, bench_thread, &w[i]);
	for (int i = 0; i < depth; i++)
		pthread_join(w[i].th, NULL);
	/* Timed like qemu-img bench: the requests; the flush comes with the
	 * close, after the clock stops. */
	t1 = monotonic_ns();
	for (int i = 0; i < depth; i++)
		free(w[i].buf);
	free(w);
	if (atomic_load(&bn.failed)) {
		blk_close(bn.b, NULL);
		return img_fail(&bn.err);
	}
	printf("Run completed in %.3f seconds.\n", (double)(t1 - t0) / 1e9);
	if (blk_close(bn.b, &bn.err) < 0)
		return img_fail(&bn.err);
	return TV_EXIT_OK;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} img_cmds[] = {
	{"create", img_create}, {"info", img_info},	{"check", img_check},
	{"snapshot", img_snapshot}, {"convert", img_convert}, {"compare", img_compare},
	{"resize", img_resize}, {"map", img_map},	{"bench", img_bench},
};

static int cmd_img_exec(const struct cmd_entry *self, int argc, char **argv)
{
	img_self = self;
	if (argc < 2)
		return cmd_usage_error(self, "expected a subcommand");
	for (size_t i = 0; i < ARRAY_SIZE(img_cmds); i++)
		if (strcmp(argv[1], img_cmds[i].name) == 0)
			return img_cmds[i].fn(argc - 1, argv + 1);
	return cmd_usage_error(self, "unknown subcommand '%s'", argv[1]);
}

const struct cmd_entry cmd_img_entry = {
	.name = "img",
	.alias = NULL,
	.usage = "create|info|check|snapshot|convert|compare|resize|map|bench ...",
	.summary = "Create, inspect, check, convert and benchmark disk images (like qemu-img).",
	.options = "  create [-f qcow2|raw] [-b BACKING [-F FMT]] [-o cluster_size=N,...] FILE [SIZE]\n"
		   "  info [--json] [--backing-chain] FILE\n"
		   "  check [-r leaks|all] FILE        exit 0 clean, 2 corrupt, 3 leaks\n"
		   "  snapshot -c|-a|-d NAME FILE | snapshot -l FILE\n"
		   "  convert [-n] [-c] [-O FMT] [-o OPTS] IN OUT\n"
		   "  compare A B                      exit 0 identical, 1 different\n"
		   "  resize FILE [+]SIZE\n"
		   "  map [--output=json] FILE\n"
		   "  bench [-c COUNT] [-s SIZE] [-d DEPTH] [-w] [-S STEP] [-o OFFSET] [-P PATTERN] "
		   "[-t none] FILE\n",
	.exec = cmd_img_exec,
};
