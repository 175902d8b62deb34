/* A VM's snapshot tree on disk: the index, the lock, the temporary
 * directories and their journals, recovery (see snapstore.h and
 * termvisor-snapshot(5)). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "src/core/snapstore.h"
#include "src/core/fsutil.h"
#include "src/core/paths.h"
#include "vm/block/block.h"
#include "vm/memimg.h"
#include "vm/snapshot.h"
#include "common/util.h"

#define INDEX_FILE "index"
#define SNAP_MEMORY_FILE VM_SNAPSHOT_MEMORY
#define INDEX_TMP "index.tmp"
#define LOCK_FILE "lock"
#define JOURNAL_FILE "journal"
#define JOURNAL_TMP "journal.tmp"
#define TMP_PREFIX ".tmp-"
#define INDEX_MAGIC "termvisor-snapshots"
#define JOURNAL_MAGIC "termvisor-snapshot-journal"
#define INDEX_MAX_BYTES (16u << 20)
#define JOURNAL_MAX_BYTES (1u << 20)
#define JOURNAL_MAX_DISKS 64

/* ---- small helpers ---- */

void snapstore_id_text(uint64_t id, char *buf)
{
	snprintf(buf, SNAP_ID_DIGITS + 1, "%016" PRIx64, id);
}

static char *id_path(const struct snapstore *st, const char *prefix, uint64_t id)
{
	char t[SNAP_ID_DIGITS + 1];

	snapstore_id_text(id, t);
	return xasprintf("%s/%s%s", st->dir, prefix, t);
}

char *snapstore_path(const struct snapstore *st, uint64_t id)
{
	return id_path(st, "", id);
}

/* 16 lowercase hex digits, not all zero. */
static int parse_id(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (strlen(s) != SNAP_ID_DIGITS)
		return -1;
	for (int i = 0; i < SNAP_ID_DIGITS; i++) {
		char c = s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return -1;
		v = v << 4 | d;
	}
	if (v == 0)
		return -1;
	*out = v;
	return 0;
}

/* An ID, or "-" for none (0). */
static int parse_opt_id(const char *s, uint64_t *out)
{
	if (strcmp(s, "-") == 0) {
		*out = 0;
		return 0;
	}
	return parse_id(s, out);
}

static int fsync_dir(const char *dir, struct tv_err *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return tv_errno(err, "cannot open %s", dir);
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return tv_errno(err, "cannot sync %s", dir);
	}
	close(fd);
	return 0;
}

/* dir/name replaced atomically by buf: dir/tmpname written and fsynced, renamed,
 * dir fsynced. */
