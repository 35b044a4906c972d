#!/bin/bash
# bench/bs3-guest.sh - BS3 against s3backer and against the S3 server's own
# limit, measured in one guest boot (run by bench/bs3, which starts the
# server, boots the guest with a path to it, samples the server's CPU time
# and renders the report with bench/bs3-report.py).
#
#   bench/bs3-guest.sh [--runtime S] [--size SIZE] [--systems LIST]
#                      [--tree DIR]
#
# The server's limit: build/s3bench, 4 MiB PUTs and GETs at 1, 8 and 32 in
# flight, and 4 KiB ranged GETs at 32 in flight.
# Systems (LIST, comma separated; default all):
#   bs3        BS3, default options
#   bs3-cache  BS3 with its local read cache (--cache-dir on the guest's tmpfs)
#   s3b-4k     s3backer 1.5.4, 4 KiB blocks (its default), block cache of
#              256 MiB, --listBlocks, FUSE file + loop device
#   s3b-256k   the same with 256 KiB blocks
# Workloads on each (fio direct=1 on the block device, io_uring):
#   randwrite  4 KiB random write, iodepth 32, a flush every second (a
#              `sync DEV` loop beside fio) and at the end
#   seqwrite   1 MiB sequential write, iodepth 8, SIZE bytes, ends with a flush
#   seqread    1 MiB sequential read of it, iodepth 8
#   randread-cold  4 KiB random read, iodepth 32, of the written data after
#              detach, re-attach and dropped page caches
#   randread-warm  the same again
#   mkfs       mkfs.ext4 of a fresh 16 GiB volume
#   copy       copying TREE (default: the kernel's include/linux headers, a
#              few thousand files) onto that ext4, then sync
# "Durable" is the end point of every write workload: s3backer 1.5.4's
# fsync() returns before its block cache has written the data to S3, so for
# it the time also runs until its stats file shows no dirty block.  (Its
# base URL has no port: s3backer signs "Host: IP:80" while curl sends "IP".)
#
# Writes $BUSE_OUT/bs3-results.json (one record per measurement: value, unit,
# seconds, bytes moved on the device, guest CPU seconds) and asks the host
# for a server CPU sample at each phase boundary (BUSE_OUT/bs3-phase.req /
# .ack; bench/bs3 answers).  A benchmark reports, it never fails: a failed
# workload is recorded as such and the run goes on.
{
set -uo pipefail
. "$(dirname "$0")/../tests/guest/bs3-lib.sh"
require_cmd fio
require_cmd s3backer
require_cmd mkfs.ext4

RUNTIME=15
SIZE=64M
SYSTEMS=bs3,bs3-cache,s3b-4k,s3b-256k
TREE=$(ls -d /usr/src/linux-headers-*-common/include/linux 2>/dev/null | head -n 1)
LIMIT=600 # hang guard per workload, seconds
FS_LIMIT=${BS3_BENCH_FS_LIMIT:-300} # mkfs and copy: slower than this is recorded as such
while [ $# -gt 0 ]; do
	case $1 in
	--runtime) RUNTIME=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--systems) SYSTEMS=$2; shift 2 ;;
	--tree) TREE=$2; shift 2 ;;
	*) die "usage: bench/bs3-guest.sh [--runtime S] [--size SIZE] [--systems LIST] [--tree DIR]" ;;
	esac
done
OUTDIR=${BUSE_OUT:-$TEST_TMP}
RESULTS=$OUTDIR/bs3-results.json
load_module
modprobe fuse 2>/dev/null || true
modprobe loop 2>/dev/null || true
echo '[]' >"$RESULTS"
echo '[]' >"$OUTDIR/bs3-engine.json"

