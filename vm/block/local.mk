# vm/block: disk images (driver table + raw + qcow2)
libtvvm_a_SOURCES += vm/block/block.c vm/block/block.h vm/block/block-int.h \
	vm/block/raw.c vm/block/qcow2.c
