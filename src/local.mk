# src/: the program: subcommands, paths, VM definitions, control socket.
libtvsrc_a_SOURCES += src/cmd.c src/cmd.h src/cmd-help.c \
	src/paths.c src/paths.h src/vmdef.c src/vmdef.h src/catalog.c src/catalog.h \
	src/vmstate.c src/vmstate.h src/vmdisk.c src/vmdisk.h src/vmutil.c src/vmutil.h \
	src/json.c src/json.h \
	src/vmops.c src/vmops.h src/datadir.c src/datadir.h src/template.c src/template.h \
	src/cmd-templates.c \
	src/cmd-list.c src/cmd-create.c src/cmd-delete.c
# Detached VMs: control protocol, console buffer.
libtvsrc_a_SOURCES += src/protocol.c src/protocol.h src/console-buf.c src/console-buf.h \
	src/vtguard.c src/vtguard.h \
	src/control.c src/control.h src/client.c src/client.h src/settings.c src/settings.h \
	src/vmproc.c src/vmproc.h src/vmproc-engine.c src/vmproc-engine.h \
	src/console-attach.c src/console-attach.h \
	src/cmd-start.c src/cmd-stop.c src/cmd-pause.c src/cmd-resume.c src/cmd-status.c \
	src/cmd-console.c src/cmd-autostart.c
libtvsrc_a_SOURCES += src/cmd-img.c
libtvsrc_a_SOURCES += src/cmd-run.c src/runvm.c src/runvm.h
# The VM process of `termvisor run`: the engine without the interface's libraries.
pkglibexec_PROGRAMS = termvisor-engine
termvisor_engine_SOURCES = src/engine-main.c src/runvm.c src/runvm.h
termvisor_engine_LDFLAGS = $(AM_LDFLAGS) $(ENGINE_LDFLAGS)
termvisor_engine_LDADD = libtvvm.a libtvcommon.a $(ZLIB_LIBS) $(LZMA_LIBS) $(LZ4_LIBS) $(ZSTD_LIBS) \
	$(PTHREAD_CFLAGS) -lm
