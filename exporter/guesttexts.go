package exporter

// The files below are read or run inside the VM: assembly adds them to a
// system disk's root filesystem (bootenv.go, firstboot.go).

// bootEnv is /etc/c2vm/boot.env as c2vm adds it to a system disk: a GRUB
// environment block, which GRUB reads at every boot ([grub.Config]), so the
// guest can change its kernel command line without a rebuild and for BIOS
// and UEFI alike. GRUB's load_env reads any size of block, comment lines
// included, and takes only the two names grub.cfg asks for.
const bootEnv = `# GRUB Environment Block
# Boot settings of this VM, read by GRUB at every boot (BIOS and UEFI)
# before the kernel starts; kernel upgrades leave this file alone.
#
# c2vm_cmdline: words added to the kernel command line after c2vm's own
#   (root=UUID=... rw console=tty0 console=ttyS0,115200 and the build's
#   --cmdline), as written: one line, no quoting.
# c2vm_menu: show GRUB's menu for this many seconds at each boot, with the
#   previous kernel as a second entry; empty boots at once.
#
# Keep the first line: without it GRUB ignores the file.
c2vm_cmdline=
c2vm_menu=
`

const repartConf = `# Added by c2vm: grow the root partition into free space at the end of the
# disk on boot (systemd-repart matches the existing partition by type).
[Partition]
Type=root
`

const growfsUnit = `# Added by c2vm: grow the root filesystem to fill its partition, after
# systemd-repart has grown the partition. Does nothing when they match.
[Unit]
Description=Grow root filesystem to its partition (c2vm)
DefaultDependencies=no
After=systemd-repart.service systemd-remount-fs.service
Before=local-fs.target shutdown.target
Conflicts=shutdown.target
ConditionVirtualization=!container

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/lib/systemd/systemd-growfs /

[Install]
WantedBy=local-fs.target
`
