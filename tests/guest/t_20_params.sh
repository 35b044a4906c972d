#!/bin/bash
# Device parameters reach the block layer; bad ones are refused.
. "$(dirname "$0")/lib.sh"
load_module

dev=$(buse_add null --size 256M --block-size 4096 --queues 2 --depth 32 \
	--max-io 512K) || die "add failed"
n=$(dev_id "$dev")
q=/sys/block/buse$n/queue
check_eq() { [ "$2" = "$3" ] || die "$1: got '$2', want '$3'"; }
check_eq "logical block size" "$(cat $q/logical_block_size)" 4096
check_eq "max_hw_sectors_kb" "$(cat $q/max_hw_sectors_kb)" 512
check_eq "size in sectors" "$(cat /sys/block/buse$n/size)" $((256 * 2048))
check_eq "hardware queues" "$(ls /sys/block/buse$n/mq | wc -l)" 2
check_eq "queue depth" "$(cat /sys/block/buse$n/mq/0/nr_tags)" 32
check_eq "rotational" "$(cat $q/rotational)" 0
check_eq "write cache" "$(cat $q/write_cache)" "write back"

# What `buse info` reports is what the kernel accepted.
"$BUSE" info "$n" --json >/tmp/info.json || die "info failed"
python3 - "$n" <<'PY' || die "buse info --json disagrees"
import json, sys
i = json.load(open("/tmp/info.json"))
def find(d, k):
    if isinstance(d, dict):
        if k in d:
            return d[k]
        for v in d.values():
            r = find(v, k)
            if r is not None:
                return r
    return None
want = {"logical_block_size": 4096, "nr_queues": 2, "queue_depth": 32,
        "max_io_bytes": 512 * 1024, "size": 256 << 20}
for k, v in want.items():
    assert find(i, k) == v, (k, find(i, k), v)
assert find(i, "state") == "live", find(i, "state")
assert find(i, "daemon_pid") > 0
PY
"$BUSE" info "$n" | grep -q 4096 || die "human info lacks the block size"
"$BUSE" list | grep -q "buse$n" || die "list lacks buse$n"

# I/O larger than max-io is split by the block layer, never refused.
dd if=/dev/zero of="$dev" bs=4M count=4 oflag=direct status=none ||
	die "4M writes to a 512K max-io device failed"
buse_del "$n"

# Read-only devices refuse writes.
dev=$(buse_add ram --size 16M --read-only) || die "read-only add failed"
n=$(dev_id "$dev")
check_eq "ro" "$(cat /sys/block/buse$n/ro)" 1
if dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2>/dev/null; then
	die "write to a read-only device succeeded"
fi
dd if="$dev" of=/dev/null bs=4k count=16 iflag=direct status=none ||
	die "read from a read-only device failed"
buse_del "$n"

# Bad parameters are refused and leave nothing behind.
for args in "--size 16M --block-size 3000" "--size 1000" \
	"--size 16M --max-io 1000" "--size 16M --block-size 8192" \
	"--size 0" "--size 16M --depth 100000"; do
	if "$BUSE" add null $args >/dev/null 2>&1; then
		die "buse add null $args was accepted"
	fi
done
[ -z "$(ls /sys/block | grep '^buse')" ] || die "a refused add left a device"
log "parameters ok"
