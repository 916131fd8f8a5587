#!/bin/sh
# The 2021 proof of concept's disk pipeline, reproduced as the baseline c2vm
# is measured against: zero the whole disk, partition it, attach a loop
# device, mkfs.ext4, mount, untar, extlinux, MBR code, unmount, detach.
# Needs root and a loop device (the benchmark may; c2vm and its tests never do).
# usage: pipeline2021.sh ROOTFS.tar DISK.img SIZE_MB
set -eu
tar=$1 img=$2 size=$3
dd if=/dev/zero of="$img" bs=1M count="$size" status=none
printf 'start=2048, type=83, bootable\n' | sfdisk -q "$img"
loop=$(losetup --find --show --offset $((2048 * 512)) "$img")
mnt=$(mktemp -d)
cleanup() {
	umount "$mnt" 2>/dev/null || true
	losetup -d "$loop" 2>/dev/null || true # only our own device, never -D
	rmdir "$mnt"
}
trap cleanup EXIT
mkfs.ext4 -q "$loop"
mount -t ext4 "$loop" "$mnt"
tar -xf "$tar" -C "$mnt" --numeric-owner --xattrs --xattrs-include='*'
mkdir -p "$mnt/boot/syslinux"
printf 'DEFAULT linux\nLABEL linux\n  LINUX /vmlinuz\n  APPEND root=/dev/sda1 rw console=ttyS0\n  INITRD /initrd.img\n' >"$mnt/boot/syslinux/syslinux.cfg"
extlinux --install "$mnt/boot/syslinux" >/dev/null 2>&1
umount "$mnt"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$img" bs=440 count=1 conv=notrunc status=none
sync
