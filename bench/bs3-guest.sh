#!/bin/bash
# bench/bs3-guest.sh - BS3 next to the S3 server's own limit, measured in
# the guest (run by bench/bs3, which starts the server and boots the guest
# with a path to it).  Prints a Markdown table and writes it to
# $BUSE_OUT/bs3-bench.md.
#
#   bench/bs3-guest.sh [--runtime S] [--size SIZE]
#
# The server's limit: build/s3bench, 4 MiB PUTs and GETs at 1, 8 and 32 in
# flight.  BS3 (default options): fio direct=1 on /dev/buseN, 1 MiB
# sequential write (iodepth 8, ending with a flush), 4 KiB random write
# (iodepth 32, an fsync every 256 writes), 4 KiB random read of the
# written data (iodepth 32).  A benchmark reports, it never fails a run.
. "$(dirname "$0")/../tests/guest/bs3-lib.sh"
require_cmd fio

RUNTIME=20
SIZE=64M
while [ $# -gt 0 ]; do
	case $1 in
	--runtime) RUNTIME=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	*) die "usage: bench/bs3-guest.sh [--runtime S] [--size SIZE]" ;;
	esac
done
OUTMD=${BUSE_OUT:-$TEST_TMP}/bs3-bench.md
load_module

# fio_num JOBFILE-ARGS...: run fio, print "MiB/s IOPS" of its one job.
fio_num() {
	fio --output-format=json --output="$TEST_TMP/fio.json" "$@" >/dev/null 2>&1 ||
		{ echo "- -"; return; }
	python3 - "$TEST_TMP/fio.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r, w = j["read"], j["write"]
bw = (r["bw_bytes"] + w["bw_bytes"]) / 2**20
iops = r["iops"] + w["iops"]
print(f"{bw:.1f} {iops:.0f}")
EOF
}

b=$(new_bucket bench)
log "server limit: 4 MiB objects from the guest"
"$REPO/build/s3bench" -s 4 -n 16 -j 1 -j 8 -j 32 "$b" | tee "$TEST_TMP/s3bench.txt"
put32=$(awk '$1 == 32 {print $4}' "$TEST_TMP/s3bench.txt")
get32=$(awk '$1 == 32 {print $5}' "$TEST_TMP/s3bench.txt")

url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 1G >/dev/null || die "bs3 create"
dev=$(bs3_add "$url") || die "buse add bs3"
common=(--name=bs3 --filename="$dev" --ioengine=io_uring --direct=1)
read -r seqw _ < <(fio_num "${common[@]}" --rw=write --bs=1m --iodepth=8 \
	--size="$SIZE" --end_fsync=1)
read -r _ rw4k < <(fio_num "${common[@]}" --rw=randwrite --bs=4k \
	--iodepth=32 --size="$SIZE" --time_based --runtime="$RUNTIME" --fsync=256)
read -r _ rr4k < <(fio_num "${common[@]}" --rw=randread --bs=4k \
	--iodepth=32 --size="$SIZE" --time_based --runtime="$RUNTIME")
"$BUSE" info "$(dev_id "$dev")" --json >"$TEST_TMP/info.json" || true
buse_del "$(dev_id "$dev")"

ratio() { python3 -c "import sys; a, b = sys.argv[1:]; print(f'{float(a) / float(b):.2f}' if a not in ('-', '') and b not in ('-', '', '0', '0.0') else '-')" "$1" "$2"; }
mb() { python3 -c "import sys; print(f'{float(sys.argv[1]) * 1e6 / 2**20:.1f}')" "$1"; }
{
	echo "| workload | BS3 | server raw (32 in flight) | BS3 / server |"
	echo "|---|---|---|---|"
	echo "| 1 MiB sequential write, qd8, + flush | $seqw MiB/s | $(mb "$put32") MiB/s PUT | $(ratio "$seqw" "$(mb "$put32")") |"
	echo "| 4 KiB random write, qd32, fsync/256 | $rw4k IOPS ($(python3 -c "print(f'{$rw4k * 4096 / 2**20:.1f}')") MiB/s) | $(mb "$put32") MiB/s PUT | $(ratio "$(python3 -c "print($rw4k * 4096 / 2**20)")" "$(mb "$put32")") |"
	echo "| 4 KiB random read, qd32 | $rr4k IOPS | $(mb "$get32") MiB/s GET (4 MiB objects) | - |"
} | tee "$OUTMD"
log "table in $OUTMD"
