// Package exporter assembles a bootable disk from a root filesystem: what
// `c2vm assemble` does on the host, and what the frontend's assembly step
// runs inside BuildKit. It never needs root, a loop device or a mount.
//
// [Assemble] runs these steps, reading the source twice and writing each
// output once:
//
//   - scan: [rootfs] reads the source's headers (a directory, a tar, an OCI
//     layout, a docker save archive) into an inventory of the final tree,
//     while [grub] makes (or takes from its cache) GRUB's images;
//   - plan: the boot mode ([disk.Mode]: the image's own kernel and init, or
//     app mode with c2vm's kernel, initramfs and init), the kernel to
//     boot, the size estimate and the partition layout ([disk.Layout]);
//   - write: [ext4] writes the root filesystem straight into the disk file
//     from the flattened entry stream, adding c2vm's files (growth at
//     boot, /etc/c2vm/boot.env, app mode's parts, SSH keys and users);
//     the disk's ids derive from a digest of what was written;
//   - boot: sfdisk writes the partition table; [grub] installs GRUB for
//     BIOS and writes the ESP for UEFI, with the disk's grub.cfg;
//   - formats: other formats are converted from the raw disk
//     ([disk.Format], [diskformat] for the OVA and GCE image);
//   - publish: outputs are written in a scratch directory inside the
//     output directory and renamed into place, linux.img last, with
//     c2vm.json beside it.
//
// Its options come from [disk]'s vocabulary, which the frontend and llb
// use without importing this package.
package exporter
