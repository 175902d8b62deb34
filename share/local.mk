# share: files added to the build by this folder

# The demo guest: a freestanding x86-64 kernel booted through PVH.  It has its own
# compiler flags (no libc, no red zone, no SSE, never the sanitizers) and is installed as
# data, for the `demo` VM to boot: $(pkgdatadir)/demo/demo.elf.
DEMO_SRCS = share/demo/entry.S share/demo/boot.c share/demo/acpi.c \
	share/demo/irq.c share/demo/console.c share/demo/readline.c share/demo/shell.c \
	share/demo/smp.c share/demo/stress.c share/demo/pci.c share/demo/virtio_pci.c share/demo/virtio_blk.c \
	share/demo/virtio_net.c share/demo/virtio_console.c share/demo/netstack.c share/demo/net.c share/demo/lib.c
DEMO_DEPS = share/demo/demo.h share/demo/netstack.h share/demo/demo.ld
DEMO_CC = $(CC)
DEMO_CFLAGS = -std=gnu11 -O2 -g -ffreestanding -fno-builtin -fno-pic -fno-pie \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
	-mno-red-zone -mgeneral-regs-only -Wall -Wextra -Wno-unused-parameter $(WERROR_CFLAGS)
DEMO_LINKFLAGS = -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack \
	-Wl,--no-warn-rwx-segments

demodir = $(pkgdatadir)/demo
demo_DATA = share/demo/demo.elf
CLEANFILES += share/demo/demo.elf
EXTRA_DIST += $(DEMO_SRCS) $(DEMO_DEPS) share/demo/README.md

share/demo/demo.elf: $(DEMO_SRCS) $(DEMO_DEPS)
	@$(MKDIR_P) share/demo
	$(AM_V_GEN)$(DEMO_CC) $(DEMO_CFLAGS) $(DEMO_LINKFLAGS) -Wl,-T,$(srcdir)/share/demo/demo.ld \
		-o $@ `for f in $(DEMO_SRCS); do echo "$(srcdir)/$$f"; done`

# The systemd user unit that runs `termvisor autostart` at login or boot.
systemddir = $(pkgdatadir)/systemd
dist_systemd_DATA = share/systemd/termvisor-autostart.service

# Templates: a directory each, installed as data under $(pkgdatadir)/templates.
tpl_demodir = $(pkgdatadir)/templates/demo
dist_tpl_demo_DATA = share/templates/demo/template.conf
tpl_debminidir = $(pkgdatadir)/templates/debian-minimal
dist_tpl_debmini_DATA = share/templates/debian-minimal/template.conf \
	share/templates/debian-minimal/build.sh
tpl_debiandir = $(pkgdatadir)/templates/debian
dist_tpl_debian_DATA = share/templates/debian/template.conf share/templates/debian/build.sh
