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
#endif
