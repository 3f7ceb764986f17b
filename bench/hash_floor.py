#!/usr/bin/env python3
"""The least a Python program can do to re-hash a modelzoo cache: what `bench/cache.py` sets
beside `modelzoo-cache verify` and `xargs -P <cores> sha384sum` to show where verify's time goes.

    python hash_floor.py CACHE_DIR [JOBS]

Only `os` and `hashlib` are imported (no argument parser, no pathlib, no `re`); JOBS processes
(default: one per core; this one and forked ones) take the store's shard folders from a pipe
and hash every blob in them. None of verify's checks (links, strays, records, a blob changed
while read) and no report but a count: it is a floor to measure against, not a tool. Exit 1 if
a blob's SHA-384 is not its name.
"""

import hashlib
import os
import sys


def main() -> int:
    store = os.path.join(sys.argv[1], "sha384")
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else (os.cpu_count() or 1)
    queue_r, queue_w = os.pipe()
    os.write(queue_w, "".join(f"{s}\n" for s in sorted(os.listdir(store))).encode())
    os.close(queue_w)
    buffer = bytearray(256 << 10)
    view = memoryview(buffer)
    children: list[int] = []
    child = False
    for _ in range(jobs - 1):
        pid = os.fork()
        if pid == 0:
            child = True
            break
        children.append(pid)
    bad = 0
    while shard := os.read(queue_r, 3)[:2].decode():
        folder = os.path.join(store, shard)
        for name in os.listdir(folder):
            if "." in name:
                continue
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            digest = hashlib.sha384()
            left = os.fstat(fd).st_size
            while left > 0 and (n := os.readv(fd, [buffer])):
                digest.update(view[:n])
                left -= n
            os.close(fd)
            bad += digest.hexdigest() != shard + name
    if child:
        os._exit(1 if bad else 0)
    for pid in children:
        bad += os.waitpid(pid, 0)[1] != 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main())
