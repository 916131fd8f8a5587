// Package grub boots c2vm's disks with GRUB, made and installed without
// grub-install (which probes the host's disks): the images for each
// platform ([Image], cached per GRUB installation), the disk's grub.cfg
// ([Config.Script]) and its installation, into the MBR and the BIOS boot
// partition ([InstallBIOS]) and onto the ESP ([WriteESP]).
//
// GRUB's images are the same for every disk: each carries in its memdisk
// only a stub that sets up the consoles and reads the disk's own grub.cfg,
// under BIOS from the end of the BIOS boot partition (raw sectors, as GRUB
// reads a blocklist), under UEFI from the ESP, next to the image. A
// disk's grub.cfg names its root filesystem's UUID, known only once the
// root is written; keeping it out of the images lets them be made once and
// cached.
//
// It runs where assembly runs: the host CLI (c2vm assemble) and the
// frontend's assembly step.
package grub
