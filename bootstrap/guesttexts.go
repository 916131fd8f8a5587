package bootstrap

// The files below run or are read inside the VM, not in the build: the
// build step writes them into the guest's root filesystem.

const dhcpNetwork = `# c2vm: DHCP on every ethernet interface, whatever the hypervisor names it.
[Match]
Type=ether

[Network]
DHCP=yes
`

// sshKeygenUnit runs before sysinit.target, so before any socket listens:
// Ubuntu 24.04 starts sshd from ssh.socket, and a connection before the
// keys exist would fail ssh.service.
const sshKeygenUnit = `# c2vm: host keys are made on the machine's first boot, never baked in.
[Unit]
Description=Generate SSH host keys (c2vm)
DefaultDependencies=no
ConditionPathExists=/usr/sbin/sshd
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
After=local-fs.target
Before=sysinit.target ssh.socket sshd.socket ssh.service sshd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=sysinit.target
`

const fstab = `# c2vm: / is mounted from the kernel command line (root=UUID=... rw), and
# grown to its disk at boot. Add other filesystems here.
`

// cloudConfig limits cloud-init to the datasources a c2vm disk meets: a
// NoCloud seed (c2vm run --cloud-init), an OpenStack config drive, and the
// big clouds. It sorts after Debian's 90_dpkg.cfg, which lists them all.
// Without one of them cloud-init's ds-identify finds nothing and turns
// cloud-init off for the boot. c2vm already brings every ethernet
// interface up with DHCP, so cloud-init's own network set-up is off.
const cloudConfig = `# c2vm (C2VM_CLOUD_INIT=1): the datasources a c2vm disk meets.
datasource_list: [ NoCloud, ConfigDrive, Ec2, GCE, Azure, OpenStack ]
# c2vm configures DHCP on every ethernet interface (systemd-networkd).
network: {config: disabled}
# Container images set no locale; C.UTF-8 is always there, where the
# default en_US.UTF-8 would need generating (user-data may set another).
locale: C.UTF-8
`
