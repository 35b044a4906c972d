#!/bin/bash
# scripts/check.sh - build BUSE and run every test; the one test command.
#
#   scripts/check.sh [--host-only | --guest-only] [-- TEST_FILTER...]
#
# Steps:
#   1. scripts/deps.sh            install missing Debian packages
#   2. make KVER=<guest kernel>   kernel module + userspace      (1 check)
#   3. make unit                  host unit tests, ASan/UBSan    (N checks)
#   3b. tests/bs3/run.sh          BS3 host tests against a loopback S3
#                                 server, one check per test binary/script
#   3c. tests/build/run.sh        build and packaging tests on the host
#                                 (install prefixes, kernel choice, DKMS,
#                                 Debian packages, man pages, completion,
#                                 systemd unit), one check per test
#   4. one guest boot (tests/vm/run) running tests/guest/run.sh (N checks)
#   4b. without a TEST_FILTER: the newest Debian 6.12 kernel installed, if
#      the main boot was another: the module built for it and a smoke boot
#      of a few guest tests on its image (N checks)
#      [TEST_FILTER...] or $BUSE_TESTS selects guest tests; if the guest did
#      not complete or its kernel log shows a warning, one more failure,
#      "guest kernel log clean / guest completed", is counted.
#      Around the boot, an S3 test server of its own (scripts/s3-server.sh,
#      build/s3-guest, port $BUSE_S3_GUEST_PORT or 18180) that the guest
#      reaches through one forwarded port (tests/vm/run --s3-port), and
#      tests/guest/bs3-host-helper.sh, which lets the BS3 outage test stop
#      that server for a while; a server that does not start is a failure.
# --host-only skips step 4, --guest-only skips steps 3, 3b and 3c.
#
# The module is built for the kernel the guest boots, by one rule
# (scripts/guest-kernel.sh, also make's default): $BUSE_KVER, else Debian's
# default kernel (linux-image-amd64's), else the newest kernel with an
# image, modules and headers.  $BUSE_VM_TIMEOUT (seconds, default 3000)
# limits the guest boot.  Guest results are kept in build/vm/check/.
#
# Ends with the line "N passed, N failed"; exits 1 if anything failed.

set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$REPO" || exit 1

HOST=1
GUEST=1
while [ $# -gt 0 ]; do
	case "$1" in
	--host-only) GUEST=0; shift ;;
	--guest-only) HOST=0; shift ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	--) shift; break ;;
	*) echo "check: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[ "$HOST$GUEST" != 00 ] || { echo "check: --host-only and --guest-only exclude each other" >&2; exit 2; }

PASSED=0
FAILED=0
REPORT=()   # one line per step, printed at the end

step() { printf '\n==== %s\n' "$*"; }
# add STEP PASSED FAILED [NOTE]
add() {
	PASSED=$((PASSED + $2))
	FAILED=$((FAILED + $3))
	REPORT+=("$(printf '%-8s %3d passed, %3d failed%s' "$1" "$2" "$3" "${4:+  ($4)}")")
}
# summary_of PREFIX FILE...: "P F" from the last "PREFIX P passed, F failed"
# line of the files, or nothing.
summary_of() {
	local prefix=$1
	shift
	cat "$@" 2>/dev/null | tr -d '\r' |
		sed -nE "s/^${prefix}([0-9]+) passed, ([0-9]+) failed\$/\1 \2/p" | tail -n 1
}

# add_run STEP PREFIX LOG RC WHAT: count a step from the last
# "PREFIX N passed, N failed" line of LOG (one more failure if there is none,
# or if WHAT exited RC != 0 with no failure counted), then list LOG's
# "FAIL: ..." and "not ok ..." lines under it.
add_run() {
	local p f
	read -r p f <<<"$(summary_of "$2" "$3")"
	if [ -z "${p:-}" ]; then
		add "$1" 0 1 "no '${2}N passed, N failed' line; $5 exited $4"
	elif [ "$4" -ne 0 ] && [ "$f" -eq 0 ]; then
		add "$1" "$p" 1 "$5 exited $4"
	else
		add "$1" "$p" "$f"
	fi
	while IFS= read -r line; do
		REPORT+=("         $line")
	done < <(tr -d '\r' <"$3" | grep -E '^(FAIL: |not ok )')
}

