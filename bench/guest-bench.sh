#!/bin/bash
# bench/guest-bench.sh - the benchmark itself, run as root inside the test
# guest by bench/run (which boots the guest and renders the report):
#
#   bench/guest-bench.sh [--runtime S] [--ramp S] [--systems LIST]
#                        [--workloads LIST] [--scaling LIST|none]
#                        [--perf LIST|none] [--perf-workloads LIST]
#                        [--size SIZE] [--queues N]
#   bench/guest-bench.sh --list       print the systems and workloads
#
# For each system in turn: set it up, (pre-fill it if it stores data), run
# every workload with fio (io_uring, O_DIRECT, time based, with a ramp),
# tear it down.  Then the queue scaling runs (BUSE null, 4k random read
# iodepth 32, one fio job per CPU, 1, 2 and 4 hardware queues), then the
# optional perf profiles.  Raw fio JSON and a manifest go to $BUSE_OUT/raw/,
# the collected results to $BUSE_OUT/results.json (bench/report.py collect).
#
# A benchmark reports, it never fails: a system that cannot be set up or a
# workload that fails is recorded with its error and the run goes on.  The
# exit status is 0 when results.json was written.

# The setup_*/teardown_* functions are called through "setup_$kind".
# shellcheck disable=SC2317

# The whole script is one compound command, so bash parses it before running
# any of it: editing this file while a guest runs it cannot break that run.
{
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUSE=$REPO/build/buse
BUSE_KO=$REPO/kernel/buse.ko

# --- what is measured --------------------------------------------------------
# Systems: name|kind|arguments|stores data (pre-filled)|label.  A new row is
# one line: the kinds are set up by setup_<kind> / teardown_<kind> below, and
# for kind "buse" the arguments are the driver and its `buse add` options
# (the common ones, --size --queues --max-io, are added).  The first row is
# the reference the report divides by.
SYSTEMS=(
	"null_blk|nullblk|queue_mode=2 hw_queue_depth=128|0|kernel null_blk (blk-mq, no data copy)"
	"nbd-null|nbd|null|0|NBD + nbdkit null plugin, Unix socket, one connection per queue"
	"nbd-memory|nbd|memory|1|NBD + nbdkit memory plugin (sparse), Unix socket, one connection per queue"
	"buse-null|buse|null|0|BUSE null driver, write-through"
	"buse-ram|buse|ram|1|BUSE ram driver (sparse, 64K chunks), write-through"
	"buse-null-wb|buse|null --write-back|0|BUSE null driver, write-back (16 MiB log per queue)"
	"buse-ram-wb|buse|ram --write-back|1|BUSE ram driver, write-back (16 MiB log per queue)"
	"buse-null-poll|buse|null --poll 50|0|BUSE null driver, write-through, 50 µs busy-poll"
	"buse-null-wb-poll|buse|null --write-back --poll 50|0|BUSE null driver, write-back, 50 µs busy-poll"
	"buse-testdrv-wb|testdrv|--write-back|1|BUSE test driver (RAM), write-back, writes released at once"
	"loop-file|loop|/tmp/bench-loop.img|1|kernel loop device over a tmpfs file (buffered)"
	"buse-file|buse|file --path /tmp/bench-file.img|1|BUSE file driver over a tmpfs file: io_uring, asynchronous completion"
	"buse-file-pool|buse|file --path /tmp/bench-file.img --workers 8|1|BUSE file driver over a tmpfs file: blocking pread/pwrite on 8 pool workers (params.workers)"
	"buse-null-pollcpu|buse|null --poll 1000000 --cpus 1|0|BUSE null, queue threads on CPU 1 busy-polling up to 1 s (params.cpus, poll_us): the latency mode; fio on CPU 0 for randread-4k-qd1-cpu0"
	"loop-brd|brd|loop|1|kernel loop device, --direct-io=on, over brd (/dev/ram0)"
	"buse-file-brd|brd|buse file --path /dev/ram0 --direct|1|BUSE file driver, O_DIRECT, over brd (/dev/ram0)"
	"buse-testdrv-retain|testdrv|--write-back --persist-delay 200 --backing /tmp/bench-retain.img|1|BUSE test driver (RAM), write-back, writes retained and persisted to a file 200 ms later, then released"
	"buse-testdrv-retain0|testdrv|--write-back --persist-delay 0 --backing /tmp/bench-retain.img|1|the same, persisted and released as soon as applied: the persisting work without the 200 ms in the log"
	"buse-testdrv-retain-log128m|testdrv|--write-back --log-size 128M --persist-delay 200 --backing /tmp/bench-retain.img|1|the same with a 128 MiB log per queue: room for 200 ms of retained bytes and, at a record per 4 KiB, 32k records per queue"
	"buse-testdrv-wb-sync|testdrv|--write-back --persist-sync --backing /tmp/bench-retain.img|1|the test driver not retaining: every write persisted to the file in its callback and released at once (plain write-back doing the same persisting work)"
)

# Experiments: the same fields plus a sixth, a shell command run once the
# system is set up (with $DEV and $SERVER_PID set).  They run only when
# named in --systems, and answer tuning questions.
EXPERIMENTS=(
	"buse-null-latency|buse|null --sched latency|0|BUSE null, queue threads always SCHED_OTHER (wake-up preempts the submitter)|true"
	"buse-null-throughput|buse|null --sched throughput|0|BUSE null, queue threads always SCHED_BATCH (no wake-up preemption)|true"
	"buse-null-nopin|buse|null|0|BUSE null, queue threads allowed on every CPU|taskset --all-tasks --cpu-list --pid 0-\$((NPROC - 1)) \"\$SERVER_PID\" >/dev/null"
)

# Workloads: name|fio rw|block size|iodepth|jobs ("Q": one per hardware
# queue, pinned one per CPU; "N@C": N jobs on CPU C; else that many)|label.
WORKLOADS=(
	"randread-4k-qd32|randread|4k|32|Q|4k random read, iodepth 32 per job, one job per queue"
	"randwrite-4k-qd32|randwrite|4k|32|Q|4k random write, iodepth 32 per job, one job per queue"
	"read-1m-qd8|read|1m|8|1|1 MiB sequential read, iodepth 8, one job"
	"write-1m-qd8|write|1m|8|1|1 MiB sequential write, iodepth 8, one job"
	"randread-4k-qd1|randread|4k|1|1|4k random read, iodepth 1, one job (latency)"
	"randread-4k-qd1-cpu0|randread|4k|1|1@0|4k random read, iodepth 1, one job on CPU 0 (latency; a poller can run on the other CPU)"
)

# Queue scaling: this system and workload, with these queue counts.
SCALING_SYSTEM=buse-null
SCALING_WORKLOAD=randread-4k-qd32

# --- options -----------------------------------------------------------------
RUNTIME=8
RAMP=2
SIZE=1G
NPROC=$(nproc)
QUEUES=$NPROC
SEL_SYSTEMS=
SEL_WORKLOADS=
SCALING=1,2,4
PERF=none
PERF_WORKLOADS=randread-4k-qd32

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit "${1:-0}"; }