# --- recording ---------------------------------------------------------------
# phase NAME: ask the host to sample the server's CPU time now (for the
# phase starting or ending); waits up to 5 s for its answer.
PHASE_N=0
phase() {
	local i
	PHASE_N=$((PHASE_N + 1))
	[ -n "${BUSE_OUT:-}" ] || return 0
	echo "$PHASE_N $1" >"$BUSE_OUT/bs3-phase.req.tmp"
	mv -f "$BUSE_OUT/bs3-phase.req.tmp" "$BUSE_OUT/bs3-phase.req"
	for ((i = 0; i < 50; i++)); do
		[ "$(cat "$BUSE_OUT/bs3-phase.ack" 2>/dev/null)" = "$PHASE_N $1" ] && return 0
		sleep 0.1
	done
}
# busy CPU seconds of the whole guest so far (all CPUs; /proc/stat).
guest_cpu() {
	awk '/^cpu / { b = 0; for (i = 2; i <= NF; i++) if (i != 5 && i != 6) b += $i; printf "%.2f\n", b / 100 }' /proc/stat
}
# sectors read + written so far on block device DEV (/sys/block/X/stat).
dev_sectors() {
	local s
	read -r -a s <"/sys/block/${1##*/}/stat"
	echo $((s[2] + s[6]))
}
# record SYSTEM WORKLOAD VALUE UNIT SECS BYTES CPU0 CPU1 P0 P1 [NOTE]
record() {
	python3 - "$RESULTS" "$@" <<'EOF'
import json, sys
f = sys.argv[1]
s, w, v, u, secs, nbytes, c0, c1, p0, p1 = sys.argv[2:12]
note = sys.argv[12] if len(sys.argv) > 12 else ""
r = json.load(open(f))
num = lambda x: None if x in ("", "-") else float(x)
r.append({"system": s, "workload": w, "value": num(v), "unit": u,
          "seconds": num(secs), "bytes": int(nbytes or 0),
          "guest_cpu_s": round(float(c1) - float(c0), 2),
          "phase_start": int(p0), "phase_end": int(p1), "note": note})
json.dump(r, open(f, "w"), indent=1)
EOF
}

# --- the server's limit ------------------------------------------------------
BUCKET=$(new_bucket bench)
log "server limit: 4 MiB objects, then 4 KiB ranged GETs, from the guest"
p0=$((PHASE_N + 1)); phase "server start"; c0=$(guest_cpu)
"$REPO/build/s3bench" -s 4 -n 16 -j 1 -j 8 -j 32 -r 2000 "$BUCKET" | tee "$TEST_TMP/s3bench.txt"
c1=$(guest_cpu); phase "server end"
# lines: "INFLIGHT OBJECTS MIB PUT_MBs GET_MBs", and "ranged INFLIGHT N GETs/s"
while read -r j n _ put get; do
	[[ $j =~ ^[0-9]+$ ]] || continue
	record server "put-qd$j" "$put" MB/s "" $((n * 4 << 20)) "$c0" "$c0" "$p0" "$p0"
	record server "get-qd$j" "$get" MB/s "" $((n * 4 << 20)) "$c0" "$c0" "$p0" "$p0"
done <"$TEST_TMP/s3bench.txt"
read -r _ rj rn rate < <(grep '^ranged ' "$TEST_TMP/s3bench.txt") || rate=
record server "range4k-qd${rj:-32}" "${rate:-}" GET/s "" $((${rn:-0} * 4096)) "$c0" "$c1" "$p0" "$((PHASE_N))"

# --- the systems under test ---------------------------------------------------
# sys_add SYSTEM NAME SIZE new|old: attach volume NAME of SYSTEM (creating it
# when "new"), print the block device.  sys_del SYSTEM NAME: detach it,
# durably (s3backer: unmount, which writes its cache back).
S3B_MNT=$TEST_TMP/s3b
s3b_opts() {
	local bs=${1#s3b-}
	local blocks=$(((256 << 20) / ($(numfmt --from=iec "${bs^^}"))))
	echo --accessId="$AWS_ACCESS_KEY_ID" --accessKey="$AWS_SECRET_ACCESS_KEY" \
		--authVersion=aws4 --baseURL="http://$S3_HOST/" --blockSize="$bs" \
		--blockCacheSize="$blocks" --listBlocks
}
sys_add() {
	local sys=$1 name=$2 size=$3 mode=$4 url=s3://$BUCKET/$sys-$2 dev opts=()
	case $sys in
	bs3 | bs3-cache)
		if [ "$mode" = new ]; then
			"$BUSE" bs3 create "$url" --size "$size" >/dev/null || return 1
		fi
		[ "$sys" = bs3-cache ] && opts=(--cache-dir "$TEST_TMP/cache-$name")
		bs3_add "$url" "${opts[@]}"
		;;
	s3b-*)
		mkdir -p "$S3B_MNT/$sys-$name"
		# shellcheck disable=SC2046 # s3b_opts prints separate words
		s3backer $(s3b_opts "$sys") --size="$size" --prefix="$sys-$name/" \
			"$BUCKET" "$S3B_MNT/$sys-$name" >>"$TEST_TMP/s3backer.log" 2>&1 || return 1
		dev=$(losetup --direct-io=on --show -f "$S3B_MNT/$sys-$name/file" 2>>"$TEST_TMP/s3backer.log") ||
			dev=$(losetup --show -f "$S3B_MNT/$sys-$name/file" 2>>"$TEST_TMP/s3backer.log") ||
			{ umount "$S3B_MNT/$sys-$name"; return 1; }
		echo "$dev"
		;;
	esac
}
sys_del() {
	local sys=$1 name=$2 dev=$3 i
	case $sys in
	bs3 | bs3-cache) "$BUSE" del "$(dev_id "$dev")" ;;
	s3b-*)
		losetup -d "$dev"
		umount "$S3B_MNT/$sys-$name" || return 1
		# s3backer exits after the unmount, once its cache is written out.
		for ((i = 0; i < 600; i++)); do
			pgrep -f "s3backer.*$S3B_MNT/$sys-$name\$" >/dev/null || break
			sleep 0.5
		done
		;;
	esac
}
# durable SYSTEM NAME: wait until what was written is in S3 (s3backer: no
# dirty block in its cache; BS3: a flush already made it durable).
durable() {
	local i
	case $1 in
	s3b-*)
		for ((i = 0; i < 6000; i++)); do
			awk '$1 == "block_cache_dirty_ratio" && $2 + 0 == 0 { ok = 1 } END { exit !ok }' \
				"$S3B_MNT/$1-$2/stats" && return 0
			sleep 0.1
		done
		return 1
		;;
	esac
}

