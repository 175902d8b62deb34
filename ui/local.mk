# ui/: the ncurses front end.
libtvui_a_SOURCES += ui/ui.c ui/ui.h ui/vtpane.c ui/vtpane.h ui/vtpane-int.h ui/vtcopy.c ui/vtcursor.c ui/vtcolor.c ui/vtcolor.h ui/widgets.c ui/widgets.h
# The snapshot tree's rows (pure logic, no ncurses).
libtvui_a_SOURCES += ui/snaptree.c ui/snaptree.h
# Editing a definition the way visudo does, apart from the screen.
libtvui_a_SOURCES += ui/editloop.c ui/editloop.h
# The snapshot tree view, the snapshot actions and the definition editor: they
# call the interface's application object (ui/app.c), so they are built here
# (checked to compile) and linked into termvisor by adding them to
# libtvui_a_SOURCES once ui/app.c is in the tree.
noinst_LIBRARIES += libtvui_snap.a
libtvui_snap_a_SOURCES = ui/view-snapshots.c ui/actions-snap.c ui/snapops.h ui/editdef.c
