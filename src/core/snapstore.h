/* A VM's snapshot tree on disk (src/core/snapstore.c), shared by the VM
 * process (running VMs: every change goes through its control socket) and
 * the command line (stopped VMs).
 *
 *	DATA/NAME/snapshots/
 *	    index      the tree: one record per committed snapshot and the
 *	               "you are here" point; replaced atomically (write, fsync,
 *	               rename); a snapshot exists when, and only when, it is here
 *	    lock       flock()ed by whoever changes the tree
 *	    ID/        a committed snapshot (ID: 16 hex digits, never reused):
 *	               state, memory (vm/snapshot.h), console (the VM process's
 *	               console screens); a disk-only snapshot holds none of them
 *	    .tmp-ID/   being written; removed, with the disks' internal snapshots
 *	               it names in its journal, by the next open
 *
 * termvisor-snapshot(5) documents the files. */
#ifndef TV_SNAPSTORE_H
#define TV_SNAPSTORE_H

/* The files and their order of writing:
 *
 *	index      text, version 1 (termvisor-snapshot(5)):
 *	             termvisor-snapshots 1
 *	             next ID           the next ID to hand out (IDs are never reused)
 *	             here ID|-         the snapshot the current state descends from
 *	             pending-restore ID|-
 *	             snapshot id=ID parent=ID|- created=UNIX-SECONDS memory=yes|no
 *	                      automatic=yes|no tag=TAG description=TEXT
 *	             ...
 *	             checksum CRC32    (8 hex digits: zlib crc32 of every byte before
 *	                               this line)
 *	           values are %XX-escaped (bytes below 0x21, '%', 0x7f); unknown keys in
 *	           a snapshot line are ignored, a newer version is refused
 *	journal    in .tmp-ID/ (and in ID/ while it is being deleted or renamed):
 *	           what the disks may hold for it, written and fsynced before any
 *	           disk is touched:
 *	             termvisor-snapshot-journal 1
 *	             tag TAG
 *	             new TAG           (only for a rename: the new tag)
 *	             disk PATH         (one line per disk, absolute)
 *
 * Take:   lock; snapstore_begin (.tmp-ID/ and its journal); the caller writes
 *         state/memory/console into txn.dir and creates the disks' snapshots
 *         named TAG; snapstore_commit (rename .tmp-ID -> ID, fsync the
 *         directory, write the index with the record and here = ID; the index
 *         rename is the commit point; then the journal is removed).
 * Delete: lock; children's memory images made independent of it; journal into
 *         ID/; the index without it, children re-parented to its parent (here
 *         moves to its parent when it was here); rename ID -> .tmp-ID; the disks'
 *         snapshots dropped; .tmp-ID removed.
 * Recovery, each time the lock is taken (a writer holds the lock from begin
 * to commit or abort, so anything left then is from a writer that died):
 * every .tmp-ID/ and every ID/ that the index does not name has the disk
 * snapshots its journal names dropped (through snapstore_disk_ops), then is
 * removed; an ID/ the index names whose journal has a new line has its
 * rename finished (disks, then index).
 *
 * Pending restore (stopped VMs): rolling a stopped VM back to a snapshot that
 * holds memory reverts its disks and records the snapshot as here and as
 * pending-restore. The VM process, when it starts, opens the store (no lock
 * needed to read), and when pending_restore is not 0 restores the machine
 * from snapstore_path(pending_restore) (vm_snapshot_restore with the disk tag
 * NULL or the record's tag: the disks are already reverted) instead of
 * booting, then clears it with snapstore_set_here(st, id, false) under the
 * lock, whether the restore worked or not (a failed restore is reported and
 * the VM boots afresh). A take commits with pending_restore cleared.
 *
 * Size on disk (snapstore_du): the blocks allocated to the files of ID/ (state,
 * memory image, console; sparse memory images count only their data). Disk
 * clusters held only by the disks' internal snapshots are not counted: they
 * are shared with the current disk and the other snapshots, and finding what
 * one snapshot alone holds means walking every L2 table.
 *
 * Every function returns 0 (or a count) on success and -1 with err naming
 * the file (and line) on failure. Not thread-safe: one struct per user. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SNAP_INDEX_VERSION 1
#define SNAP_JOURNAL_VERSION 1
#define SNAP_TAG_MAX 64          /* tags: 1-64 of letters, digits, '-', '_', '.' */
#define SNAP_DESC_MAX 1024       /* description bytes */
#define SNAP_ID_DIGITS 16
#define SNAP_KEEP_AUTOMATIC_DEFAULT 5 /* termvisor.conf: snapshot_keep_automatic */

