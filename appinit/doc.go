// Package appinit is PID 1 of an app-mode VM: a container image booted with
// c2vm's own kernel and initramfs, running the image's ENTRYPOINT+CMD as a
// container runtime would, with nothing else in the guest.
//
// The c2vm binary itself is the initramfs's /init. Main runs in two stages:
//
//  1. In the initramfs: mount proc, sys and devtmpfs, load the modules the
//     host listed (ModuleListPath), find the root filesystem by the ext4 UUID
//     of root=UUID=… on the kernel command line, mount it, free the
//     initramfs and move the root onto / (MS_MOVE + chroot). The process
//     stays PID 1: there is nothing to exec, the init is already running.
//  2. In the image's root: the mounts a container gets (proc, sys, dev,
//     devpts, shm, run, tmp, cgroup2), hostname, loopback and DHCP on the
//     first ethernet, Docker-style resolv.conf/hosts/hostname bind mounts,
//     then the program from the Config at ConfigPath, supervised: signals
//     forwarded, every zombie reaped, the ACPI power button and SIGTERM
//     turned into STOPSIGNAL, a grace period and SIGKILL.
//
// Whatever happens, the VM ends the same way: leftover processes killed,
// the root synced and remounted read-only (the disk is clean for e2fsck),
// "c2vm: exit code=N" on the console and a power-off. N is the program's
// status (128+signal for a signal death) or, as in docker run, 125 when the
// init itself failed, 126 when the program cannot be executed and 127 when
// it does not exist. PID 1 must never exit: the kernel would panic.
//
// Choices where Docker gives no answer:
//   - An image's /etc/resolv.conf, hosts or hostname that is a symlink is
//     followed inside the image only (the init is chrooted, and the path is
//     resolved as in a chroot), as runc follows bind-mount destinations; a
//     missing target is created, so a systemd image's link into /run gets
//     c2vm's file. A target that is not a regular file or lies on /proc,
//     /sys or /dev is left alone, with a note on the console.
//   - TERM is set (unless the image sets it) because the program's stdio is
//     a terminal, as with docker run -t: "linux" on a virtual terminal,
//     "vt220" on a serial console.
//   - /run and /tmp are fresh tmpfs; mount points the image lacks are
//     created on its (writable) root, and one that is a symlink or a file
//     is an init error, as in runc.
//   - The power button is read from the ACPI "Power Button" input device
//     (button and evdev modules, loaded in stage 1).
package appinit
