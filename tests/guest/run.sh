#!/bin/bash
# tests/guest/run.sh - run the guest tests.  Runs INSIDE the test guest, as
# root, normally as:   tests/vm/run -- tests/guest/run.sh [FILTER...]
#
# Runs every executable tests/guest/t_*.sh in sorted order, or only those
# whose name matches one of the FILTERs given as arguments or, without
# arguments, in $BUSE_TESTS (blank- or comma-separated).  A filter is a
# substring or glob of the test name ("t_00_smoke", "smoke", "t_1*"); a filter
# that matches no test counts as a failure.  $BUSE_TEST_DIR names another
# folder of tests to run instead (tests being written).
#
# Each test runs from the repository root with stdin from /dev/null, under
# timeout(1): $BUSE_TEST_TIMEOUT seconds (default 900), or the number in a
# "# timeout: SECONDS" line near the top of the test.  Limits are hang
# guards, several times a test's usual time, so a loaded machine passes.  Its output is shown
# live and saved to $BUSE_OUT/guest-tests/NAME.log (or /tmp/guest-tests/).
# Processes a test leaves behind in its process group are killed afterwards.
# A test fails if it exits non-zero, times out, or if new kernel warning
# lines (tests/vm/kernel-log-patterns) appear in dmesg while it runs.
#
# Prints "ok - NAME" / "not ok - NAME" per test (with the tail of the output
# on failure), and ends with the line "guest: N passed, N failed";
# exits 1 if any test failed.

set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)
# BUSE_TEST_DIR: run the tests of another folder.
TDIR=$(cd "${BUSE_TEST_DIR:-$HERE}" && pwd -P) || exit 1
PATTERNS=$REPO/tests/vm/kernel-log-patterns
DEFAULT_TIMEOUT=${BUSE_TEST_TIMEOUT:-900}
LOGDIR=${BUSE_OUT:-/tmp}/guest-tests
cd "$REPO" || exit 1