struct snap_record {
	uint64_t id;          /* never 0 */
	uint64_t parent;      /* 0: a root */
	char tag[SNAP_TAG_MAX + 1];
	char *description;    /* never NULL; "" when none */
	int64_t created;      /* seconds since the epoch */
	bool memory;          /* holds machine state and memory; false: disk-only */
	bool automatic;       /* taken by a rollback; pruned by snapshot_keep_automatic */
};

/* How disk snapshots are dropped on recovery, abort, delete and prune. NULL
 * (the default): open each image (blk_open, writable), delete the internal
 * snapshot named tag when it has one, close; for stopped VMs. The VM process
 * sets its own, which works on the images it has open (vm_disk_snapshot). A
 * disk that has no snapshot of that tag is not an error. */
struct snapstore_disk_ops {
	int (*drop)(void *ctx, const char *disk, const char *tag, struct tv_err *err);
	void *ctx;
	/* snapstore_rename_disks and the recovery of a rename cut short; NULL:
	 * the default (blk_snapshot_rename on the image opened here). A disk
	 * without a snapshot named tag is not an error. */
	int (*rename)(void *ctx, const char *disk, const char *tag, const char *new_tag,
		      struct tv_err *err);
};

struct snapstore {
	char *dir;                  /* DATA/NAME/snapshots */
	int lock_fd;                /* -1 unless locked */
	struct snap_record *recs;   /* in index order (ID order) */
	size_t nrecs;
	uint64_t next_id;
	uint64_t here;              /* 0: none */
	uint64_t pending_restore;   /* 0: none */
	struct snapstore_disk_ops disk_ops;
};

enum snapstore_open_flags {
	SNAPSTORE_LOCK = 1 << 0,   /* take the lock (waiting for it), recover, then read */
	SNAPSTORE_NOWAIT = 1 << 1, /* with LOCK: fail at once when another holds it */
};

/* Opens the store of the VM whose data directory is vm_datadir (DATA/NAME):
 * creates snapshots/ when missing (with LOCK) and reads the index (none: an
 * empty tree). ops may be NULL (the default disk ops). */
int snapstore_open(struct snapstore *st, const char *vm_datadir, int flags,
		   const struct snapstore_disk_ops *ops, struct tv_err *err);
void snapstore_close(struct snapstore *st); /* unlocks too */

/* flock(LOCK_EX) on snapshots/lock, then recovery, then the index is read
 * again. nowait: fail with "... is being changed by another process". */
int snapstore_lock(struct snapstore *st, bool nowait, struct tv_err *err);
void snapstore_unlock(struct snapstore *st);
/* Reads the index again (after another process may have changed it). */
int snapstore_reload(struct snapstore *st, struct tv_err *err);

/* Lookups; NULL when absent. */
const struct snap_record *snapstore_find(const struct snapstore *st, const char *tag);
const struct snap_record *snapstore_get(const struct snapstore *st, uint64_t id);
/* DATA/NAME/snapshots/ID (free it). */
char *snapstore_path(const struct snapstore *st, uint64_t id);
/* "%016llx" of id into buf (at least SNAP_ID_DIGITS + 1 bytes). */
void snapstore_id_text(uint64_t id, char *buf);

/* 1-64 letters, digits, '-', '_', '.', not starting with '.' or '-'. */
int snapstore_tag_check(const char *tag, struct tv_err *err);
/* A tag not in use: PREFIX-N, N one more than the highest PREFIX-N in use
 * ("snap-1", "snap-2"; prefix "auto" for automatic snapshots). */
void snapstore_propose_tag(const struct snapstore *st, const char *prefix, char *buf, size_t len);

/* A snapshot being taken. */
struct snap_txn {
	struct snapstore *st;
	struct snap_record rec; /* id, parent (here at begin), tag, ... */
	char *dir;              /* .tmp-ID: write state, memory, console here */
	char **disks;           /* as journaled */
	size_t ndisks;
};

