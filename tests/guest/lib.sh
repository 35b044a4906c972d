# shellcheck shell=bash
# tests/guest/lib.sh - helpers for the guest tests (tests/guest/t_*.sh).
#
# A test is an executable bash script run as root inside the test guest by
# tests/guest/run.sh; it passes by exiting 0.  Start it with
#
#   #!/bin/bash
#   # What this test checks.   (optional: "# timeout: 600" for a longer limit)
#   . "$(dirname "$0")/lib.sh"
#
# Sourcing this file sets "set -Eeuo pipefail", cds to the repository root,
# creates $TEST_TMP (removed at exit) and installs an EXIT trap that runs the
# commands registered with on_exit (last first) and then kill_daemons.
#
# Variables: REPO, BUSE (the tool, build/buse or $BUSE_TOOL), BUSE_KO
#            (kernel/buse.ko or $BUSE_KO),
#            TEST_NAME, TEST_TMP.
# Functions: log, die, require_cmd, on_exit, wait_for_dev, wait_gone,
#            load_module, unload_module, start_daemon, kill_daemons,
#            fio_verify, and for the buse tool: buse_add, buse_del, dev_id.
# At exit, buse devices still present are deleted (buse del) before the
# daemons are killed, so that the next test starts clean.

set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO"
# $BUSE_TOOL and $BUSE_KO (passed in by tests/vm/run) select an installed
# tool and another module, e.g. /usr/sbin/buse and a DKMS-built buse.ko.
BUSE=${BUSE_TOOL:-$REPO/build/buse}
BUSE_KO=${BUSE_KO:-$REPO/kernel/buse.ko}
TEST_NAME=$(basename "$0" .sh)
TEST_TMP=$(mktemp -d "/tmp/$TEST_NAME.XXXXXX")
export REPO BUSE BUSE_KO TEST_NAME TEST_TMP

_ON_EXIT=()      # cleanup commands, run last-registered first
DAEMON_PIDS=()   # pids started by start_daemon

# log MESSAGE...: progress message on stdout.
log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }

# die MESSAGE...: fail the test.
die() {
	printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

# require_cmd CMD...: fail unless every CMD is in PATH.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "command not found: $c"
	done
}

# on_exit 'SHELL COMMAND': run it when the test ends, whatever the outcome.
on_exit() { _ON_EXIT+=("$1"); }

