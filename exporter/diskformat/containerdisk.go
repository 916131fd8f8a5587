package diskformat

// KubeVirtQemuID is the uid and gid of the qemu user in KubeVirt's
// virt-launcher: a containerDisk's /disk/*.qcow2 is owned by it, as
// KubeVirt's documentation builds them (ADD --chown=107:107).
const KubeVirtQemuID = 107

// ContainerDiskDir is where KubeVirt looks for the disk in the image.
const ContainerDiskDir = "disk"
