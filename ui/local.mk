# ui/: the ncurses front end (ui_main in ui/app.c).
libtvui_a_SOURCES += ui/ui.h ui/app.c ui/app.h ui/app-int.h ui/layout.c ui/layout.h \
	ui/keys.c ui/keys.h ui/overlay.c ui/overlay.h ui/model.c ui/model.h ui/view.h \
	ui/view-list.c ui/view-details.c ui/view-help.c ui/view-console.c ui/actions.h
# The console pane: libvterm's screen drawn into a window, scrollback, search,
# copy mode, colours mapped to the terminal's class.
libtvui_a_SOURCES += ui/vtpane.c ui/vtpane.h ui/vtpane-int.h ui/vtcopy.c ui/vtcursor.c \
	ui/vtcolor.c ui/vtcolor.h
# The snapshot tree (its rows are pure logic, no ncurses), its view and actions.
libtvui_a_SOURCES += ui/snaptree.c ui/snaptree.h ui/view-snapshots.c ui/actions-snap.c \
	ui/snapops.h
# Editing a definition in $EDITOR the way visudo does (the loop apart from the screen).
libtvui_a_SOURCES += ui/editloop.c ui/editloop.h ui/editdef.c