# fio_run OUT ARGS...: run fio (hang guard LIMIT), JSON to OUT.
fio_run() {
	local out=$1
	shift
	timeout -k 10 "$LIMIT" fio --output-format=json --output="$out" "$@" >/dev/null 2>&1
}
# fio_ios JSON: "IOS BYTES" of its one job, reads and writes together.
fio_ios() {
	python3 - "$1" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
print(j["read"]["total_ios"] + j["write"]["total_ios"],
      j["read"]["io_bytes"] + j["write"]["io_bytes"])
EOF
}
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$1" "$2"; }
div() { python3 -c "import sys; a, b, m = map(float, sys.argv[1:]); print(f'{a * m / b:.1f}' if b > 0 else '')" "$@"; }

# engine SYSTEM WORKLOAD DEV start|end: keep BS3's own counters (the
# daemon's /run/buse/bs3-N.json, rewritten every second) around a workload,
# for the report's engine table: uploads, object fill, retries, cache hits.
engine() {
	case $1 in bs3 | bs3-cache) ;; *) return 0 ;; esac
	[ "$4" = start ] || sleep 1.2 # the file's next rewrite
	python3 - "$OUTDIR/bs3-engine.json" "$1" "$2" "$4" "/run/buse/bs3-$(dev_id "$3").json" <<'EOF2' || true
import json, os, sys
f, s, w, when, src = sys.argv[1:]
r = json.load(open(f)) if os.path.exists(f) else []
try:
    st = json.load(open(src))
except (OSError, ValueError):
    st = None
r.append({"system": s, "workload": w, "when": when, "stats": st})
json.dump(r, open(f, "w"), indent=1)
EOF2
}

# workload SYSTEM NAME DEV WORKLOAD: run one fio workload, record it.
workload() {
	local sys=$1 name=$2 dev=$3 w=$4 json=$TEST_TMP/$1-$4.json args syncer=
	local common=(--name="$w" --filename="$dev" --ioengine=io_uring --direct=1 --size="$SIZE")
	case $w in
	randwrite) args=(--rw=randwrite --bs=4k --iodepth=32 --time_based --runtime="$RUNTIME" --end_fsync=1) ;;
	seqwrite) args=(--rw=write --bs=1m --iodepth=8 --end_fsync=1) ;;
	seqread) args=(--rw=read --bs=1m --iodepth=8) ;;
	randread-*) args=(--rw=randread --bs=4k --iodepth=32 --time_based --runtime="$RUNTIME") ;;
	esac
	log "$sys: $w"
	local s0 p0 c0 t0 t1 c1 ok=1 ios fbytes nbytes
	engine "$sys" "$w" "$dev" start
	s0=$(dev_sectors "$dev"); p0=$((PHASE_N + 1)); phase "$sys $w start"
	c0=$(guest_cpu); t0=$(now)
	if [ "$w" = randwrite ]; then
		# its own bash: a subshell would carry lib.sh's TERM trap
		bash -c 'while sleep 1; do sync "$0"; done' "$dev" &
		syncer=$!
	fi
	fio_run "$json" "${common[@]}" "${args[@]}" || ok=
	[ -z "$syncer" ] || { kill "$syncer"; wait "$syncer" 2>/dev/null || true; }
	case $w in *write) durable "$sys" "$name" || ok= ;; esac
	t1=$(now); c1=$(guest_cpu); phase "$sys $w end"
	engine "$sys" "$w" "$dev" end
	nbytes=$((($(dev_sectors "$dev") - s0) * 512))
	if [ -n "$ok" ] && read -r ios fbytes < <(fio_ios "$json"); then
		local t
		t=$(secs "$t0" "$t1")
		case $w in
		seq*) record "$sys" "$w" "$(div "$fbytes" "$t" "$((1))")" B/s "$t" "$nbytes" "$c0" "$c1" "$p0" "$PHASE_N" ;;
		*) record "$sys" "$w" "$(div "$ios" "$t" 1)" IOPS "$t" "$nbytes" "$c0" "$c1" "$p0" "$PHASE_N" ;;
		esac
	else
		record "$sys" "$w" "" failed "$(secs "$t0" "$t1")" "$nbytes" "$c0" "$c1" "$p0" "$PHASE_N" "fio or the durability wait failed"
	fi
}