# count_guest STEP OUT RC: count a guest boot's results from run.sh's
# results (the console is the fallback); one more failure if the guest did
# not complete, its kernel log was not clean or tests/vm/run exited RC != 0
# with no failure counted.
count_guest() {
	local step=$1 out=$2 rc=$3 p f note= extra=0 line
	read -r p f <<<"$(summary_of 'guest: ' "$out/guest-tests/results.txt")"
	[ -n "${p:-}" ] || read -r p f <<<"$(summary_of 'guest: ' "$out/console.log")"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 125 ]; then
		extra=1
		note="guest kernel log clean / guest completed: FAILED (tests/vm/run exited $rc)"
	elif [ -z "${p:-}" ]; then
		extra=1
		note="no 'guest: N passed, N failed' line; tests/vm/run exited $rc"
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		extra=1
		note="tests/vm/run exited $rc"
	fi
	add "$step" "${p:-0}" $((${f:-0} + extra)) "$note"
	while IFS= read -r line; do
		REPORT+=("         $line")
	done < <(grep '^not ok' "$out/guest-tests/results.txt" 2>/dev/null)
}

LOGDIR=$REPO/build/check
mkdir -p "$LOGDIR"

# --- 1. packages -------------------------------------------------------------
step "dependencies (scripts/deps.sh)"
if ! ./scripts/deps.sh; then
	add deps 0 1 "scripts/deps.sh failed"
fi

KVER=${BUSE_KVER:-$(tests/vm/run --print-kernel 2>/dev/null)}
if [ -z "$KVER" ]; then
	echo "check: no bootable kernel found (need linux-image-amd64)" >&2
	add kernel 0 1 "no bootable kernel"
fi
export BUSE_KVER=$KVER

# --- 2. build ----------------------------------------------------------------
step "build: make KVER=$KVER"
BUILD_OK=0
if [ -n "$KVER" ] && make -j"$(nproc)" KVER="$KVER"; then
	BUILD_OK=1
	add make 1 0
else
	add make 0 1 "make failed"
fi

# --- 3. host unit tests ------------------------------------------------------
if [ "$HOST" = 1 ]; then
	step "host unit tests: make unit"
	make -j"$(nproc)" KVER="$KVER" unit 2>&1 | tee "$LOGDIR/unit.log"
	add_run unit 'unit: ' "$LOGDIR/unit.log" "${PIPESTATUS[0]}" "make unit"
fi

# --- 3b. BS3 host tests against a loopback S3 server ------------------------
if [ "$HOST" = 1 ]; then
	step "BS3 host tests: tests/bs3/run.sh"
	if [ "$BUILD_OK" = 0 ]; then
		add bs3-host 0 1 "skipped: the build failed"
	else
		tests/bs3/run.sh 2>&1 | tee "$LOGDIR/bs3-host.log"
		add_run bs3-host 'bs3-host: ' "$LOGDIR/bs3-host.log" \
			"${PIPESTATUS[0]}" tests/bs3/run.sh
	fi
fi

# --- 3c. build and packaging tests -------------------------------------------
if [ "$HOST" = 1 ]; then
	step "build and packaging tests: tests/build/run.sh"
	if [ "$BUILD_OK" = 0 ]; then
		add build 0 1 "skipped: the build failed"
	else
		tests/build/run.sh 2>&1 | tee "$LOGDIR/build-tests.log"
		add_run build 'build: ' "$LOGDIR/build-tests.log" \
			"${PIPESTATUS[0]}" tests/build/run.sh
	fi
fi

