# ui/: the ncurses front end.
libtvui_a_SOURCES += ui/ui.c ui/ui.h ui/vtpane.c ui/vtpane.h ui/widgets.c ui/widgets.h