/* Under the lock: checks the tag (valid, not in use), hands out a new ID,
 * makes .tmp-ID/ with its journal (tag, disks) fsynced. description may be
 * NULL. memory: the snapshot will hold state and memory (false: disk-only). */
int snapstore_begin(struct snapstore *st, const char *tag, const char *description, bool memory,
		    bool automatic, const char *const *disks, size_t ndisks, struct snap_txn *t,
		    struct tv_err *err);
/* Renames .tmp-ID to ID, fsyncs, writes the index with the record added and
 * here = ID, pending_restore = 0, and frees t (snapstore_abort on it is then
 * a no-op). On failure the snapshot is not committed: call snapstore_abort. */
int snapstore_commit(struct snap_txn *t, struct tv_err *err);
/* Drops the disks' snapshots named in the journal (disk_ops) and removes the
 * directory (left to the next recovery when that fails); frees t. */
void snapstore_abort(struct snap_txn *t);

/* Under the lock; each rewrites the index. */
/* here = id (0: none); pending: also pending-restore = id, else cleared. */
int snapstore_set_here(struct snapstore *st, uint64_t id, bool pending, struct tv_err *err);
/* Only the index: the caller renames the disks' snapshots first. */
int snapstore_rename(struct snapstore *st, const char *tag, const char *new_tag,
		     struct tv_err *err);
/* The index and the disks' snapshots (through disk_ops.rename), safe against
 * a crash: a journal naming tag, new_tag and the disks goes into ID/ first,
 * then the disks, then the index; the next lock finishes a rename cut short. */
int snapstore_rename_disks(struct snapstore *st, const char *tag, const char *new_tag,
			   const char *const *disks, size_t ndisks, struct tv_err *err);
/* Deletes the snapshot tag as described above: children stay whole
 * (re-parented; their memory images made independent of it); disks (the VM's
 * disk images, absolute) are journaled and their snapshots dropped through
 * disk_ops. */
int snapstore_delete(struct snapstore *st, const char *tag, const char *const *disks,
		     size_t ndisks, struct tv_err *err);
/* Deletes the oldest automatic snapshots beyond keep (never here nor
 * pending-restore). Returns how many it deleted. */
int snapstore_prune_automatic(struct snapstore *st, unsigned keep, const char *const *disks,
			      size_t ndisks, struct tv_err *err);

/* Children of id (0: the roots), in index order: fills out (up to max) and
 * returns how many there are. */
size_t snapstore_children(const struct snapstore *st, uint64_t id, const struct snap_record **out,
			  size_t max);
/* Bytes allocated to ID/'s files (see above). */
int snapstore_du(const struct snapstore *st, uint64_t id, uint64_t *bytes, struct tv_err *err);

/* How many snapshots the VM whose data directory is vm_datadir has (reads the
 * index only; 0 when there is none). */
int snapstore_count(const char *vm_datadir, struct tv_err *err);

/* The verbs (src/core/protocol.h) as the command line sends them: TAKE has no
 * tag= line when the user gave none (the VM process proposes one under the
 * lock: snapstore_propose_tag(st, "snap")); ROLLBACK's automatic snapshot is
 * tagged snapstore_propose_tag(st, "auto"), described "before rollback to
 * 'TAG'", then snapstore_prune_automatic with the settings'
 * snapshot_keep_automatic (src/core/settings.h). The client waits up to
 * CLIENT_SNAPSHOT_TIMEOUT_MS (src/core/client.h) for the reply.
 *
 * What the VM process's PROTO_SNAPSHOT_REPLY JSON object holds (flat, numbers
 * as integers), as the command line reads it; keys absent are not printed:
 *   "tag" "id"               the snapshot taken / rolled back to / deleted / renamed
 *   "memory_bytes"           take: bytes of memory image written
 *   "pages_written"          take: pages in the new memory layer
 *   "state_bytes"            take: bytes of the state file
 *   "pause_ns"               take, rollback: how long the guest was paused
 *   "automatic"              rollback: tag of the automatic snapshot taken first
 *   "pruned"                 take, rollback: automatic snapshots pruned
 * e.g. {"tag": "snap-3", "id": "0000000000000003", "memory_bytes": 12897484,
 *       "pause_ns": 4100000}; the command prints "took snapshot 'snap-3' of VM
 * lab1: 12.3 MiB of memory written, guest paused 4.1 ms". */

#endif
