#!/bin/sh
# Cargo runner: boots the firmware ELF ($1) on qemu-system-x86_64 -machine pc
# through its PVH note, transcript on stdout (COM1).
#
# isa-debug-exit makes QEMU exit with (value << 1) | 1. The firmware writes
# 0x10 on success (QEMU exits 33) and 0x11 on failure (QEMU exits 35). This
# script exits 0 only for 33; every other outcome (failure, triple fault with
# -no-reboot, QEMU error, timeout) is non-zero.
#
# TCG only: never add -accel kvm (nested KVM here never fires data breakpoints).
set -u
elf="${1:?usage: run-qemu.sh <firmware.elf>}"
shift
qemu="${QEMU_SYSTEM_X86_64:-qemu-system-x86_64}"
secs="${HWBP_QEMU_TIMEOUT:-60}"

timeout "$secs" "$qemu" \
    -machine pc -cpu qemu64 -m 64M \
    -display none -serial stdio -monitor none -nic none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel "$elf" "$@"
rc=$?
case "$rc" in
    33) exit 0 ;;
    35) echo "run-qemu.sh: firmware reported failure (QEMU exit 35)" >&2; exit 1 ;;
    124) echo "run-qemu.sh: timed out after ${secs}s" >&2; exit 124 ;;
    *) echo "run-qemu.sh: QEMU exited $rc without the firmware's success code (33)" >&2
       [ "$rc" -eq 0 ] && exit 2
       exit "$rc" ;;
esac
