#!/bin/sh
# The debian-minimal guest to a root shell and back under QEMU (TCG): see
# debian-shell.sh. Needs no /dev/kvm.
TV_SHELL_ENGINE=qemu exec "$(dirname "$0")/debian-shell.sh"