# --- 4. guest tests ----------------------------------------------------------
if [ "$GUEST" = 1 ]; then
	step "guest tests: tests/vm/run -- tests/guest/run.sh $*"
	if [ "$BUILD_OK" = 0 ]; then
		echo "check: skipped, the build failed"
		add guest 0 1 "skipped: the build failed"
	else
		OUT=$REPO/build/vm/check
		rm -rf "$OUT"
		mkdir -p "$OUT"
		# BS3 guest tests: an S3 server for the guest, and the helper.
		S3G_DIR=$REPO/build/s3-guest
		S3G_PORT=${BUSE_S3_GUEST_PORT:-18180}
		S3G_ARGS=()
		S3G_HELPER=
		rm -rf "$S3G_DIR"
		if scripts/s3-server.sh start --dir "$S3G_DIR" --port "$S3G_PORT"; then
			S3G_ARGS=(--s3-port "$S3G_PORT")
			tests/guest/bs3-host-helper.sh "$OUT" "$S3G_DIR" \
				>"$LOGDIR/bs3-host-helper.log" 2>&1 &
			S3G_HELPER=$!
		else
			add s3 0 1 "the guest's S3 server did not start (scripts/s3-server.sh)"
		fi
		tests/vm/run --timeout "${BUSE_VM_TIMEOUT:-3000}" --out "$OUT" \
			"${S3G_ARGS[@]}" -- tests/guest/run.sh "$@"
		rc=$?
		if [ -n "$S3G_HELPER" ]; then
			kill "$S3G_HELPER" 2>/dev/null
			wait "$S3G_HELPER" 2>/dev/null
		fi
		[ ${#S3G_ARGS[@]} -eq 0 ] || scripts/s3-server.sh stop --dir "$S3G_DIR"
		count_guest guest "$OUT" "$rc"
		echo "check: guest logs in $OUT (console.log, dmesg.txt, guest-tests/)"
	fi
fi

# --- 4b. the second kernel: a smoke boot -------------------------------------
# The newest installed Debian 6.12 kernel with image, modules and headers,
# if the main boot was another: the module built for it (from a copy of the
# sources, so the main build stays), and a few guest tests on its image.
# (t_30 and t_75_recovery are left to the main boot: t_75_supervise already
# runs verified fio across ten kill -9s and recoveries, and CI time counts.)
SMOKE_TESTS=(t_00_smoke t_41_discard_zeroes t_42_flush t_50_ext4
	t_75_supervise t_81_writeback_data t_90_unload)
K2=
for d in /lib/modules/6.12.*+deb12-amd64; do
	v=${d##*/}
	[ -f "/boot/vmlinuz-$v" ] && [ -d "$d/build" ] && [ -d "$d/kernel" ] && K2=$v
done
if [ "$GUEST" = 1 ] && [ $# -eq 0 ] && [ -z "${BUSE_TESTS:-}" ] &&
	[ "$BUILD_OK" = 1 ] && [ -n "$K2" ] && [ "$K2" != "$KVER" ]; then
	step "second kernel $K2: module build and smoke boot (${SMOKE_TESTS[*]})"
	K2SRC=$REPO/build/k2/$K2
	rm -rf "$K2SRC"
	mkdir -p "$K2SRC/kernel"
	cp kernel/Makefile kernel/*.[ch] "$K2SRC/kernel/" && cp -r include "$K2SRC/"
	if make -C "/lib/modules/$K2/build" M="$K2SRC/kernel" modules \
		>"$LOGDIR/module-$K2.log" 2>&1; then
		OUT2=$REPO/build/vm/check-$K2
		rm -rf "$OUT2"
		mkdir -p "$OUT2"
		BUSE_KO=$K2SRC/kernel/buse.ko tests/vm/run --kernel "$K2" \
			--timeout 1800 --out "$OUT2" -- tests/guest/run.sh "${SMOKE_TESTS[@]}"
		count_guest "guest-$K2" "$OUT2" $?
		echo "check: $K2 guest logs in $OUT2"
	else
		tail -n 20 "$LOGDIR/module-$K2.log"
		add "module-$K2" 0 1 "the module did not build for $K2 ($LOGDIR/module-$K2.log)"
	fi
fi

# --- summary -----------------------------------------------------------------
step "summary (kernel $KVER)"
printf '%s\n' "${REPORT[@]}"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