list() {
	local row
	echo "systems:"
	for row in "${SYSTEMS[@]}"; do
		IFS='|' read -r n _ _ _ l <<<"$row"
		printf '  %-18s %s\n' "$n" "$l"
	done
	for row in "${EXPERIMENTS[@]}"; do
		IFS='|' read -r n _ _ _ l _ <<<"$row"
		printf '  %-18s %s (experiment: only when named)\n' "$n" "$l"
	done
	echo "workloads:"
	for row in "${WORKLOADS[@]}"; do
		IFS='|' read -r n _ _ _ _ l <<<"$row"
		printf '  %-18s %s\n' "$n" "$l"
	done
}

while [ $# -gt 0 ]; do
	case "$1" in
	--runtime) RUNTIME=${2:?}; shift 2 ;;
	--ramp) RAMP=${2:?}; shift 2 ;;
	--systems) SEL_SYSTEMS=${2:?}; shift 2 ;;
	--workloads) SEL_WORKLOADS=${2:?}; shift 2 ;;
	--scaling) SCALING=${2:?}; shift 2 ;;
	--perf) PERF=${2:?}; shift 2 ;;
	--perf-workloads) PERF_WORKLOADS=${2:?}; shift 2 ;;
	--size) SIZE=${2:?}; shift 2 ;;
	--queues) QUEUES=${2:?}; shift 2 ;;
	--list) list; exit 0 ;;
	-h | --help) usage 0 ;;
	*) echo "guest-bench: unknown option $1" >&2; usage 2 >&2 ;;
	esac
