#!/bin/sh
# debian-shell.sh again with 1 vCPU and the disk's data on I/O threads, named
# in the VM's definition (that test has 2 vCPUs and the default, io_uring):
# the same login, checks and poweroff through the engine's other virtio-blk
# path, and a guest kernel without a second CPU.
TV_SHELL_CPUS=1 TV_SHELL_AIO=threads exec "$(dirname "$0")/debian-shell.sh"
