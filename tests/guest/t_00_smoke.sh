#!/bin/bash
# Smoke test: the guest has the tools the other tests need, and the BUSE
# module is built, for the kernel the guest is running.
. "$(dirname "$0")/lib.sh"

require_cmd fio mkfs.ext4 insmod rmmod modinfo blockdev
[ -f "$BUSE_KO" ] || die "$BUSE_KO does not exist (run make)"

# A module built against other headers would not load: say so clearly.
vermagic=$(modinfo -F vermagic "$BUSE_KO")
case "$vermagic" in
"$(uname -r) "*) ;;
*) die "$BUSE_KO is built for '${vermagic%% *}', the guest runs $(uname -r) (make KVER=$(uname -r))" ;;
esac
log "fio $(fio --version), kernel $(uname -r), buse.ko ok"