done

# select_rows VAR LIST ROW...: set the array VAR to the ROWs whose name is in
# the comma-separated LIST (all if LIST is empty), in LIST's order.
select_rows() {
	local -n _out=$1
	local sel=$2 row name want found
	shift 2
	_out=()
	if [ -z "$sel" ]; then
		_out=("$@")
		return 0
	fi
	for want in ${sel//,/ }; do
		found=0
		for row in "$@"; do
			name=${row%%|*}
			if [ "$name" = "$want" ]; then
				_out+=("$row")
				found=1
			fi
		done
		[ "$found" = 1 ] || { echo "guest-bench: unknown name '$want'" >&2; exit 2; }
	done
}
if [ -n "$SEL_SYSTEMS" ]; then
	select_rows RUN_SYSTEMS "$SEL_SYSTEMS" "${SYSTEMS[@]}" "${EXPERIMENTS[@]}"
else
	RUN_SYSTEMS=("${SYSTEMS[@]}")
fi
select_rows RUN_WORKLOADS "$SEL_WORKLOADS" "${WORKLOADS[@]}"

[ "${BUSE_GUEST:-}" = 1 ] || { echo "guest-bench: run me in the test guest (bench/run)" >&2; exit 2; }
OUT=${BUSE_OUT:?BUSE_OUT not set}
RAW=$OUT/raw
mkdir -p "$RAW"
WORK=$(mktemp -d /tmp/bench.XXXXXX)
MANIFEST=$RAW/manifest.tsv
: >"$MANIFEST"

say() { printf '[bench %s] %s\n' "$(cut -d' ' -f1 /proc/uptime)" "$*"; }

# --- bookkeeping ---------------------------------------------------------------
{
	printf 'runtime\t%s\nramp\t%s\nsize\t%s\nqueues\t%s\nnproc\t%s\n' \
		"$RUNTIME" "$RAMP" "$SIZE" "$QUEUES" "$NPROC"
	printf 'fio\t%s\n' "$(fio --version 2>/dev/null)"
	printf 'nbdkit\t%s\n' "$(nbdkit --version 2>/dev/null | head -n1)"
	printf 'started\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$RAW/config.tsv"
{
	printf 'nproc\t%s\nkernel\t%s\n' "$NPROC" "$(uname -r)"
	printf 'cpu_model\t%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	printf 'mem_mib\t%s\n' "$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
} >"$RAW/machine.tsv"
printf '%s\n' "${RUN_SYSTEMS[@]}" >"$RAW/systems.txt"
printf '%s\n' "${RUN_WORKLOADS[@]}" >"$RAW/workloads.txt"
# Per system: name, status (ok|failed), note (file with details).
: >"$RAW/system-status.tsv"

# Busy and total jiffies of all CPUs, from /proc/stat.
cpu_jiffies() {
	awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i;
		print t - $5 - $6, t }' /proc/stat
}
# Context switches of the whole system since boot.
sys_ctxt() { awk '/^ctxt/ { print $2 }' /proc/stat; }
# Voluntary + involuntary context switches of PID's live threads, 0 if none.
proc_ctxsw() {
	local pid=$1
	if [ -n "$pid" ] && [ -d "/proc/$pid/task" ]; then
		cat /proc/"$pid"/task/*/status 2>/dev/null |
			awk '/^(non)?voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }'
	else
		echo 0
	fi
}
# User+system ticks of process PID (all its threads), 0 if none.
proc_ticks() {
	local pid=$1
	if [ -n "$pid" ] && [ -r "/proc/$pid/stat" ]; then
		awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat"
	else
		echo 0
	fi
}

# --- systems -------------------------------------------------------------------
# setup_<kind> ARGS: create the device, set DEV (block device) and SERVER_PID
# (the userspace server whose CPU time is counted, if any).  Return non-zero
# with a message on stderr if it cannot.  teardown_<kind> undoes it.
DEV=
SERVER_PID=
ACCEPTED_QUEUES=

wait_blockdev() { # DEV SECONDS: until DEV exists and has a size
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if [ -b "$1" ] && [ "$(blockdev --getsize64 "$1" 2>/dev/null || echo 0)" -gt 0 ]; then
			return 0
		fi
		sleep 0.1
	done
	echo "$1 did not appear within $2 s" >&2
	return 1
}

setup_nullblk() {
	# gb= is whole GiB: round the size up.
	local gb=$((($(numfmt --from=iec "$SIZE") + (1 << 30) - 1) >> 30))
	# shellcheck disable=SC2086  # module parameters
	modprobe null_blk nr_devices=1 submit_queues="$1" gb="$gb" $2 || return 1
	DEV=/dev/nullb0
	# Its poll queue (poll_queues=1 by default) shows in sysfs but serves
	# no ordinary I/O: count the submit queues only.
	ACCEPTED_QUEUES=$1
	wait_blockdev "$DEV" 10
}
teardown_nullblk() {
	rmmod null_blk
}

NBD_SOCK=/tmp/bench-nbd.sock
setup_nbd() {
	modprobe nbd nbds_max=1 || return 1
	rm -f "$NBD_SOCK"
	# shellcheck disable=SC2086  # plugin and its arguments
	nbdkit --foreground --unix "$NBD_SOCK" $2 size="$SIZE" \
		>"$WORK/nbdkit.log" 2>&1 </dev/null &
	SERVER_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		[ -S "$NBD_SOCK" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -S "$NBD_SOCK" ] || { cat "$WORK/nbdkit.log" >&2; echo "nbdkit did not start" >&2; return 1; }
	nbd-client -unix "$NBD_SOCK" /dev/nbd0 -connections "$1" -block-size 512 ||
		{ echo "nbd-client failed" >&2; return 1; }
	DEV=/dev/nbd0
	wait_blockdev "$DEV" 10
}
teardown_nbd() {
	nbd-client -d /dev/nbd0 >/dev/null 2>&1
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	rm -f "$NBD_SOCK"
	sleep 0.5
	rmmod nbd 2>/dev/null || { sleep 2; rmmod nbd; }
}

setup_buse() {
	local q=$1 args=$2 out info
	if [ ! -d /sys/module/buse ]; then
		insmod "$BUSE_KO" || { echo "insmod $BUSE_KO failed" >&2; return 1; }
	fi
	# shellcheck disable=SC2086  # driver and options
	out=$("$BUSE" add $args --size "$SIZE" --queues "$q" --max-io 1M) || return 1
	DEV=$out
	wait_blockdev "$DEV" 10 || return 1
	info=$("$BUSE" info "$DEV" --json) || return 1
	SERVER_PID=$(echo "$info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon_pid"])')
	echo "$info" >"$WORK/buse-info.json"
}
teardown_buse() {
	[ -n "$DEV" ] && "$BUSE" del "$DEV"
	rm -f /tmp/bench-file.img # the file rows' backing file
}

# The kernel's loop device over a file of its own (queues: loop has one).
setup_loop() {
	modprobe loop 2>/dev/null # built in on some kernels
	truncate -s "$SIZE" "$2" || return 1
	DEV=$(losetup --find --show "$2") || return 1
	ACCEPTED_QUEUES=1
	wait_blockdev "$DEV" 10
}
teardown_loop() {
	[ -n "$DEV" ] && losetup -d "$DEV"
	rm -f /tmp/bench-loop.img
}

# brd, the kernel's RAM disk, as the backing store of the kernel's loop
# device (direct I/O) and of BUSE's file driver (O_DIRECT): the comparison
# issue 13 asks for.  Arguments: "loop", or "buse DRIVER OPTIONS".  loop has
# one hardware queue; it gets as many fio jobs as BUSE (JOB_QUEUES), so
# both carry the same load.
BRD_ROLE=
setup_brd() {
	local kib=$(($(numfmt --from=iec "$SIZE") >> 10))
	modprobe brd rd_nr=1 rd_size="$kib" || return 1
	wait_blockdev /dev/ram0 10 || return 1
	BRD_ROLE=${2%% *}
	if [ "$BRD_ROLE" = loop ]; then
		modprobe loop 2>/dev/null
		DEV=$(losetup --find --show --direct-io=on /dev/ram0) || return 1
		[ "$(cat "/sys/block/${DEV##*/}/loop/dio")" = 1 ] ||
			{ echo "loop did not take --direct-io=on" >&2; return 1; }
		ACCEPTED_QUEUES=1 JOB_QUEUES=$1
		wait_blockdev "$DEV" 10
	else
		setup_buse "$1" "${2#buse }"
	fi
}
teardown_brd() {
	if [ "$BRD_ROLE" = loop ]; then
		[ -n "$DEV" ] && losetup -d "$DEV"
	else
		[ -n "$DEV" ] && "$BUSE" del "$DEV"
	fi
	sleep 0.5
	rmmod brd 2>/dev/null || { sleep 2; rmmod brd; }
}

