// Package secureboot decides whether a disk's UEFI path boots through a
// signed chain — the distribution's shim, signed by Microsoft's UEFI CA,
// its GRUB and its kernel, signed by the key shim carries — so that the
// disk boots where Secure Boot is on, and finds the chain's files.
//
// Every piece is checked from its own bytes ([authenticode]): shim against
// the Microsoft certificate pinned here (what the firmware's db holds on
// Hyper-V, Azure, GCE, VMware and OVMF's Microsoft variables), GRUB and
// the kernel against the vendor certificate built into that shim, as shim
// itself checks them. The files come from an image and are hostile input:
// a piece that does not verify only means the disk boots without Secure
// Boot ([ModeAuto]) or fails the build ([ModeRequire]).
//
// It runs where assembly runs: the host CLI (c2vm assemble) and the
// frontend's assembly step.
package secureboot