# timed SYSTEM WORKLOAD DEV NAME CMD...: time CMD (until durable), record it.
timed() {
	local sys=$1 w=$2 dev=$3 name=$4 s0 p0 c0 t0 t1 c1 ok=1 rc note=
	shift 4
	log "$sys: $w"
	engine "$sys" "$w" "$dev" start
	s0=$(dev_sectors "$dev"); p0=$((PHASE_N + 1)); phase "$sys $w start"
	c0=$(guest_cpu); t0=$(now)
	timeout -k 10 "$FS_LIMIT" "$@" >>"$TEST_TMP/$sys-$w.log" 2>&1 || {
		rc=$?; ok=
		note="exit status $rc"
		# timeout: 124 after TERM, 137 when it had to KILL (mkfs ignores TERM)
		[ "$rc" != 124 ] && [ "$rc" != 137 ] || note="not done after $FS_LIMIT s"
	}
	[ -z "$ok" ] || durable "$sys" "$name" || { ok=; note="durability wait failed"; }
	t1=$(now); c1=$(guest_cpu); phase "$sys $w end"
	engine "$sys" "$w" "$dev" end
	record "$sys" "$w" "${ok:+$(secs "$t0" "$t1")}" "${ok:+s}${ok:-failed}" "$(secs "$t0" "$t1")" \
		$((($(dev_sectors "$dev") - s0) * 512)) "$c0" "$c1" "$p0" "$PHASE_N" "$note"
}


IFS=, read -r -a systems <<<"$SYSTEMS"
for sys in "${systems[@]}"; do
	log "=== $sys"
	dev=$(sys_add "$sys" fio 1G new) || { record "$sys" setup "" failed 0 0 0 0 0 0 "setup failed"; continue; }
	for w in randwrite seqwrite seqread; do workload "$sys" fio "$dev" "$w"; done
	sys_del "$sys" fio "$dev"
	echo 3 >/proc/sys/vm/drop_caches
	dev=$(sys_add "$sys" fio 1G old) || { record "$sys" reattach "" failed 0 0 0 0 0 0 "re-attach failed"; continue; }
	for w in randread-cold randread-warm; do workload "$sys" fio "$dev" "$w"; done
	sys_del "$sys" fio "$dev"

	dev=$(sys_add "$sys" fs 16G new) || { record "$sys" setup16g "" failed 0 0 0 0 0 0 "setup failed"; continue; }
	timed "$sys" mkfs "$dev" fs mkfs.ext4 -q -F "$dev"
	mkdir -p "$TEST_TMP/mnt"
	if mount "$dev" "$TEST_TMP/mnt"; then
		timed "$sys" copy "$dev" fs bash -c 'cp -a "$0" "$1/" && sync' "$TREE" "$TEST_TMP/mnt"
		umount "$TEST_TMP/mnt"
	fi
	sys_del "$sys" fs "$dev"
done
cp "$TEST_TMP/s3backer.log" "$OUTDIR/" 2>/dev/null
python3 -c "import json, sys; [print(r) for r in json.load(open(sys.argv[1]))]" "$RESULTS"
log "results in $RESULTS (tree: $TREE, $(find "$TREE" -type f | wc -l) files)"
exit 0
}