# The test driver (tests/drivers/buse-testdrv), for the retained-write rows.
setup_testdrv() {
	local q=$1 args=$2
	if [ ! -d /sys/module/buse ]; then
		insmod "$BUSE_KO" || { echo "insmod $BUSE_KO failed" >&2; return 1; }
	fi
	# shellcheck disable=SC2086  # options
	DEV=$("$REPO/build/tests/buse-testdrv" --daemon $args --size "$SIZE" \
		--queues "$q" --max-io 1M) || return 1
	wait_blockdev "$DEV" 10 || return 1
	SERVER_PID=$("$BUSE" info "$DEV" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon_pid"])')
}
teardown_testdrv() {
	[ -n "$DEV" ] && "$BUSE" del "$DEV"
	rm -f /tmp/bench-retain.img
}

# --- fio -------------------------------------------------------------------------
# run_fio TAG WORKLOAD-ROW JOBS [EXTRA FIO OPTIONS]: one measurement; appends a
# manifest line: kind system workload queues-asked queues-accepted jobs status
# fio-json cpu-busy-jiffies cpu-total-jiffies server-ticks elapsed-s
# system-context-switches server-context-switches.
run_fio() {
	local tag=$1 row=$2 jobs=${3%@*} cpu=
	[[ $3 == *@* ]] && cpu=${3#*@}
	shift 3
	local name rw bs qd _jobs _label
	IFS='|' read -r name rw bs qd _jobs _label <<<"$row"
	local json=$RAW/$tag.json err=$RAW/$tag.err
	local opts=(--name="$name" --filename="$DEV" --ioengine=io_uring
		--direct=1 --rw="$rw" --bs="$bs" --iodepth="$qd"
		--numjobs="$jobs" --group_reporting --time_based
		--ramp_time="$RAMP" --runtime="$RUNTIME" --norandommap
		--randrepeat=0 --lat_percentiles=1 --eta=never
		--output-format=json --output="$json")
	if [ -n "$cpu" ]; then
		opts+=(--cpus_allowed="$cpu")
	elif [ "$jobs" -gt 1 ]; then
		opts+=(--cpus_allowed="0-$((NPROC - 1))" --cpus_allowed_policy=split)
	fi
	local c0 c1 s0 s1 t0 t1 x0 x1 y0 y1 rc=0
	read -r -a c0 < <(cpu_jiffies)
	s0=$(proc_ticks "$SERVER_PID")
	x0=$(sys_ctxt)
	y0=$(proc_ctxsw "$SERVER_PID")
	t0=$(date +%s.%N)
	timeout -k 5 $((RAMP + RUNTIME + 90)) fio "${opts[@]}" "$@" >"$err" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	x1=$(sys_ctxt)
	y1=$(proc_ctxsw "$SERVER_PID")
	s1=$(proc_ticks "$SERVER_PID")
	read -r -a c1 < <(cpu_jiffies)
	local status=ok
	if [ "$rc" -ne 0 ] || [ ! -s "$json" ]; then
		status="failed:$rc"
		say "$tag: fio failed (status $rc): $(tail -n 3 "$err" | tr '\n' ' ')"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$KIND_TAG" "$SYS_NAME" "$name" "$ASKED_QUEUES" "$ACCEPTED_QUEUES" "$jobs" \
		"$status" "$tag.json" "$((c1[0] - c0[0]))" "$((c1[1] - c0[1]))" \
		"$((s1 - s0))" "$(echo "$t1 $t0" | awk '{ printf "%.2f", $1 - $2 }')" \
		"$((x1 - x0))" "$((y1 - y0))" >>"$MANIFEST"
	[ "$status" = ok ] && summary "$json" "$tag"
	return 0
}

# One line per measurement on the console, so a run can be followed live.
summary() {
	python3 - "$1" "$2" <<-'EOF' 2>/dev/null
	import json, sys
	d = json.load(open(sys.argv[1]))
	j = d["jobs"][0]
	iops = j["read"]["iops"] + j["write"]["iops"]
	bw = (j["read"]["bw_bytes"] + j["write"]["bw_bytes"]) / 2**20
	d = j["read"] if j["read"]["total_ios"] else j["write"]
	lat = d["lat_ns"]
	p99 = lat.get("percentile", {}).get("99.000000", 0)
	print("[bench] %-32s %10.0f IOPS %9.1f MiB/s  lat mean %8.1f us p99 %8.1f us"
	      % (sys.argv[2], iops, bw, lat["mean"] / 1e3, p99 / 1e3))
	EOF
}

# jobs_for ROW QUEUES: the number of fio jobs of a workload.
jobs_for() {
	local j
	IFS='|' read -r _ _ _ _ j _ <<<"$1"
	if [ "$j" = Q ]; then echo "$2"; else echo "$j"; fi
}

# with_system ROW QUEUES: set the system up (SYS_* set); non-zero if it failed.
with_system() {
	local row=$1 q=$2 store hook
	IFS='|' read -r SYS_NAME SYS_KIND SYS_ARGS store _ hook <<<"$row"
	DEV='' SERVER_PID='' ACCEPTED_QUEUES='' JOB_QUEUES='' ASKED_QUEUES=$q
	say "setting up $SYS_NAME ($SYS_KIND $SYS_ARGS, $q queues)"
	if ! "setup_$SYS_KIND" "$q" "$SYS_ARGS" >"$WORK/setup.log" 2>&1; then
		say "$SYS_NAME: setup failed: $(tail -n 5 "$WORK/setup.log" | tr '\n' ' ')"
		cp "$WORK/setup.log" "$RAW/$SYS_NAME.q$q.setup-error.txt"
		"teardown_$SYS_KIND" >/dev/null 2>&1
		return 1
	fi
	# What blk-mq really set up, whatever was asked.
	local mq=/sys/block/${DEV##*/}/mq
	[ -z "$ACCEPTED_QUEUES" ] && [ -d "$mq" ] &&
		ACCEPTED_QUEUES=$(find "$mq" -mindepth 1 -maxdepth 1 | wc -l)
	: "${ACCEPTED_QUEUES:=$q}"
	say "$SYS_NAME: $DEV, $ACCEPTED_QUEUES hardware queues$([ -n "$SERVER_PID" ] && echo ", server pid $SERVER_PID")"
	if [ -n "$hook" ]; then
		say "$SYS_NAME: $hook"
		eval "$hook" || say "$SYS_NAME: the set-up command failed (status $?)"
	fi
	if [ "$store" = 1 ]; then
		# Every block written once, so that reads find data, not holes.
		local t0=$SECONDS
		fio --name=prefill --filename="$DEV" --ioengine=io_uring \
			--direct=1 --rw=write --bs=1m --iodepth=8 \
			>"$WORK/prefill.log" 2>&1 ||
			say "$SYS_NAME: prefill failed: $(tail -n 3 "$WORK/prefill.log" | tr '\n' ' ')"
		say "$SYS_NAME: pre-filled in $((SECONDS - t0)) s"
	fi
	return 0
}

without_system() {
	if ! "teardown_$SYS_KIND" >"$WORK/teardown.log" 2>&1; then
		say "$SYS_NAME: teardown failed: $(tail -n 5 "$WORK/teardown.log" | tr '\n' ' ')"
	fi
	DEV='' SERVER_PID=''
}

# --- the runs ------------------------------------------------------------------
say "$NPROC CPUs, kernel $(uname -r), runtime ${RUNTIME}s + ${RAMP}s ramp, size $SIZE, $QUEUES queues"
say "systems: $(printf '%s ' "${RUN_SYSTEMS[@]%%|*}")"
say "workloads: $(printf '%s ' "${RUN_WORKLOADS[@]%%|*}")"

KIND_TAG=main
for srow in "${RUN_SYSTEMS[@]}"; do
	if ! with_system "$srow" "$QUEUES"; then
		printf '%s\tfailed\t%s\n' "$SYS_NAME" "$SYS_NAME.q$QUEUES.setup-error.txt" >>"$RAW/system-status.tsv"
		continue
	fi
	printf '%s\tok\t\n' "$SYS_NAME" >>"$RAW/system-status.tsv"
	[ "$SYS_KIND" = buse ] && cp "$WORK/buse-info.json" "$RAW/$SYS_NAME.info.json"
	for wrow in "${RUN_WORKLOADS[@]}"; do
		run_fio "$SYS_NAME.${wrow%%|*}" "$wrow" "$(jobs_for "$wrow" "${JOB_QUEUES:-$ACCEPTED_QUEUES}")"
	done
	without_system
done

row_named() { # NAME ROW...: print the row called NAME
	local want=$1 row
	shift
	for row in "$@"; do [ "${row%%|*}" = "$want" ] && { echo "$row"; return 0; }; done
	return 1
}

if [ "$SCALING" != none ]; then
	KIND_TAG=scaling
	srow=$(row_named "$SCALING_SYSTEM" "${SYSTEMS[@]}")
	wrow=$(row_named "$SCALING_WORKLOAD" "${WORKLOADS[@]}")
	for q in ${SCALING//,/ }; do
		if ! with_system "$srow" "$q"; then
			printf '%s\t%s\t%s\t%s\t\t%s\t%s\t\t\t\t\t\n' scaling "$SYS_NAME" \
				"$SCALING_WORKLOAD" "$q" "$NPROC" "setup-failed" >>"$MANIFEST"
			continue
		fi
		# The same load for every queue count: one job per CPU.
		[ "$ACCEPTED_QUEUES" = "$q" ] ||
			say "asked for $q queues, the kernel accepted $ACCEPTED_QUEUES"
		run_fio "scaling.q$q" "$wrow" "$NPROC"
		without_system
	done
fi

# --- perf profiles -------------------------------------------------------------
# perf_profile SYSTEM-ROW WORKLOAD: profile that workload on it: cpu-clock
# samples of every CPU (TCG has no PMU), call graphs, and software counters.
perf_profile() {
	local srow=$1 wrow tag secs=8 dir=$OUT/perf jobs
	wrow=$(row_named "$2" "${WORKLOADS[@]}") || { say "perf: unknown workload $2"; return 0; }
	with_system "$srow" "$QUEUES" || return 0
	jobs=$(jobs_for "$wrow" "$ACCEPTED_QUEUES")
	tag=$SYS_NAME.${wrow%%|*}
	mkdir -p "$dir"
	echo 0 >/proc/sys/kernel/kptr_restrict
	echo -1 >/proc/sys/kernel/perf_event_paranoid
	local rw bs qd
	IFS='|' read -r _ rw bs qd _ _ <<<"$wrow"
	# perf record starts fio itself: its start-up (reading every process's
	# maps over 9p under emulation) takes many seconds, so a recording
	# started next to a running fio would miss it.  -D enables the events
	# once fio's ramp is over; -B skips the slow build-id pass at the end.
	# perf stat counts a window in the middle of the run.
	(for _ in $(seq 1200); do pgrep -x fio >/dev/null && break; sleep 0.1; done
	 sleep $((RAMP + 4)) && perf stat -a -x, -o "$dir/$tag.stat.csv" \
		-e task-clock,context-switches,cpu-migrations,page-faults \
		-- sleep 4 >/dev/null 2>&1) &
	local spid=$!
	say "perf: recording $tag (${secs}s after the ramp)"
	local c0 c1
	c0=$(awk '/^ctxt/ { print $2 }' /proc/stat)
	perf record -q -B -e cpu-clock -F 999 -a -g -D $(((RAMP + 2) * 1000)) \
		-o "$WORK/perf.data" -- \
		fio --name=perf --filename="$DEV" --ioengine=io_uring --direct=1 \
		--rw="$rw" --bs="$bs" --iodepth="$qd" --numjobs="$jobs" \
		--cpus_allowed="0-$((NPROC - 1))" --cpus_allowed_policy=split \
		--group_reporting --time_based --norandommap --randrepeat=0 \
		--ramp_time="$RAMP" --runtime=$((secs + 6)) --eta=never \
		--output-format=json --output="$dir/$tag.fio.json" \
		>"$dir/$tag.record.log" 2>&1
	c1=$(awk '/^ctxt/ { print $2 }' /proc/stat)
	echo "context switches (whole run, /proc/stat ctxt): $((c1 - c0))" >>"$dir/$tag.record.log"
	wait "$spid"
	# --kallsyms: Debian 12's perf (6.1) does not resolve a 6.12 kernel's
	# symbols on its own; this boot's table is the right one for any kernel.
	local rep=(perf report -i "$WORK/perf.data" --stdio --no-children
		--kallsyms=/proc/kallsyms)
	"${rep[@]}" -g none --sort comm --percent-limit 0.5 >"$dir/$tag.comm.txt" 2>/dev/null
	"${rep[@]}" -g none --sort dso --percent-limit 0.5 >"$dir/$tag.dso.txt" 2>/dev/null
	"${rep[@]}" -g none --sort comm,dso,sym --percent-limit 0.3 >"$dir/$tag.sym.txt" 2>/dev/null
	"${rep[@]}" -g none --sort sym --percent-limit 0.3 >"$dir/$tag.flat.txt" 2>/dev/null
	# Kernel frames are what matter: fio and the tool have no frame
	# pointers, so deeper (user) frames are noise.
	"${rep[@]}" -g graph,0.5,callee --max-stack 16 --sort sym --percent-limit 2 \
		>"$dir/$tag.callers.txt" 2>/dev/null
	say "perf: $tag done; top symbols:"
	grep -v '^#' "$dir/$tag.sym.txt" | grep -v '^$' | head -n 15
	without_system
}
if [ "$PERF" != none ]; then
	for name in ${PERF//,/ }; do
		srow=$(row_named "$name" "${SYSTEMS[@]}" "${EXPERIMENTS[@]}") || { say "perf: unknown system $name"; continue; }
		for wl in ${PERF_WORKLOADS//,/ }; do
			perf_profile "$srow" "$wl"
		done
	done
fi

# --- results ---------------------------------------------------------------------
[ -d /sys/module/buse ] && { rmmod buse 2>/dev/null || say "rmmod buse failed"; }
printf 'finished\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$RAW/config.tsv"
rm -rf "$WORK"
say "collecting results"
python3 "$REPO/bench/report.py" collect "$OUT" || { say "collect failed"; exit 1; }
say "wrote $OUT/results.json"
exit 0
}
