#!/bin/bash
# An error the driver returns for chosen sectors reaches the application as
# EIO; the rest of the device keeps working.
. "$(dirname "$0")/lib.sh"
load_module

dev=$(testdrv_add --size 64M --fail-sector 2048:8) || die "add"
n=$(dev_id "$dev")
# Sector 2048 = 1 MiB = block 256 of 4 KiB.
if dd if="$dev" of=/dev/null bs=4k skip=256 count=1 iflag=direct 2>/tmp/dd.err; then
	die "read of a failing sector succeeded"
fi
grep -q "Input/output error" /tmp/dd.err || die "read error is not EIO: $(cat /tmp/dd.err)"
if dd if=/dev/zero of="$dev" bs=4k seek=256 count=1 oflag=direct 2>/tmp/dd.err; then
	die "write of a failing sector succeeded"
fi
grep -q "Input/output error" /tmp/dd.err || die "write error is not EIO: $(cat /tmp/dd.err)"
# A large request that only touches the bad range partly fails whole.
if dd if="$dev" of=/dev/null bs=64k skip=15 count=2 iflag=direct 2>/dev/null; then
	die "read spanning a failing sector succeeded"
fi
# Neighbours are fine.
dd if="$dev" of=/dev/null bs=4k skip=255 count=1 iflag=direct status=none || die "sector before"
dd if="$dev" of=/dev/null bs=4k skip=257 count=1 iflag=direct status=none || die "sector after"
fio --name=ok --filename="$dev" --ioengine=io_uring --direct=1 --rw=randwrite \
	--bs=4k --iodepth=16 --offset=2m --size=8m --verify=crc32c --verify_fatal=1 \
	--output=/tmp/fio.out || { cat /tmp/fio.out; die "fio on good sectors failed"; }
# fio itself sees the error on the bad range.
if fio --name=bad --filename="$dev" --ioengine=io_uring --direct=1 --rw=read \
	--bs=4k --offset=1m --size=64k --output=/tmp/fio.out; then
	die "fio read over failing sectors succeeded"
fi
grep -q "Input/output error" /tmp/fio.out || die "fio did not report EIO"
buse_del "$n"
log "error status ok"
