# ui/: the ncurses front end (ui_main in ui/app.c).
libtvui_a_SOURCES += ui/ui.h ui/app.c ui/app.h ui/app-int.h ui/layout.c ui/layout.h \
	ui/keys.c ui/keys.h ui/overlay.c ui/overlay.h ui/model.c ui/model.h ui/view.h \
	ui/view-list.c ui/view-details.c ui/view-help.c ui/view-console.c ui/actions.h \
	ui/placeholder-snap.c ui/vtpane.c ui/vtpane.h
