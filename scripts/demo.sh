#!/bin/bash
# scripts/demo.sh - install what is needed, build, and run the main job
# (scripts/demo-job.sh) end to end: natively when this kernel can load
# modules and BUSE_DEMO_GUEST is not 1, otherwise inside the QEMU test guest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/deps.sh
if [ -e /proc/modules ] && [ "${BUSE_DEMO_GUEST:-0}" != 1 ] &&
	[ -d "/lib/modules/$(uname -r)/build" ]; then
	echo "demo: this kernel loads modules: running natively"
	make -j"$(nproc)"
	exec ./scripts/demo-job.sh
fi
kver=$(tests/vm/run --print-kernel)
echo "demo: this kernel cannot load modules: building for $kver and running in a QEMU guest"
make -j"$(nproc)" KVER="$kver"
exec tests/vm/run --kernel "$kver" -- scripts/demo-job.sh