[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root (in the test guest)" >&2; exit 1; }
[ "${BUSE_GUEST:-}" = 1 ] ||
	echo "run.sh: warning: not inside the tests/vm guest (BUSE_GUEST unset)" >&2

rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
RESULTS=$LOGDIR/results.txt
SEEN=$LOGDIR/.kernel-problems-seen
: >"$RESULTS"
: >"$SEEN"

# Kernel log lines ("[  1.234567] text") of the current dmesg whose text
# matches a pattern.  (Same matching as tests/vm/run.)
kernel_problems() {
	dmesg 2>/dev/null | awk -v pf="$PATTERNS" '
		BEGIN {
			while ((getline p < pf) > 0)
				if (p !~ /^[ \t]*(#|$)/) pats[n++] = p
		}
		match($0, /^\[ *[0-9]+\.[0-9]+\] /) {
			text = substr($0, RLENGTH + 1)
			for (i = 0; i < n; i++)
				if (text ~ pats[i]) { print; break }
		}'
}

# Problem lines not reported before (timestamps make lines unique); all
# current ones are then remembered as seen.
new_kernel_problems() {
	local now
	now=$(kernel_problems)
	[ -n "$now" ] || return 0
	grep -vxF -f "$SEEN" <<<"$now" || true
	printf '%s\n' "$now" >>"$SEEN"
}

# --- which tests -------------------------------------------------------------
mapfile -t ALL < <(find "$TDIR" -maxdepth 1 -name 't_*.sh' -type f -perm -u+x \
	-printf '%f\n' | LC_ALL=C sort)
if [ $# -gt 0 ]; then
	FILTERS=("$@")
else
	filters=${BUSE_TESTS:-}
	read -ra FILTERS <<<"${filters//,/ }"
fi

pass=0
fail=0
record() { # record ok|not-ok NAME
	if [ "$1" = ok ]; then
		pass=$((pass + 1))
		echo "ok - $2" | tee -a "$RESULTS"
	else
		fail=$((fail + 1))
		echo "not ok - $2" | tee -a "$RESULTS"
	fi
}

SELECTED=()
if [ ${#FILTERS[@]} -eq 0 ]; then
	SELECTED=("${ALL[@]}")
else
	declare -A picked=()
	for f in "${FILTERS[@]}"; do
		f=${f##*/}
		f=${f%.sh}
		hit=0
		for t in "${ALL[@]}"; do
			# shellcheck disable=SC2053  # $f is a glob on purpose
			if [[ ${t%.sh} == *$f* ]]; then
				hit=1
				[ -n "${picked[$t]:-}" ] || SELECTED+=("$t")
				picked[$t]=1
			fi
		done
		if [ "$hit" = 0 ]; then
			echo "# no test matches '$f'"
			record not-ok "$f (no such test)"
		fi
	done
	# Keep the sorted order whatever the order of the filters.
	mapfile -t SELECTED < <(printf '%s\n' "${SELECTED[@]}" | LC_ALL=C sort)
fi

echo "# guest tests: ${#SELECTED[@]} selected, kernel $(uname -r), logs in $LOGDIR"

# Problems from before the first test (boot) are reported once, not blamed on
# a test; tests/vm/run flags them anyway.
boot_problems=$(new_kernel_problems)
if [ -n "$boot_problems" ]; then
	echo "# kernel problems before the first test:"
	sed 's/^/#   /' <<<"$boot_problems"
fi

# --- run them ----------------------------------------------------------------
for t in "${SELECTED[@]}"; do
	[ -n "$t" ] || continue
	name=${t%.sh}
	log=$LOGDIR/$name.log
	limit=$(sed -n '1,20s/^#[[:space:]]*timeout:[[:space:]]*\([0-9][0-9]*\).*/\1/p' \
		"$TDIR/$t" | head -n 1)
	limit=${limit:-$DEFAULT_TIMEOUT}

	echo "# --- $name (limit ${limit}s)"
	echo "<6>buse-test: begin $name" >/dev/kmsg 2>/dev/null
	start=$SECONDS
	# The output goes to a file that tail streams: a daemon the test leaves
	# running cannot keep a pipe open and stall the runner.
	: >"$log"
	timeout -k 10 "$limit" "$TDIR/$t" </dev/null >"$log" 2>&1 &
	tpid=$!
	tail -n +1 -s 0.2 -f --pid="$tpid" "$log" &
	tailpid=$!
	wait "$tpid"
	rc=$?
	wait "$tailpid" 2>/dev/null
	secs=$((SECONDS - start))
	echo "<6>buse-test: end $name rc=$rc" >/dev/kmsg 2>/dev/null

	# timeout(1) made its own process group; kill what the test left in it.
	if leftovers=$(pgrep -g "$tpid" 2>/dev/null) && [ -n "$leftovers" ]; then
		echo "# $name left processes behind, killing them:"
		ps -o pid,args -p "$(echo "$leftovers" | paste -sd,)" 2>/dev/null | sed 's/^/#   /'
		kill -KILL -- "-$tpid" 2>/dev/null
		sleep 0.5
	fi

	why=()
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		why+=("timed out after ${limit}s")
	elif [ "$rc" -ne 0 ]; then
		why+=("exit status $rc")
	fi
	problems=$(new_kernel_problems)
	[ -z "$problems" ] || why+=("new kernel warnings in dmesg")

	echo "# --- $name: ${secs}s"
	if [ ${#why[@]} -eq 0 ]; then
		record ok "$name"
	else
		record not-ok "$name"
		echo "# $name failed: $(IFS=';'; echo "${why[*]}")"
		if [ -n "$problems" ]; then
			echo "# kernel log:"
			head -n 40 <<<"$problems" | sed 's/^/#   /'
		fi
		echo "# last lines of $name's output:"
		tail -n 30 "$log" | sed 's/^/#   /'
	fi
done

echo "guest: $pass passed, $fail failed" | tee -a "$RESULTS"
[ "$fail" -eq 0 ]
