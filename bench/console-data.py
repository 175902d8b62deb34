#!/usr/bin/env python3
"""Writes SIZE bytes of what a busy guest console shows: log lines in 16,
256 and direct colours, bold, underline and reverse, UTF-8 with wide
characters and combining accents, a progress bar redrawn in place, and now
and then a full-screen program's redraw (cursor moves, clears).
usage: console-data.py SIZE OUT"""
import random
import sys

size, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(18)
words = ("kernel virtio console block net eth0 sda1 mounted started reached target "
         "systemd journal 漢字 データ café naïve e\u0301 ✓ 😀 ok warn error").split()
parts, total, n = [], 0, 0
while total < size:
    n += 1
    kind = rng.random()
    if kind < 0.70:
        sgr = rng.choice(["31", "1;32", "33", "4;34", "7", "38;5;%d" % rng.randrange(256),
                          "38;2;%d;%d;%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(256)),
                          "48;5;%d" % rng.randrange(256)])
        text = " ".join(rng.choice(words) for _ in range(rng.randrange(3, 14)))
        s = "[%8d.%06d] \x1b[%sm%s\x1b[m %s\r\n" % (n // 100, n % 1000000, sgr, rng.choice(words), text)
    elif kind < 0.95:
        s = "".join("\r[%s%s] %3d%%" % ("#" * (i // 5), "." * (20 - i // 5), i) for i in range(0, 101, 10)) + "\r\n"
    else:
        rows = []
        for r in range(1, 24):
            rows.append("\x1b[%d;1H\x1b[2K\x1b[%dm%s" % (r, 30 + r % 8, " ".join(rng.choice(words) for _ in range(8))))
        s = "\x1b[H\x1b[2J" + "".join(rows) + "\x1b[24;1H\r\n"
    b = s.encode()
    parts.append(b)
    total += len(b)
with open(out, "wb") as f:
    f.write(b"".join(parts)[:size])
