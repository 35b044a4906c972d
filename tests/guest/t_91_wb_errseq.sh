#!/bin/bash
# timeout: 120
# A logged write the driver fails after it was completed is reported to
# every application that had the device open, errseq-style (issue 14, low
# 8): the writer's fsync fails, and so does another opener's next fsync
# (once); a file opened afterwards sees no old error.
. "$(dirname "$0")/lib.sh"
load_module

dev=$(testdrv_add --size 32M --write-back --fail-sector 2048:8) || die "add"
n=$(dev_id "$dev")
python3 - "$dev" <<'PY' || die "errseq reporting"
import errno, os, sys
dev = sys.argv[1]
a = os.open(dev, os.O_RDWR)
b = os.open(dev, os.O_RDWR)
def fsync(fd):
    try:
        os.fsync(fd)
        return 0
    except OSError as e:
        return e.errno
os.pwrite(a, b"x" * 4096, 2048 * 512)
ra = fsync(a)
rb = fsync(b)
rb2 = fsync(b)
c = os.open(dev, os.O_RDWR)
rc = fsync(c)
print("fsync: writer %d, other opener %d then %d, opened later %d" % (ra, rb, rb2, rc))
ok = ra == errno.EIO and rb == errno.EIO and rb2 == 0 and rc == 0
sys.exit(0 if ok else 1)
PY
log "a lost write fails every opener's next fsync once"
"$BUSE" del "$n" || true