# cleanup: the EXIT trap.  Keeps the test's exit status.
cleanup() {
	local rc=$? i
	set +e
	trap - ERR
	for ((i = ${#_ON_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${_ON_EXIT[i]}" || log "cleanup command failed: ${_ON_EXIT[i]}"
	done
	_buse_del_all
	# shellcheck disable=SC2119  # no arguments: all daemons
	kill_daemons
	rm -rf "$TEST_TMP"
	exit "$rc"
}
trap cleanup EXIT
# On a signal (e.g. timeout(1) in run.sh) exit, which runs cleanup.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'echo "[$TEST_NAME] line $LINENO: command failed (status $?): $BASH_COMMAND" >&2' ERR

# wait_for_dev PATH [SECONDS=10]: wait until PATH is a block device.
wait_for_dev() {
	local path=$1 limit=${2:-10} i
	for ((i = 0; i < limit * 10; i++)); do
		[ -b "$path" ] && return 0
		sleep 0.1
	done
	die "$path did not appear within ${limit}s"
}

# wait_gone PATH [SECONDS=10]: wait until PATH no longer exists.
wait_gone() {
	local path=$1 limit=${2:-10} i
	for ((i = 0; i < limit * 10; i++)); do
		[ -e "$path" ] || return 0
		sleep 0.1
	done
	die "$path still exists after ${limit}s"
}

# load_module [PARAM=VALUE...]: insmod kernel/buse.ko unless it is loaded.
load_module() {
	[ -d /sys/module/buse ] && return 0
	[ -f "$BUSE_KO" ] || die "$BUSE_KO not built (run make)"
	insmod "$BUSE_KO" "$@" || die "insmod $BUSE_KO failed"
}

# unload_module: rmmod buse if it is loaded (retries while it is busy).
unload_module() {
	local i
	[ -d /sys/module/buse ] || return 0
	for ((i = 0; i < 50; i++)); do
		rmmod buse 2>/dev/null && return 0
		sleep 0.2
	done
	rmmod buse || die "rmmod buse failed"
}

# start_daemon CMD [ARGS...]: run CMD in the background, output to
# $TEST_TMP/daemon.N.log; its pid is in $DAEMON_PID and is stopped by
# kill_daemons (at the latest when the test ends).
start_daemon() {
	local logf=$TEST_TMP/daemon.${#DAEMON_PIDS[@]}.log
	"$@" >"$logf" 2>&1 </dev/null &
	DAEMON_PID=$!
	DAEMON_PIDS+=("$DAEMON_PID")
	log "started daemon $DAEMON_PID: $* (log $logf)"
}

# dump_threads PID: where each thread of PID waits (kernel stack) and the
# device's log state, for a test that found a daemon stuck.
dump_threads() {
	local t
	for t in /proc/"$1"/task/*; do
		[ -d "$t" ] || continue
		log "thread ${t##*/} $(cat "$t/comm" 2>/dev/null) in $(cat "$t/wchan" 2>/dev/null):"
		sed "s/^/[$TEST_NAME]     /" "$t/stack" 2>/dev/null || true
	done
	"$BUSE" list --json 2>/dev/null | sed "s/^/[$TEST_NAME]   /" || true
}

# kill_daemons [PID...]: SIGTERM the given daemons (default: all started with
# start_daemon), wait up to 5 s, then SIGKILL; reaps them.
# shellcheck disable=SC2120  # arguments are optional
kill_daemons() {
	local pids=("$@") p i alive
	[ $# -gt 0 ] || pids=("${DAEMON_PIDS[@]}")
	[ ${#pids[@]} -gt 0 ] || return 0
	kill -TERM "${pids[@]}" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		alive=0
		for p in "${pids[@]}"; do
			kill -0 "$p" 2>/dev/null && alive=1
		done
		[ "$alive" = 1 ] || break
		sleep 0.1
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# Forget them, so that a later kill_daemons cannot hit a reused pid.
	local keep=()
	for p in "${DAEMON_PIDS[@]}"; do
		[[ " ${pids[*]} " == *" $p "* ]] || keep+=("$p")
	done
	DAEMON_PIDS=("${keep[@]}")
}

# fio_verify DEV [FIO OPTIONS...]: write DEV with fio and read it back with
# crc32c verification (io_uring, O_DIRECT); fails the test on any I/O or
# verify error.  Defaults: 4k random writes, iodepth 16, the first 64 MiB
# (or the whole device if smaller); the options given override them, e.g.
#   fio_verify /dev/buse0 --bs=64k --rw=write --iodepth=32 --numjobs=2
# (with numjobs > 1, give each job its own --offset_increment or --size).
fio_verify() {
	local dev=$1 size=64M bytes out rc=0
	shift
	if [ -b "$dev" ]; then
		bytes=$(blockdev --getsize64 "$dev")
		[ "$bytes" -ge $((64 << 20)) ] || size=$bytes
	fi
	out=$TEST_TMP/fio.$$.$RANDOM.log
	log "fio verify $dev $*"
	(cd "$TEST_TMP" && fio --name=verify --filename="$dev" \
		--ioengine=io_uring --direct=1 \
		--rw=randwrite --bs=4k --iodepth=16 --size="$size" \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--verify_state_save=0 --exitall_on_error=1 --group_reporting \
		"$@" \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--direct=1 --ioengine=io_uring) >"$out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] || grep -Eq 'err= *[1-9]|verify failed|bad magic|bad header' "$out"; then
		cat "$out" >&2
		die "fio verify on $dev failed (status $rc)"
	fi
	grep -E '^ *(READ|WRITE):' "$out" | sed "s/^ */[$TEST_NAME]   /" || true
}

# --- the buse tool -------------------------------------------------------------

# buse_add DRIVER [OPTIONS...]: create a device with `buse add`, wait for its
# node and print its path (/dev/buseN):   dev=$(buse_add ram --size 64M)
buse_add() {
	local dev
	dev=$("$BUSE" add "$@") || return 1
	case "$dev" in
	/dev/buse[0-9]*) ;;
	*) echo "buse_add: unexpected output of buse add: '$dev'" >&2; return 1 ;;
	esac
	wait_for_dev "$dev"
	echo "$dev"
}

# buse_del DEV: `buse del DEV` (DEV is N, buseN or /dev/buseN); fails the
# test if that fails.
buse_del() {
	"$BUSE" del "$1" || die "buse del $1 failed"
}

# dev_id DEV: the number N of /dev/buseN (or buseN).
dev_id() {
	local n=${1##*/}
	n=${n#buse}
	[[ $n =~ ^[0-9]+$ ]] || die "dev_id: not a buse device: $1"
	echo "$n"
}

# Deletes every buse device still present (used by cleanup).  The kernel's
# list, not /sys/block: a device added but never started has no disk there,
# and left behind it would keep the module from unloading in later tests.
_buse_del_all() {
	local n
	[ -d /sys/module/buse ] && [ -x "$BUSE" ] || return 0
	for n in $(timeout 30 "$BUSE" list --json 2>/dev/null |
		grep -o '"dev_id": *[0-9]*' | grep -o '[0-9]*$'); do
		log "cleanup: deleting buse$n"
		timeout 30 "$BUSE" del "$n" --force || log "cleanup: buse del $n failed"
	done
}

# daemon_pid N: the pid of the daemon serving device N, from `buse info`.
daemon_pid() {
	"$BUSE" info "$1" --json |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["daemon_pid"])'
}

# alive PID: true while PID runs (a zombie counts as gone).
alive() {
	[ -e "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# testdrv_add [OPTIONS...]: start build/tests/buse-testdrv (the test driver
# with error injection and op counters) as a daemon; prints /dev/buseN.
TESTDRV=$REPO/build/tests/buse-testdrv
testdrv_add() {
	local dev
	dev=$("$TESTDRV" --daemon "$@") || return 1
	case "$dev" in
	/dev/buse[0-9]*) ;;
	*) echo "testdrv_add: unexpected output: '$dev'" >&2; return 1 ;;
	esac
	wait_for_dev "$dev"
	echo "$dev"
}

# fio_matrix DEV QUEUES: 12 verified jobs, one after another.  With two
# queues, two writers pinned to different CPUs (so to different hardware
# queues) work on separate halves at once.
fio_matrix() {
	local dev=$1 queues=$2 job=/tmp/matrix.fio bs rw qd
	{
		echo "[global]"
		echo "filename=$dev"
		echo "ioengine=io_uring"
		echo "direct=1"
		echo "verify=crc32c"
		echo "verify_fatal=1"
		echo "do_verify=1"
		echo "size=16m"
		echo "numjobs=$queues"
		echo "offset_increment=64m"
		echo "cpus_allowed=0-1"
		echo "cpus_allowed_policy=split"
		echo "group_reporting=1"
		for bs in 4k 64k 1m; do
			for rw in randwrite write; do
				for qd in 1 32; do
					echo "[$rw-$bs-qd$qd]"
					echo "stonewall"
					echo "rw=$rw"
					echo "bs=$bs"
					echo "iodepth=$qd"
				done
			done
		done
	} >"$job"
	fio "$job" >/tmp/matrix.out 2>&1 || { tail -40 /tmp/matrix.out; return 1; }
	if grep -Eq 'err= *[1-9]|verify failed|bad magic|bad header' /tmp/matrix.out; then
		grep -E 'err=|verify|bad' /tmp/matrix.out | head -20
		return 1
	fi
}
