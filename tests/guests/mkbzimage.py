#!/usr/bin/env python3
"""Wraps an ELF guest (with its PVH note) in a minimal bzImage: a setup
header of boot protocol 2.15 whose payload is the ELF, gzip-compressed, as
Linux's own bzImage carries its vmlinux. termvisor extracts such a payload on
the host and boots the ELF through PVH, keeping it in the kernel cache.

usage: mkbzimage.py GUEST.elf OUT.bzImage"""
import gzip
import struct
import sys

elf = open(sys.argv[1], "rb").read()
payload = gzip.compress(elf, mtime=0) + struct.pack("<I", len(elf))
setup_sects = 1
setup = bytearray((setup_sects + 1) * 512)
poff = 0x200
pm = bytearray((poff + len(payload) + 100 + 15) // 16 * 16)
pm[poff:poff + len(payload)] = payload
setup[0x1F1] = setup_sects
struct.pack_into("<I", setup, 0x1F4, len(pm) // 16)   # syssize, in 16-byte units
struct.pack_into("<H", setup, 0x1FE, 0xAA55)
setup[0x202:0x206] = b"HdrS"
struct.pack_into("<H", setup, 0x206, 0x020F)          # boot protocol 2.15
setup[0x211] = 0x01                                   # loadflags: LOADED_HIGH
struct.pack_into("<I", setup, 0x248, poff)            # payload_offset
struct.pack_into("<I", setup, 0x24C, len(payload))    # payload_length
open(sys.argv[2], "wb").write(bytes(setup) + bytes(pm))
