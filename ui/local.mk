# ui/: the ncurses front end.
libtvui_a_SOURCES += ui/ui.c ui/ui.h ui/vtpane.c ui/vtpane.h ui/widgets.c ui/widgets.h
# The snapshot tree's rows (pure logic, no ncurses).
libtvui_a_SOURCES += ui/snaptree.c ui/snaptree.h
