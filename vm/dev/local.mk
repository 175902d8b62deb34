# vm/dev: files added to the build by this folder
libtvvm_a_SOURCES += vm/dev/dev.c vm/dev/dev.h vm/dev/serial8250.c vm/dev/i8042.c \
	vm/dev/mc146818.c vm/dev/debug-exit.c
libtvvm_a_SOURCES += vm/dev/acpi-pm.c vm/dev/acpi-pm.h
