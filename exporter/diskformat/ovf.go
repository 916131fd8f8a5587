// Package diskformat writes the disk packages that are more than a qemu-img
// conversion: the OVA (an OVF descriptor, a streamOptimized VMDK and a
// manifest in a tar), the GCE image archive, and the names a KubeVirt
// containerDisk uses.
package diskformat

import (
	"encoding/xml"
	"fmt"
)

// Namespaces of an OVF 1.0 descriptor.
const (
	NSOVF  = "http://schemas.dmtf.org/ovf/envelope/1"
	NSRASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
	NSVSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
	NSVMW  = "http://www.vmware.com/schema/ovf"
	// StreamOptimized is the disk format URI VirtualBox and VMware expect
	// for the compressed VMDK an OVA carries.
	StreamOptimized = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
)

// Appliance is the virtual machine an OVF describes.
type Appliance struct {
	Name      string // the VM's name, and the base name of the files in the OVA
	UEFI      bool   // EFI firmware; BIOS otherwise
	CPUs      int
	MemoryMiB int
	Capacity  int64 // the disk's virtual size in bytes
	Populated int64 // bytes of the disk that hold data
}

// DefaultAppliance is the VM c2vm's OVAs describe: small enough for a
// laptop, enough for a distribution's services.
func DefaultAppliance(name string, uefiOnly bool, capacity, populated int64) Appliance {
	return Appliance{Name: name, UEFI: uefiOnly, CPUs: 2, MemoryMiB: 2048, Capacity: capacity, Populated: populated}
}

// File is a file the OVF references.
type File struct {
	Name string
	Size int64
}

// Resource types of the CIM RASD schema.
const (
	rtProcessor = 3
	rtMemory    = 4
	rtEthernet  = 10
	rtDisk      = 17
	rtStorage   = 20 // "other storage device": a SATA controller
)

// OVF returns the descriptor of a, whose disk is the streamOptimized VMDK
// disk. The hardware is what VirtualBox and VMware both emulate and Linux
// drives without guest drivers: a SATA (AHCI) controller and an Intel E1000
// NIC; virtio is faster but VMware has none.
func OVF(a Appliance, disk File) ([]byte, error) {
	env := envelope{
		Xmlns: NSOVF, XmlnsOVF: NSOVF, XmlnsRASD: NSRASD, XmlnsVSSD: NSVSSD, XmlnsVMW: NSVMW,
		Version: "1.0", Lang: "en-US",
		References: []fileRef{{ID: "file1", Href: disk.Name, Size: disk.Size}},
		Disks: diskSection{Info: "Virtual disk information", Disks: []diskDesc{{
			DiskID: "vmdisk1", FileRef: "file1", Format: StreamOptimized,
			Capacity: a.Capacity, CapacityUnits: "byte", Populated: a.Populated}}},
		Networks: networkSection{Info: "The logical network the VM is on",
			Networks: []network{{Name: "NAT", Description: "The network the NIC is on"}}},
		System: virtualSystem{ID: a.Name, Info: "A virtual machine made by c2vm", Name: a.Name,
			OS:       osSection{ID: 101, OSType: "otherLinux64Guest", Info: "The guest operating system", Description: "Linux 64-bit"},
			Hardware: hardware(a)},
	}
	b, err := xml.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

// hardware is the VM's virtual hardware. VMware reads the firmware from
// its vmw:Config keys, marked not required so that others may skip them.
func hardware(a Appliance) hardwareSection {
	h := hardwareSection{
		Info: "Virtual hardware requirements",
		System: system{ElementName: "Virtual Hardware Family", InstanceID: 0, Identifier: a.Name,
			// vmx-10 (ESXi 5.5, Workstation 10) is the oldest VMware hardware
			// with a SATA controller; VirtualBox ignores the type.
			Type: "vmx-10"},
		Items: []item{
			{AllocationUnits: "hertz * 10^6", Description: "Number of virtual CPUs", ElementName: fmt.Sprintf("%d virtual CPUs", a.CPUs),
				InstanceID: 1, ResourceType: rtProcessor, VirtualQuantity: int64(a.CPUs)},
			{AllocationUnits: "byte * 2^20", Description: "Memory size", ElementName: fmt.Sprintf("%d MiB of memory", a.MemoryMiB),
				InstanceID: 2, ResourceType: rtMemory, VirtualQuantity: int64(a.MemoryMiB)},
			// VMware names its AHCI controller so; VirtualBox reads this
			// subtype as AHCI too.
			{Address: "0", Description: "SATA controller", ElementName: "SATA controller 0",
				InstanceID: 3, ResourceSubType: "vmware.sata.ahci", ResourceType: rtStorage},
			{AddressOnParent: "0", ElementName: "Hard disk 1", HostResource: "ovf:/disk/vmdisk1",
				InstanceID: 4, Parent: "3", ResourceType: rtDisk},
			{AutomaticAllocation: "true", Connection: "NAT", Description: "E1000 ethernet adapter", ElementName: "Network adapter 1",
				InstanceID: 5, ResourceSubType: "E1000", ResourceType: rtEthernet},
		},
	}
	fw := config{Required: "false", Key: "firmware", Value: "bios"}
	if a.UEFI {
		fw.Value = "efi"
		// GRUB's EFI image on c2vm's disks is not signed.
		h.Configs = append(h.Configs, config{Required: "false", Key: "bootOptions.efiSecureBootEnabled", Value: "false"})
	}
	h.Configs = append([]config{fw}, h.Configs...)
	return h
}
