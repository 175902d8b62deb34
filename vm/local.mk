# vm/: the engine. It never includes ncurses.
libtvvm_a_SOURCES += vm/err.c vm/err.h vm/util.c vm/util.h vm/mem.c vm/mem.h
