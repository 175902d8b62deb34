# ui/: the ncurses front end.
libtvui_a_SOURCES += ui/ui.c ui/ui.h ui/vtpane.c ui/vtpane.h ui/vtpane-int.h ui/vtcopy.c ui/vtcursor.c ui/vtcolor.c ui/vtcolor.h ui/widgets.c ui/widgets.h
