# shellcheck shell=bash
# tests/build/lib.sh - helpers for the build tests (tests/build/t_*.sh).
# Sourcing it sets "set -Eeuo pipefail", cds to the repository root, makes
# $T (a temporary folder, removed at exit along with what on_exit registers)
# and defines log, die and on_exit.
set -Eeuo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO"
NAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/buse-$NAME.XXXXXX")
_ON_EXIT=("rm -rf '$T'")
on_exit() { _ON_EXIT=("$*" "${_ON_EXIT[@]}"); }
_run_exit() {
	local c
	for c in "${_ON_EXIT[@]}"; do eval "$c" || true; done
}
trap _run_exit EXIT
log() { printf '[%s] %s\n' "$NAME" "$*"; }
die() { printf '[%s] FAIL: %s\n' "$NAME" "$*" >&2; exit 1; }
