#!/bin/bash
# timeout: 500
# `buse add --supervise`: the daemon is killed with kill -9 ten times under
# verified fio and the supervisor starts a new one in recover mode each
# time, with no manual step: fio sees no error and no I/O waits 2 s or more.
# A daemon that keeps dying at once makes the supervisor back off and give
# up, leaving the device orphaned; `buse del` and SIGTERM end a supervised
# device and its supervisor.  A driver whose data lives in the daemon (ram)
# cannot be supervised.
. "$(dirname "$0")/lib.sh"
load_module

field() { # field N KEY: a top-level field of `buse info N --json`
	"$BUSE" info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
ppid_of() { awk '{print $4}' "/proc/$1/stat"; }
# new_daemon N OLD: waits (10 s) until a daemon other than OLD serves N.
new_daemon() {
	local pid
	for _ in $(seq 200); do
		pid=$(field "$1" daemon_pid 2>/dev/null)
		if [ -n "$pid" ] && [ "$pid" != 0 ] && [ "$pid" != "$2" ] &&
			[ "$(field "$1" state)" = live ]; then
			echo "$pid"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

rc=0
err=$("$BUSE" add ram --size 16M --supervise 2>&1) || rc=$?
[ "$rc" -eq 2 ] || die "--supervise with ram: status $rc, want 2"
grep -q "keeps the data in its daemon" <<<"$err" || die "ram refusal: $err"

img=$TEST_TMP/disk.img
slog=$TEST_TMP/supervise.log
dev=$(buse_add file --path "$img" --size 96M --queues 2 --supervise \
	--recovery-timeout 60 --log "$slog") || die "add --supervise"
n=$(dev_id "$dev")
"$BUSE" info "$n" | grep -q recoverable || die "--supervise did not make it recoverable"
pid=$(field "$n" daemon_pid)
sup=$(ppid_of "$pid")
[ "$sup" != 1 ] && alive "$sup" || die "no supervisor above daemon $pid"

fio --name=supervise --filename="$dev" --ioengine=io_uring --direct=1 \
	--rw=write --bs=16k --iodepth=16 --numjobs=2 --offset_increment=48m \
	--size=48m --rate=1000k --cpus_allowed=0-1 --cpus_allowed_policy=split \
	--verify=crc32c --do_verify=1 --verify_fatal=1 \
	--output-format=json --output="$TEST_TMP/fio.json" &
fio_pid=$!
for i in $(seq 10); do
	sleep 2
	alive $fio_pid || die "fio ended before kill $i"
	kill -9 "$pid"
	new=$(new_daemon "$n" "$pid") || die "kill $i: no new daemon within 10 s ($(tail -n 3 "$slog"))"
	[ "$(ppid_of "$new")" = "$sup" ] || die "kill $i: daemon $new is not the supervisor's"
	log "kill $i: daemon $pid killed, $new took over"
	pid=$new
done
wait $fio_pid || { cat "$TEST_TMP/fio.json"; die "fio failed across the restarts"; }
python3 - "$TEST_TMP/fio.json" <<'PY' || die "fio: errors or a long pause"
import json, sys
text = open(sys.argv[1]).read()
jobs = json.loads(text[text.index("{"):])["jobs"]  # fio may say things first
worst = 0
for j in jobs:
    if j["error"]:
        sys.exit(f"job {j['jobname']}: error {j['error']}")
    for d in ("read", "write"):
        worst = max(worst, j[d]["lat_ns"]["max"])
print(f"longest I/O across the restarts: {worst / 1e6:.0f} ms")
if worst >= 2e9:
    sys.exit("an I/O waited 2 s or more")
PY
[ "$(grep -c "took over" "$slog")" -ge 10 ] || die "supervisor log: $(cat "$slog")"

# buse del: the device goes, and so does its supervisor.
buse_del "$n"
for _ in $(seq 100); do alive "$sup" || break; sleep 0.1; done
alive "$sup" && die "supervisor $sup outlived buse del"
grep -q "deleted; the supervisor ends" "$slog" || die "no end in the log: $(tail -n 3 "$slog")"

# A daemon that dies at once, again and again: back off, then give up.
: >"$slog"
dev=$(buse_add file --path "$img" --supervise --recovery-timeout 60 --log "$slog") || die "add 2"
n=$(dev_id "$dev")
pid=$(field "$n" daemon_pid)
sup=$(ppid_of "$pid")
# The supervisor's next child, as soon as it exists: killed at once, it
# never serves, which is a fast failure.
next_child() {
	local c
	for _ in $(seq 400); do
		alive "$sup" || return 1
		c=$(pgrep -P "$sup" | head -n 1)
		[ -n "$c" ] && [ "$c" != "$1" ] && { echo "$c"; return 0; }
		sleep 0.02
	done
	return 1
}
sleep 1.5   # the first daemon served a while: its death is not fast
start=$(date +%s.%N)
kills=0
while alive "$sup" && [ $kills -lt 10 ]; do
	kill -9 "$pid"
	kills=$((kills + 1))
	pid=$(next_child "$pid") || break
done
for _ in $(seq 100); do alive "$sup" || break; sleep 0.1; done
alive "$sup" && die "the supervisor did not give up after $kills kills"
took=$(echo "$(date +%s.%N) - $start" | bc)
grep -q "fast failures in a row, giving up" "$slog" || die "no give-up in the log: $(cat "$slog")"
[ "$kills" -eq 6 ] || die "gave up after $kills kills, want 6 (one, then five fast)"
# 0.25 + 0.5 + 1 + 2 s of back-off between the fast failures.
awk -v t="$took" 'BEGIN { exit !(t >= 3.5) }' || die "gave up after ${took}s: no back-off"
[ "$(field "$n" state)" = orphaned ] || die "after giving up the device is $(field "$n" state), want orphaned"
"$BUSE" recover "$n" file --path "$img" >/dev/null || die "manual recover after the give-up"
dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct status=none || die "I/O after the manual recover"
buse_del "$n"
log "gave up after $kills kills in ${took}s; manual recover works"

# SIGTERM to the supervisor (as systemd stops it): device deleted, all gone.
dev=$(buse_add file --path "$img" --supervise --log "$slog") || die "add 3"
n=$(dev_id "$dev")
pid=$(field "$n" daemon_pid)
sup=$(ppid_of "$pid")
kill -TERM "$sup"
for _ in $(seq 100); do alive "$sup" || alive "$pid" || break; sleep 0.1; done
alive "$sup" && die "supervisor alive after SIGTERM"
alive "$pid" && die "daemon alive after the supervisor's SIGTERM"
"$BUSE" info "$n" >/dev/null 2>&1 && die "device left after SIGTERM to the supervisor"
log "supervise ok"
