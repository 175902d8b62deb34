# src/: the program around the engine, in three parts by role. src/core and
# src/vmm make one library, libtvsrc.a (the verb table in src/vmm names handlers
# of both, and the protocol code in src/core reads it); src/cli is libtvcli.a.
#
# src/core: what the command line, the interface and the VM process share:
# paths, VM definitions and the catalog of them, runtime files, the control
# protocol and its client, settings, templates, JSON output.
libtvsrc_a_SOURCES += src/core/paths.c src/core/paths.h src/core/vmdef.c src/core/vmdef.h \
	src/core/cfgfile.c src/core/cfgfile.h \
	src/core/catalog.c src/core/catalog.h src/core/runtime.c src/core/runtime.h \
	src/core/vmdisk.c src/core/vmdisk.h src/core/fsutil.c src/core/fsutil.h \
	src/core/json.c src/core/json.h src/core/vmops.c src/core/vmops.h \
	src/core/bases.c src/core/bases.h \
	src/core/datadir.c src/core/datadir.h src/core/template.c src/core/template.h \
	src/core/protocol.c src/core/protocol.h src/core/client.c src/core/client.h \
	src/core/settings.c src/core/settings.h \
	src/core/machine.c src/core/machine.h \
	src/core/snapstore.c src/core/snapstore.h
# src/lab: private lab networks, the switch a VM process starts on demand
# (lab_nics_prepare, lab_ensure_switch) and `termvisor lab-switch`.
libtvsrc_a_SOURCES += src/lab/lab.c src/lab/lab.h src/lab/switch.c
libtvcli_a_SOURCES += src/cli/cmd-lab-switch.c
# src/vmm: the VM process: its main loop, the control socket, the console
# screen and the guard on the guest's output.
libtvsrc_a_SOURCES += src/vmm/console-buf.c src/vmm/console-buf.h \
	src/vmm/vtguard.c src/vmm/vtguard.h src/vmm/vtscreen.c src/vmm/vtscreen.h src/vmm/control.c src/vmm/control.h \
	src/vmm/verbs.c src/vmm/verbs.h src/vmm/vmm.c src/vmm/vmm.h src/vmm/vmm-int.h \
	src/vmm/args.c src/vmm/launch.c src/vmm/snap.c src/vmm/sandbox.c src/vmm/sandbox.h
# src/cli: the command line, one file per subcommand (listed in src/cli/cmd.c).
libtvcli_a_SOURCES += src/cli/cmd.c src/cli/cmd.h src/cli/cmd-help.c \
	src/cli/cmd-templates.c src/cli/cmd-list.c src/cli/cmd-create.c src/cli/cmd-delete.c \
	src/cli/attach.c src/cli/attach.h \
	src/cli/cmd-start.c src/cli/cmd-stop.c \
	src/cli/cmd-status.c src/cli/cmd-console.c src/cli/cmd-autostart.c \
	src/cli/cmd-img.c src/cli/cmd-run.c src/cli/cmd-snapshot.c src/cli/cmd-clone.c \
	src/cli/cmd-ssh.c src/cli/netinfo.c src/cli/netinfo.h
# The VM process of `termvisor run`: the engine without the interface's libraries.
pkglibexec_PROGRAMS = termvisor-engine
termvisor_engine_SOURCES = src/vmm/engine-main.c
termvisor_engine_LDFLAGS = $(AM_LDFLAGS) $(ENGINE_LDFLAGS)
termvisor_engine_LDADD = libtvsrc.a libtvvm.a libtvcommon.a $(ENGINE_VTERM_LIBS) \
	$(ZLIB_LIBS) $(LZMA_LIBS) $(LZ4_LIBS) $(ZSTD_LIBS) $(SLIRP_LIBS) $(PTHREAD_CFLAGS) -lm
