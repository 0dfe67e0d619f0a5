#!/usr/bin/env python3
"""RSS of a program running under qemu-user, without the emulator's own memory.

  bench/guest_rss.py PID GUEST_BASE SIZE

qemu-user started with -B GUEST_BASE and -R SIZE keeps every guest mapping inside
[GUEST_BASE, GUEST_BASE + SIZE) of its own address space; its code, translation cache and heap
lie elsewhere. Sums the Rss of /proc/PID/smaps inside and outside that range, and per guest mapping.
"""
import re
import sys


def main():
    pid, base, size = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3], 16)
    guest, host, per, cur = 0, 0, {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                start = int(m.group(1), 16)
                cur = (base <= start < base + size, m.group(2) or "[anon]")
            elif line.startswith("Rss:") and cur:
                kb = int(line.split()[1])
                if cur[0]:
                    guest += kb
                    per[cur[1]] = per.get(cur[1], 0) + kb
                else:
                    host += kb
    print(f"guest RSS: {guest} kB ({guest / 1024:.1f} MiB); qemu-user itself: {host} kB")
    print("guest RSS per mapping (KiB):")
    for name, kb in sorted(per.items(), key=lambda x: -x[1])[:14]:
        print(f"{kb:8d} {name}")


if __name__ == "__main__":
    main()
