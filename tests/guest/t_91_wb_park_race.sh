#!/bin/bash
# timeout: 300
# A read held behind an unapplied write must not be stranded when the
# acknowledgement that frees it races with the hold.  The test-only module
# parameter wb_park_delay_us widens that window; 200 write-then-read pairs
# on a driver that applies each write after about the same delay must all
# succeed (before the fix, the first stranded read failed with EIO after the
# request timeout).
. "$(dirname "$0")/lib.sh"
require_cmd python3
unload_module
load_module wb_park_delay_us=3000
on_exit unload_module
on_exit _buse_del_all

dev=$(testdrv_add --size 32M --queues 1 --write-back --delay-us 1500 --timeout 3) || die "add"
timeout 200 python3 - "$dev" 200 <<'PY' || die "write-then-read pairs failed"
import mmap, os, sys
dev, n = sys.argv[1], int(sys.argv[2])
fd = os.open(dev, os.O_RDWR | os.O_DIRECT)
wb, rb = mmap.mmap(-1, 4096), mmap.mmap(-1, 4096)
for i in range(n):
    wb[0:8] = (i + 1).to_bytes(8, "little")
    off = (i % 256) * 65536
    os.pwritev(fd, [wb], off)
    try:
        os.preadv(fd, [rb], off)
    except OSError as e:
        sys.exit(f"pair {i}: read failed: {e}")
    if rb[0:8] != wb[0:8]:
        sys.exit(f"pair {i}: read returned stale data")
print(f"{n} write-then-read pairs ok")
PY
log "200 write-then-read pairs with a widened hold window: none stranded"
