# vm/block: disk images (driver table + raw + qcow2)
libtvvm_a_SOURCES += vm/block/block.c vm/block/block.h vm/block/block-int.h \
	vm/block/raw.c vm/block/qcow2.c vm/block/qcow2.h vm/block/qcow2-cache.c \
	vm/block/qcow2-cluster.c vm/block/qcow2-refcount.c vm/block/qcow2-snapshot.c