static int write_atomic(const char *dir, const char *name, const char *tmpname, const char *buf,
			size_t len, struct tv_err *err)
{
	char *tmp = xasprintf("%s/%s", dir, tmpname), *path = xasprintf("%s/%s", dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = -1;

	if (fd < 0) {
		tv_errno(err, "cannot create %s", tmp);
		goto out;
	}
	if (write_full(fd, buf, len) < 0 || fsync(fd) < 0) {
		tv_errno(err, "cannot write %s", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		tv_errno(err, "cannot rename %s to %s", tmp, path);
		unlink(tmp);
		goto out;
	}
	rc = fsync_dir(dir, err);
out:
	free(tmp);
	free(path);
	return rc;
}

/* The whole file, NUL-terminated, at most max bytes; *len without the NUL.
 * ENOENT is returned as -1 with errno kept, for callers that allow absence. */
static char *read_small_file(const char *path, size_t max, size_t *len, struct tv_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	char *buf;

	if (fd < 0) {
		tv_errno(err, "cannot open %s", path);
		return NULL;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		tv_errf(err, "%s: not a regular file", path);
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if ((uint64_t)sb.st_size > max) {
		tv_errf(err, "%s: %lld bytes, more than the %zu a snapshot file may have", path,
			(long long)sb.st_size, max);
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	ssize_t n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n < 0 || n != sb.st_size) {
		tv_errf(err, "%s: short read", path);
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[n] = 0;
	*len = (size_t)n;
	return buf;
}

/* %XX for bytes below 0x21, '%' and 0x7f: values hold no space or newline. */
static void put_escaped(char **buf, size_t *len, size_t *cap, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[4];
		size_t n;
		if (c < 0x21 || c == '%' || c == 0x7f) {
			snprintf(tmp, sizeof(tmp), "%%%02X", c);
			n = 3;
		} else {
			tmp[0] = (char)c;
			n = 1;
		}
		if (*len + n + 1 > *cap) {
			*cap = *cap * 2 + n + 64;
			*buf = xrealloc(*buf, *cap);
		}
		memcpy(*buf + *len, tmp, n);
		*len += n;
		(*buf)[*len] = 0;
	}
}

static void put_text(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void put_text(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (*len + (size_t)n + 1 > *cap) {
		*cap = *cap * 2 + (size_t)n + 64;
		*buf = xrealloc(*buf, *cap);
	}
	va_start(ap, fmt);
	vsnprintf(*buf + *len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*len += (size_t)n;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX in place; -1 on a malformed escape or an escaped NUL. */
static int unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			return -1;
		*w++ = (char)(hi << 4 | lo);
		r += 2;
	}
	*w = 0;
	return 0;
}

int snapstore_tag_check(const char *tag, struct tv_err *err)
{
	return name_check("snapshot tag", tag, SNAP_TAG_MAX, err);
}

/* ---- the index ---- */

static void records_free(struct snap_record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(recs[i].description);
	free(recs);
}

struct index_data {
	struct snap_record *recs;
	size_t nrecs;
	uint64_t next_id, here, pending;
};

static int index_err(struct tv_err *err, const char *file, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int index_err(struct tv_err *err, const char *file, unsigned line, const char *fmt, ...)
{
	char msg[TV_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return tv_errf(err, "%s:%u: %s", file, line, msg);
}

static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "yes") == 0)
		*out = true;
	else if (strcmp(v, "no") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

/* The fields of a snapshot line; on failure r->description may be left set. */
static int parse_fields(char *s, struct snap_record *r, const char *file, unsigned line,
			struct tv_err *err)
{
	enum { K_ID, K_PARENT, K_CREATED, K_MEMORY, K_AUTO, K_TAG, K_DESC, K_N };
	static const char *const keys[K_N] = {"id",	    "parent", "created",    "memory",
					      "automatic", "tag",    "description"};
	bool seen[K_N] = {0};
	char *save = NULL;

	memset(r, 0, sizeof(*r));
	for (char *tok = strtok_r(s, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		int k;
		if (eq == NULL)
			return index_err(err, file, line, "'%.40s': expected key=value", tok);
		*eq = 0;
		char *v = eq + 1;
		for (k = 0; k < K_N && strcmp(tok, keys[k]) != 0; k++)
			;
		if (k == K_N)
			continue; /* a field a later version 1 writer added */
		if (seen[k])
			return index_err(err, file, line, "%s: given twice", keys[k]);
		seen[k] = true;
		if (unescape(v) < 0)
			return index_err(err, file, line, "%s: malformed %%XX escape", keys[k]);
		switch (k) {
		case K_ID:
			if (parse_id(v, &r->id) < 0)
				return index_err(err, file, line,
						 "id: '%.40s' is not 16 hex digits (not all 0)", v);
			break;
		case K_PARENT:
			if (parse_opt_id(v, &r->parent) < 0)
				return index_err(err, file, line,
						 "parent: '%.40s' is neither an id nor '-'", v);
			break;
		case K_CREATED: {
			char *end;
			errno = 0;
			long long t = strtoll(v, &end, 10);
			if (errno || *end || end == v || t < 0)
				return index_err(err, file, line,
						 "created: '%.40s' is not a time in seconds", v);
			r->created = t;
			break;
		}
		case K_MEMORY:
		case K_AUTO:
			if (parse_bool(v, k == K_MEMORY ? &r->memory : &r->automatic) < 0)
				return index_err(err, file, line, "%s: '%.40s' is not yes or no",
						 keys[k], v);
			break;
		case K_TAG: {
			struct tv_err te;
			if (snapstore_tag_check(v, &te) < 0)
				return index_err(err, file, line, "tag: %s", te.msg);
			strcpy(r->tag, v);
			break;
		}
		case K_DESC:
			if (strlen(v) > SNAP_DESC_MAX)
				return index_err(err, file, line,
						 "description: longer than %d bytes", SNAP_DESC_MAX);
			r->description = xstrdup(v);
			break;
		}
	}
	for (int k = 0; k < K_N; k++)
		if (!seen[k] && k != K_DESC)
			return index_err(err, file, line, "snapshot: the field %s is missing",
					 keys[k]);
	if (r->description == NULL)
		r->description = xstrdup("");
	if (r->parent >= r->id)
		return index_err(err, file, line,
				 "parent: a parent is older than its child, so its id is smaller");
	return 0;
}

/* One "snapshot k=v ..." line (after the keyword), modified in place. */
static int parse_record(char *s, struct snap_record *r, const char *file, unsigned line,
			struct tv_err *err)
{
	if (parse_fields(s, r, file, line, err) == 0)
		return 0;
	free(r->description);
	r->description = NULL;
	return -1;
}

static const struct snap_record *find_id(const struct snap_record *recs, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (recs[i].id == id)
			return &recs[i];
	return NULL;
}

/* The whole tree, checked: unique ids and tags, parents and here present. */
static int parse_index(char *buf, size_t len, const char *file, struct index_data *d,
		       struct tv_err *err)
{
	unsigned line = 0, here_line = 0, pending_line = 0;
	bool have_next = false, have_here = false, have_pending = false, have_sum = false;
	char *p = buf, *end = buf + len;
	uLong sum = crc32(0L, Z_NULL, 0);
	size_t cap = 0;

	memset(d, 0, sizeof(*d));
	if (memchr(buf, 0, len) != NULL)
		return tv_errf(err, "%s: holds a NUL byte; not a snapshot index", file);
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *l = p;
		if (nl == NULL) {
			index_err(err, file, line + 1, "the last line has no newline (cut short?)");
			goto fail;
		}
		/* The checksum covers every byte before its own line. */
		if (strncmp(l, "checksum ", 9) != 0)
			sum = crc32(sum, (const Bytef *)l, (uInt)(nl + 1 - l));
		*nl = 0;
		p = nl + 1;
		line++;
		if (have_sum) {
			index_err(err, file, line, "text after the checksum line");
			goto fail;
		}
		char *sp = strchr(l, ' ');
		char *val = sp ? sp + 1 : (char *)"";
		if (sp)
			*sp = 0;
		if (line == 1) {
			char *e;
			if (strcmp(l, INDEX_MAGIC) != 0) {
				index_err(err, file, line, "not a snapshot index (expected '%s 1')",
					  INDEX_MAGIC);
				goto fail;
			}
			unsigned long v = strtoul(val, &e, 10);
			if (*e || e == val || v == 0) {
				index_err(err, file, line, "version: '%.20s' is not a number", val);
				goto fail;
			}
			if (v > SNAP_INDEX_VERSION) {
				index_err(err, file, line,
					  "version %lu is newer than this termvisor reads (%d)", v,
					  SNAP_INDEX_VERSION);
				goto fail;
			}
			continue;
		}
		if (strcmp(l, "checksum") == 0) {
			uLong want = sum;
			char *e;
			errno = 0;
			unsigned long got = strtoul(val, &e, 16);
			if (strlen(val) != 8 || *e || errno) {
				index_err(err, file, line, "checksum: '%.20s' is not 8 hex digits",
					  val);
				goto fail;
			}
			if (got != want) {
				index_err(err, file, line,
					  "checksum: the file says %08lx, its contents give %08lx "
					  "(changed by hand or damaged)",
					  got, (unsigned long)want);
				goto fail;
			}
			have_sum = true;
		} else if (strcmp(l, "next") == 0) {
			if (have_next || parse_id(val, &d->next_id) < 0) {
				index_err(err, file, line, "next: expected one id (16 hex digits)");
				goto fail;
			}
			have_next = true;
		} else if (strcmp(l, "here") == 0) {
			if (have_here || parse_opt_id(val, &d->here) < 0) {
				index_err(err, file, line, "here: expected one id or '-'");
				goto fail;
			}
			have_here = true;
			here_line = line;
		} else if (strcmp(l, "pending-restore") == 0) {
			if (have_pending || parse_opt_id(val, &d->pending) < 0) {
				index_err(err, file, line, "pending-restore: expected one id or '-'");
				goto fail;
			}
			have_pending = true;
			pending_line = line;
		} else if (strcmp(l, "snapshot") == 0) {
			struct snap_record r;
			if (parse_record(val, &r, file, line, err) < 0)
				goto fail;
			if (find_id(d->recs, d->nrecs, r.id) != NULL || r.id >= d->next_id ||
			    !have_next) {
				free(r.description);
				index_err(err, file, line,
					  "id: %016" PRIx64 " is used twice or not below next", r.id);
				goto fail;
			}
			for (size_t i = 0; i < d->nrecs; i++)
				if (strcmp(d->recs[i].tag, r.tag) == 0) {
					free(r.description);
					index_err(err, file, line, "tag: '%s' is used twice", r.tag);
					goto fail;
				}
			if (d->nrecs == cap) {
				cap = cap ? cap * 2 : 8;
				d->recs = xreallocarray(d->recs, cap, sizeof(*d->recs));
			}
			d->recs[d->nrecs++] = r;
		} else {
			index_err(err, file, line, "unknown line '%.40s'", l);
			goto fail;
		}
	}
	if (line == 0) {
		tv_errf(err, "%s: empty; not a snapshot index", file);
		goto fail;
	}
	if (!have_sum || !have_next) {
		index_err(err, file, line, "the %s line is missing (cut short?)",
			  have_sum ? "next" : "checksum");
		goto fail;
	}
	for (size_t i = 0; i < d->nrecs; i++)
		if (d->recs[i].parent && find_id(d->recs, d->nrecs, d->recs[i].parent) == NULL) {
			tv_errf(err, "%s: snapshot '%s': its parent %016" PRIx64 " is not in the index",
				file, d->recs[i].tag, d->recs[i].parent);
			goto fail;
		}
	if (d->here && find_id(d->recs, d->nrecs, d->here) == NULL) {
		index_err(err, file, here_line, "here: no snapshot has that id");
		goto fail;
	}
	if (d->pending && find_id(d->recs, d->nrecs, d->pending) == NULL) {
		index_err(err, file, pending_line, "pending-restore: no snapshot has that id");
		goto fail;
	}
	return 0;
fail:
	records_free(d->recs, d->nrecs);
	memset(d, 0, sizeof(*d));
	return -1;
}

static int read_index(struct snapstore *st, struct tv_err *err)
{
	char *file = xasprintf("%s/%s", st->dir, INDEX_FILE);
	struct index_data d = {.next_id = 1};
	size_t len;
	char *buf = read_small_file(file, INDEX_MAX_BYTES, &len, err);

	if (buf == NULL && errno != ENOENT) {
		free(file);
		return -1;
	}
	if (buf != NULL && parse_index(buf, len, file, &d, err) < 0) {
		free(buf);
		free(file);
		return -1;
	}
	free(buf);
	free(file);
	records_free(st->recs, st->nrecs);
	st->recs = d.recs;
	st->nrecs = d.nrecs;
	st->next_id = d.next_id;
	st->here = d.here;
	st->pending_restore = d.pending;
	return 0;
}

static void put_id_line(char **buf, size_t *len, size_t *cap, const char *key, uint64_t id)
{
	if (id == 0)
		put_text(buf, len, cap, "%s -\n", key);
	else
		put_text(buf, len, cap, "%s %016" PRIx64 "\n", key, id);
}

static int write_index(struct snapstore *st, struct tv_err *err)
{
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	int rc;

	buf[0] = 0;
	put_text(&buf, &len, &cap, "%s %d\n", INDEX_MAGIC, SNAP_INDEX_VERSION);
	put_id_line(&buf, &len, &cap, "next", st->next_id);
	put_id_line(&buf, &len, &cap, "here", st->here);
	put_id_line(&buf, &len, &cap, "pending-restore", st->pending_restore);
	for (size_t i = 0; i < st->nrecs; i++) {
		const struct snap_record *r = &st->recs[i];
		char parent[SNAP_ID_DIGITS + 1] = "-";
		if (r->parent)
			snapstore_id_text(r->parent, parent);
		put_text(&buf, &len, &cap,
			 "snapshot id=%016" PRIx64 " parent=%s created=%lld memory=%s automatic=%s tag=",
			 r->id, parent, (long long)r->created, r->memory ? "yes" : "no",
			 r->automatic ? "yes" : "no");
		put_escaped(&buf, &len, &cap, r->tag);
		put_text(&buf, &len, &cap, " description=");
		put_escaped(&buf, &len, &cap, r->description);
		put_text(&buf, &len, &cap, "\n");
	}
	uLong sum = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)buf, (uInt)len);
	put_text(&buf, &len, &cap, "checksum %08lx\n", (unsigned long)sum);
	rc = write_atomic(st->dir, INDEX_FILE, INDEX_TMP, buf, len, err);
	free(buf);
	return rc;
}

/* ---- journals and recovery ---- */

/* new_tag: a rename in progress (NULL otherwise). */
static int write_journal(const char *dir, const char *tag, const char *new_tag,
			 char *const *disks, size_t ndisks, struct tv_err *err)
{
	size_t len = 0, cap = 256;
	char *buf = xmalloc(cap);
	int rc;

	buf[0] = 0;
	put_text(&buf, &len, &cap, "%s %d\ntag ", JOURNAL_MAGIC, SNAP_JOURNAL_VERSION);
	put_escaped(&buf, &len, &cap, tag);
	put_text(&buf, &len, &cap, "\n");
	if (new_tag) {
		put_text(&buf, &len, &cap, "new ");
		put_escaped(&buf, &len, &cap, new_tag);
		put_text(&buf, &len, &cap, "\n");
	}
	for (size_t i = 0; i < ndisks; i++) {
		put_text(&buf, &len, &cap, "disk ");
		put_escaped(&buf, &len, &cap, disks[i]);
		put_text(&buf, &len, &cap, "\n");
	}
	rc = write_atomic(dir, JOURNAL_FILE, JOURNAL_TMP, buf, len, err);
	free(buf);
	return rc;
}

struct journal {
	char tag[SNAP_TAG_MAX + 1];
	char new_tag[SNAP_TAG_MAX + 1]; /* "" unless a rename */
	char *disks[JOURNAL_MAX_DISKS];
	size_t ndisks;
};

static void journal_free(struct journal *j)
{
	for (size_t i = 0; i < j->ndisks; i++)
		free(j->disks[i]);
	j->ndisks = 0;
}

/* 1: a journal was read; 0: there is none (the disks were never touched). */
static int read_journal(const char *dir, struct journal *j, struct tv_err *err)
{
	char *file = xasprintf("%s/%s", dir, JOURNAL_FILE);
	size_t len;
	char *buf = read_small_file(file, JOURNAL_MAX_BYTES, &len, err), *save = NULL;
	unsigned line = 0;
	int rc = -1;

	memset(j, 0, sizeof(*j));
	if (buf == NULL) {
		free(file);
		return errno == ENOENT ? 0 : -1;
	}
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' ');
		line++;
		if (sp == NULL) {
			index_err(err, file, line, "expected a key and a value");
			goto out;
		}
		*sp++ = 0;
		if (line == 1) {
			if (strcmp(l, JOURNAL_MAGIC) != 0 || strcmp(sp, "1") != 0) {
				index_err(err, file, line, "not a version %d snapshot journal",
					  SNAP_JOURNAL_VERSION);
				goto out;
			}
		} else if (strcmp(l, "tag") == 0) {
			if (unescape(sp) < 0 || snapstore_tag_check(sp, NULL) < 0) {
				index_err(err, file, line, "tag: not a snapshot tag");
				goto out;
			}
			strcpy(j->tag, sp);
		} else if (strcmp(l, "new") == 0) {
			if (unescape(sp) < 0 || snapstore_tag_check(sp, NULL) < 0) {
				index_err(err, file, line, "new: not a snapshot tag");
				goto out;
			}
			strcpy(j->new_tag, sp);
		} else if (strcmp(l, "disk") == 0) {
			if (unescape(sp) < 0 || sp[0] != '/' || j->ndisks == JOURNAL_MAX_DISKS) {
				index_err(err, file, line, "disk: not an absolute path");
				goto out;
			}
			j->disks[j->ndisks++] = xstrdup(sp);
		} else {
			index_err(err, file, line, "unknown line '%.40s'", l);
			goto out;
		}
	}
	if (j->tag[0] == 0) {
		tv_errf(err, "%s: no tag line", file);
		goto out;
	}
	rc = 1;
out:
	if (rc < 0)
		journal_free(j);
	free(buf);
	free(file);
	return rc;
}

/* The default disk ops: on a stopped VM's image, opened here, the internal
 * snapshot tag is deleted (new_tag NULL) or renamed to new_tag. An image
 * without that snapshot, or no image at all, is left as it is. */
static int disk_file_op(const char *disk, const char *tag, const char *new_tag,
			struct tv_err *err)
{
	struct blk_snapshot *list = NULL;
	struct blk *b;
	int n = 0, rc = 0;

	if (access(disk, F_OK) < 0 && errno == ENOENT)
		return 0;
	if (blk_open(&b, disk, "qcow2", 0, err) < 0)
		return -1;
	if (blk_snapshot_list(b, &list, &n, err) < 0) {
		blk_close(b, NULL);
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (strcmp(list[i].name, tag) == 0) {
			rc = new_tag ? blk_snapshot_rename(b, tag, new_tag, err)
				     : blk_snapshot_delete(b, tag, err);
			break;
		}
	blk_snapshot_list_free(list, n);
	if (blk_close(b, rc < 0 ? NULL : err) < 0)
		rc = -1;
	return rc;
}

static int rename_disks(struct snapstore *st, const char *tag, const char *new_tag,
			char *const *disks, size_t ndisks, struct tv_err *err)
{
	for (size_t i = 0; i < ndisks; i++) {
		int rc = st->disk_ops.rename
				 ? st->disk_ops.rename(st->disk_ops.ctx, disks[i], tag, new_tag, err)
				 : disk_file_op(disks[i], tag, new_tag, err);
		if (rc < 0)
			return tv_err_prefix(err, "renaming disk snapshot '%s' to '%s': ", tag,
					     new_tag);
	}
	return 0;
}

static int drop_disks(struct snapstore *st, const char *tag, char *const *disks, size_t ndisks,
		      struct tv_err *err)
{
	for (size_t i = 0; i < ndisks; i++) {
		int rc = st->disk_ops.drop ? st->disk_ops.drop(st->disk_ops.ctx, disks[i], tag, err)
					   : disk_file_op(disks[i], tag, NULL, err);
		if (rc < 0)
			return tv_err_prefix(err, "dropping disk snapshot '%s': ", tag);
	}
	return 0;
}

/* A snapshot directory that is not (or no longer) in the index: what its
 * journal names on the disks goes first, then the directory. */
static int discard_dir(struct snapstore *st, const char *dir, struct tv_err *err)
{
	struct journal j;
	int rc = read_journal(dir, &j, err);

	if (rc < 0)
		return tv_err_prefix(err, "cannot recover %s: ", dir);
	if (rc == 1) {
		rc = drop_disks(st, j.tag, j.disks, j.ndisks, err);
		if (rc == 0 && j.new_tag[0])
			rc = drop_disks(st, j.new_tag, j.disks, j.ndisks, err);
		journal_free(&j);
		if (rc < 0)
			return tv_err_prefix(err, "cannot recover %s: ", dir);
	}
	if (remove_tree(dir) < 0)
		return tv_errno(err, "cannot remove %s", dir);
	return 0;
}

static int write_index(struct snapstore *st, struct tv_err *err);

/* A committed snapshot whose rename was cut short: finished (roll forward).
 * Its journal went in before any disk was renamed. */
static int finish_rename(struct snapstore *st, uint64_t id, struct tv_err *err)
{
	char *dir = snapstore_path(st, id), *file = xasprintf("%s/%s", dir, JOURNAL_FILE);
	struct snap_record *r = (struct snap_record *)snapstore_get(st, id);
	struct journal j;
	int rc = read_journal(dir, &j, err);

	if (rc <= 0 || j.new_tag[0] == 0) {
		/* None, or the take's own journal left by a commit cut short. */
		if (rc == 1)
			journal_free(&j);
		if (rc == 1)
			unlink(file);
		goto out;
	}
	rc = rename_disks(st, j.tag, j.new_tag, j.disks, j.ndisks, err);
	if (rc == 0 && strcmp(r->tag, j.tag) == 0 && snapstore_find(st, j.new_tag) == NULL) {
		strcpy(r->tag, j.new_tag);
		rc = write_index(st, err);
	}
	journal_free(&j);
	if (rc == 0 && unlink(file) < 0)
		rc = tv_errno(err, "cannot remove %s", file);
out:
	if (rc < 0)
		tv_err_prefix(err, "cannot finish the rename in %s: ", dir);
	free(file);
	free(dir);
	return rc < 0 ? -1 : 0;
}

/* Under the lock, with the index just read: whatever a dead writer left. */
static int recover(struct snapstore *st, struct tv_err *err)
{
	DIR *d = opendir(st->dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return tv_errno(err, "cannot read %s", st->dir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		bool tmp = strncmp(n, TMP_PREFIX, strlen(TMP_PREFIX)) == 0;
		uint64_t id;
		if (parse_id(tmp ? n + strlen(TMP_PREFIX) : n, &id) < 0) {
			if (strcmp(n, INDEX_TMP) == 0) {
				char *p = xasprintf("%s/%s", st->dir, n);
				unlink(p);
				free(p);
			}
			continue;
		}
		if (!tmp && snapstore_get(st, id) != NULL) {
			char *j = xasprintf("%s/%s/%s", st->dir, n, JOURNAL_FILE);
			bool journaled = access(j, F_OK) == 0;
			free(j);
			if (journaled && (rc = finish_rename(st, id, err)) == 0)
				rewinddir(d);
			continue;
		}
		char *p = xasprintf("%s/%s", st->dir, n);
		rc = discard_dir(st, p, err);
		free(p);
		if (rc == 0)
			rewinddir(d); /* the directory changed under readdir */
	}
	closedir(d);
	if (rc == 0)
		rc = fsync_dir(st->dir, err);
	return rc;
}

/* ---- open, lock ---- */

int snapstore_open(struct snapstore *st, const char *vm_datadir, int flags,
		   const struct snapstore_disk_ops *ops, struct tv_err *err)
{
	memset(st, 0, sizeof(*st));
	st->lock_fd = -1;
	st->next_id = 1;
	st->dir = xasprintf("%s/snapshots", vm_datadir);
	if (ops)
		st->disk_ops = *ops;
	if (flags & SNAPSTORE_LOCK) {
		if (mkdir(st->dir, 0755) < 0 && errno != EEXIST) {
			tv_errno(err, "cannot create %s", st->dir);
			goto fail;
		}
		if (snapstore_lock(st, flags & SNAPSTORE_NOWAIT, err) < 0)
			goto fail;
		return 0;
	}
	if (read_index(st, err) == 0)
		return 0;
fail:
	snapstore_close(st);
	return -1;
}

void snapstore_close(struct snapstore *st)
{
	snapstore_unlock(st);
	records_free(st->recs, st->nrecs);
	st->recs = NULL;
	st->nrecs = 0;
	free(st->dir);
	st->dir = NULL;
}

int snapstore_reload(struct snapstore *st, struct tv_err *err)
{
	return read_index(st, err);
}

int snapstore_lock(struct snapstore *st, bool nowait, struct tv_err *err)
{
	char *path = xasprintf("%s/%s", st->dir, LOCK_FILE);
	int fd;

	if (st->lock_fd >= 0) {
		free(path);
		return 0;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		tv_errno(err, "cannot open %s", path);
		free(path);
		return -1;
	}
	while (flock(fd, LOCK_EX | (nowait ? LOCK_NB : 0)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK)
			tv_errf(err, "the snapshots in %s are being changed by another process",
				st->dir);
		else
			tv_errno(err, "cannot lock %s", path);
		close(fd);
		free(path);
		return -1;
	}
	free(path);
	st->lock_fd = fd;
	if (read_index(st, err) < 0 || recover(st, err) < 0) {
		snapstore_unlock(st);
		return -1;
	}
	return 0;
}

void snapstore_unlock(struct snapstore *st)
{
	if (st->lock_fd >= 0) {
		close(st->lock_fd); /* releases the flock */
		st->lock_fd = -1;
	}
}

static int need_lock(const struct snapstore *st, struct tv_err *err)
{
	if (st->lock_fd < 0)
		return tv_errf(err, "%s: changed without its lock (a bug)", st->dir);
	return 0;
}

/* ---- lookups ---- */

const struct snap_record *snapstore_find(const struct snapstore *st, const char *tag)
{
	for (size_t i = 0; i < st->nrecs; i++)
		if (strcmp(st->recs[i].tag, tag) == 0)
			return &st->recs[i];
	return NULL;
}

const struct snap_record *snapstore_get(const struct snapstore *st, uint64_t id)
{
	return id ? find_id(st->recs, st->nrecs, id) : NULL;
}

size_t snapstore_children(const struct snapstore *st, uint64_t id, const struct snap_record **out,
			  size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < st->nrecs; i++)
		if (st->recs[i].parent == id) {
			if (n < max)
				out[n] = &st->recs[i];
			n++;
		}
	return n;
}

void snapstore_propose_tag(const struct snapstore *st, const char *prefix, char *buf, size_t len)
{
	size_t plen = strlen(prefix);
	unsigned long long top = 0;

	for (size_t i = 0; i < st->nrecs; i++) {
		const char *t = st->recs[i].tag, *d = t + plen + 1;
		char *end;
		if (strncmp(t, prefix, plen) != 0 || t[plen] != '-' || *d < '1' || *d > '9')
			continue;
		errno = 0;
		unsigned long long v = strtoull(d, &end, 10);
		if (*end == 0 && errno == 0 && v > top)
			top = v;
	}
	snprintf(buf, len, "%s-%llu", prefix, top + 1);
}

/* ---- take ---- */

int snapstore_begin(struct snapstore *st, const char *tag, const char *description, bool memory,
		    bool automatic, const char *const *disks, size_t ndisks, struct snap_txn *t,
		    struct tv_err *err)
{
	memset(t, 0, sizeof(*t));
	if (need_lock(st, err) < 0 || snapstore_tag_check(tag, err) < 0)
		return -1;
	if (snapstore_find(st, tag) != NULL)
		return tv_errf(err, "a snapshot named '%s' already exists", tag);
	if (description && strlen(description) > SNAP_DESC_MAX)
		return tv_errf(err, "the description is longer than %d bytes", SNAP_DESC_MAX);
	if (ndisks > JOURNAL_MAX_DISKS)
		return tv_errf(err, "%zu disks: a snapshot covers at most %d", ndisks,
			       JOURNAL_MAX_DISKS);
	for (size_t i = 0; i < ndisks; i++)
		if (disks[i][0] != '/' || strchr(disks[i], '\n'))
			return tv_errf(err, "disk '%s': expected an absolute path", disks[i]);
	if (st->next_id == UINT64_MAX)
		return tv_errf(err, "%s: no ids left", st->dir);

	t->st = st;
	t->rec.id = st->next_id;
	t->rec.parent = st->here;
	strcpy(t->rec.tag, tag);
	t->rec.description = xstrdup(description ? description : "");
	t->rec.created = (int64_t)time(NULL);
	t->rec.memory = memory;
	t->rec.automatic = automatic;
	t->disks = xcalloc(ndisks ? ndisks : 1, sizeof(char *));
	for (size_t i = 0; i < ndisks; i++)
		t->disks[i] = xstrdup(disks[i]);
	t->ndisks = ndisks;
	t->dir = id_path(st, TMP_PREFIX, t->rec.id);
	if (mkdir(t->dir, 0755) < 0) {
		tv_errno(err, "cannot create %s", t->dir);
		goto fail;
	}
	if (fsync_dir(st->dir, err) < 0 || write_journal(t->dir, tag, NULL, t->disks, ndisks, err) < 0) {
		remove_tree(t->dir);
		goto fail;
	}
	return 0;
fail:
	free(t->dir);
	t->dir = NULL;
	snapstore_abort(t);
	return -1;
}

static void txn_free(struct snap_txn *t)
{
	for (size_t i = 0; i < t->ndisks; i++)
		free(t->disks[i]);
	free(t->disks);
	free(t->rec.description);
	free(t->dir);
	memset(t, 0, sizeof(*t));
}

int snapstore_commit(struct snap_txn *t, struct tv_err *err)
{
	struct snapstore *st = t->st;
	char *final;
	uint64_t here = st->here, pending = st->pending_restore, next = st->next_id;

	if (t->dir == NULL || need_lock(st, err) < 0)
		return tv_errf(err, "no snapshot is being taken");
	final = snapstore_path(st, t->rec.id);
	if (rename(t->dir, final) < 0) {
		tv_errno(err, "cannot rename %s to %s", t->dir, final);
		free(final);
		return -1;
	}
	if (fsync_dir(st->dir, err) < 0)
		goto undo;
	st->recs = xreallocarray(st->recs, st->nrecs + 1, sizeof(*st->recs));
	st->recs[st->nrecs] = t->rec;
	st->recs[st->nrecs].description = xstrdup(t->rec.description);
	st->nrecs++;
	st->here = t->rec.id;
	st->pending_restore = 0;
	st->next_id = t->rec.id + 1;
	if (write_index(st, err) < 0) {
		st->nrecs--;
		free(st->recs[st->nrecs].description);
		st->here = here;
		st->pending_restore = pending;
		st->next_id = next;
		goto undo;
	}
	/* Committed. The journal is no longer needed (a delete writes its own). */
	char *j = xasprintf("%s/%s", final, JOURNAL_FILE);
	unlink(j);
	free(j);
	free(final);
	txn_free(t);
	return 0;
undo:
	/* Back to .tmp-ID so that abort (or the next recovery) removes it. */
	rename(final, t->dir);
	free(final);
	return -1;
}

void snapstore_abort(struct snap_txn *t)
{
	struct tv_err err;

	if (t->dir != NULL && t->st != NULL) {
		/* A failure leaves the directory to the next recovery. */
		discard_dir(t->st, t->dir, &err);
	}
	txn_free(t);
}

/* ---- changes to committed snapshots ---- */

int snapstore_set_here(struct snapstore *st, uint64_t id, bool pending, struct tv_err *err)
{
	uint64_t here = st->here, pend = st->pending_restore;

	if (need_lock(st, err) < 0)
		return -1;
	if (id && snapstore_get(st, id) == NULL)
		return tv_errf(err, "%s: no snapshot has the id %016" PRIx64, st->dir, id);
	st->here = id;
	st->pending_restore = pending ? id : 0;
	if (write_index(st, err) < 0) {
		st->here = here;
		st->pending_restore = pend;
		return -1;
	}
	return 0;
}

static struct snap_record *find_mut(struct snapstore *st, const char *tag, struct tv_err *err)
{
	for (size_t i = 0; i < st->nrecs; i++)
		if (strcmp(st->recs[i].tag, tag) == 0)
			return &st->recs[i];
	tv_errf(err, "no snapshot named '%s'", tag);
	return NULL;
}

/* 1: rename tag to new_tag (*rp is its record); 0: nothing to do; -1: refused. */
static int rename_check(struct snapstore *st, const char *tag, const char *new_tag,
			struct snap_record **rp, struct tv_err *err)
{
	if (need_lock(st, err) < 0 || (*rp = find_mut(st, tag, err)) == NULL ||
	    snapstore_tag_check(new_tag, err) < 0)
		return -1;
	if (strcmp(tag, new_tag) == 0)
		return 0;
	if (snapstore_find(st, new_tag) != NULL)
		return tv_errf(err, "a snapshot named '%s' already exists", new_tag);
	return 1;
}

int snapstore_rename(struct snapstore *st, const char *tag, const char *new_tag,
		     struct tv_err *err)
{
	struct snap_record *r;
	char old[SNAP_TAG_MAX + 1];
	int rc = rename_check(st, tag, new_tag, &r, err);

	if (rc <= 0)
		return rc;
	strcpy(old, r->tag);
	strcpy(r->tag, new_tag);
	if (write_index(st, err) < 0) {
		strcpy(r->tag, old);
		return -1;
	}
	return 0;
}

int snapstore_rename_disks(struct snapstore *st, const char *tag, const char *new_tag,
			   const char *const *disks, size_t ndisks, struct tv_err *err)
{
	struct snap_record *r;
	char *dir, *file;
	int rc = rename_check(st, tag, new_tag, &r, err);

	if (rc <= 0)
		return rc;
	if (ndisks > JOURNAL_MAX_DISKS)
		return tv_errf(err, "%zu disks: a snapshot covers at most %d", ndisks,
			       JOURNAL_MAX_DISKS);
	dir = snapstore_path(st, r->id);
	file = xasprintf("%s/%s", dir, JOURNAL_FILE);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		rc = tv_errno(err, "cannot create %s", dir);
	else
		rc = write_journal(dir, tag, new_tag, (char *const *)disks, ndisks, err);
	if (rc == 0 && rename_disks(st, tag, new_tag, (char *const *)disks, ndisks, err) < 0) {
		/* Back as it was, so the journal can go. */
		struct tv_err e2;
		if (rename_disks(st, new_tag, tag, (char *const *)disks, ndisks, &e2) == 0)
			unlink(file);
		rc = -1;
	}
	if (rc == 0)
		rc = snapstore_rename(st, tag, new_tag, err);
	if (rc == 0)
		unlink(file); /* left, the next lock would find the rename done */
	free(file);
	free(dir);
	return rc;
}

static char *memory_path(const struct snapstore *st, uint64_t id)
{
	char t[SNAP_ID_DIGITS + 1];

	snapstore_id_text(id, t);
	return xasprintf("%s/%s/%s", st->dir, t, SNAP_MEMORY_FILE);
}

/* Every memory image layered on r's (its children's, normally) is rewritten
 * to hold what it took from r's, so it stays whole without it. Done before
 * the delete's commit point: a rewritten image is whole with or without r. */
static int unparent_dependents(struct snapstore *st, const struct snap_record *r,
			       struct tv_err *err)
{
	struct memimg_info mine, info;
	char rel[SNAP_ID_DIGITS + 16];
	char *path;
	bool have_id;
	int rc = 0;

	if (!r->memory)
		return 0;
	path = memory_path(st, r->id);
	have_id = memimg_info(path, &mine, NULL) == 0;
	free(path);
	snprintf(rel, sizeof(rel), "../%016" PRIx64 "/%s", r->id, SNAP_MEMORY_FILE);
	for (size_t i = 0; i < st->nrecs && rc == 0; i++) {
		const struct snap_record *o = &st->recs[i];
		if (o == r || !o->memory)
			continue;
		path = memory_path(st, o->id);
		if (access(path, F_OK) == 0) {
			rc = memimg_info(path, &info, err);
			if (rc == 0 && info.has_parent &&
			    ((have_id && memcmp(info.parent_id, mine.id, MEMIMG_ID_LEN) == 0) ||
			     strcmp(info.parent, rel) == 0))
				rc = memimg_unparent(path, err);
			if (rc < 0)
				tv_err_prefix(err,
					      "snapshot '%s' is not deleted: the memory of '%s', "
					      "built on it, cannot be made whole without it: ",
					      r->tag, o->tag);
		}
		free(path);
	}
	return rc;
}

int snapstore_delete(struct snapstore *st, const char *tag, const char *const *disks,
		     size_t ndisks, struct tv_err *err)
{
	struct snap_record *r;
	char *dir, *tmp, name[SNAP_TAG_MAX + 1];
	int rc = -1;

	if (need_lock(st, err) < 0 || (r = find_mut(st, tag, err)) == NULL ||
	    unparent_dependents(st, r, err) < 0)
		return -1;
	strcpy(name, r->tag); /* tag may point into the records, which move */
	tag = name;
	if (ndisks > JOURNAL_MAX_DISKS)
		return tv_errf(err, "%zu disks: a snapshot covers at most %d", ndisks,
			       JOURNAL_MAX_DISKS);
	dir = snapstore_path(st, r->id);
	tmp = id_path(st, TMP_PREFIX, r->id);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		tv_errno(err, "cannot create %s", dir);
		goto out;
	}
	if (write_journal(dir, r->tag, NULL, (char *const *)disks, ndisks, err) < 0)
		goto out;

	/* The commit point: the index without it, its children re-parented. */
	uint64_t id = r->id, parent = r->parent;
	size_t at = (size_t)(r - st->recs);
	struct snap_record gone = *r;
	memmove(&st->recs[at], &st->recs[at + 1], (st->nrecs - at - 1) * sizeof(*st->recs));
	st->nrecs--;
	for (size_t i = 0; i < st->nrecs; i++)
		if (st->recs[i].parent == id)
			st->recs[i].parent = parent;
	if (st->here == id)
		st->here = parent;
	if (st->pending_restore == id)
		st->pending_restore = 0;
	if (write_index(st, err) < 0) {
		/* Not deleted: the tree as it is on disk again. */
		free(gone.description);
		read_index(st, NULL);
		goto out;
	}
	free(gone.description);

	/* Deleted; now its files and the disks' snapshots. */
	if (rename(dir, tmp) < 0) {
		tv_errno(err, "snapshot '%s' deleted, but cannot rename %s to %s", tag, dir, tmp);
		goto out;
	}
	rc = discard_dir(st, tmp, err);
	if (rc < 0)
		tv_err_prefix(err, "snapshot '%s' deleted, but its files stay until the next change: ",
			      tag);
out:
	free(dir);
	free(tmp);
	return rc;
}

int snapstore_prune_automatic(struct snapstore *st, unsigned keep, const char *const *disks,
			      size_t ndisks, struct tv_err *err)
{
	int deleted = 0;

	if (need_lock(st, err) < 0)
		return -1;
	for (;;) {
		const struct snap_record *oldest = NULL;
		size_t n = 0;
		for (size_t i = 0; i < st->nrecs; i++) {
			const struct snap_record *r = &st->recs[i];
			if (!r->automatic)
				continue;
			n++;
			if (r->id == st->here || r->id == st->pending_restore)
				continue;
			if (oldest == NULL || r->created < oldest->created ||
			    (r->created == oldest->created && r->id < oldest->id))
				oldest = r;
		}
		if (n <= keep || oldest == NULL)
			return deleted;
		char tag[SNAP_TAG_MAX + 1];
		strcpy(tag, oldest->tag);
		if (snapstore_delete(st, tag, disks, ndisks, err) < 0)
			return -1;
		deleted++;
	}
}

/* ---- sizes and counts ---- */

static int du_tree(const char *path, uint64_t *bytes, int depth)
{
	struct stat sb;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -1;
	*bytes += (uint64_t)sb.st_blocks * 512;
	if (!S_ISDIR(sb.st_mode) || depth > 8)
		return 0;
	DIR *d = opendir(path);
	struct dirent *de;
	int rc = 0;
	if (d == NULL)
		return -1;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *p = xasprintf("%s/%s", path, de->d_name);
		rc = du_tree(p, bytes, depth + 1);
		free(p);
	}
	closedir(d);
	return rc;
}

int snapstore_du(const struct snapstore *st, uint64_t id, uint64_t *bytes, struct tv_err *err)
{
	char *dir = snapstore_path(st, id);
	int rc;

	*bytes = 0;
	rc = du_tree(dir, bytes, 0);
	if (rc < 0)
		tv_errno(err, "cannot read %s", dir);
	free(dir);
	return rc;
}

int snapstore_count(const char *vm_datadir, struct tv_err *err)
{
	struct snapstore st;
	int n;

	if (snapstore_open(&st, vm_datadir, 0, NULL, err) < 0)
		return -1;
	n = (int)st.nrecs;
	snapstore_close(&st);
	return n;
}
