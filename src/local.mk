# src/: the program: subcommands, paths, VM definitions, control socket.
libtvsrc_a_SOURCES += src/cmd.c src/cmd.h src/cmd-help.c
