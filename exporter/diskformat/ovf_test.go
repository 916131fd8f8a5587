package diskformat

import (
	"encoding/xml"
	"strings"
	"testing"
)

// parsedOVF reads a descriptor back by namespace URI, not by prefix: what
// it finds is what any namespace-aware reader finds.
type parsedOVF struct {
	XMLName    xml.Name `xml:"http://schemas.dmtf.org/ovf/envelope/1 Envelope"`
	Version    string   `xml:"http://schemas.dmtf.org/ovf/envelope/1 version,attr"`
	References []struct {
		ID   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		Href string `xml:"http://schemas.dmtf.org/ovf/envelope/1 href,attr"`
		Size int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 size,attr"`
	} `xml:"http://schemas.dmtf.org/ovf/envelope/1 References>File"`
	Disks []struct {
		Capacity  int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacity,attr"`
		Units     string `xml:"http://schemas.dmtf.org/ovf/envelope/1 capacityAllocationUnits,attr"`
		DiskID    string `xml:"http://schemas.dmtf.org/ovf/envelope/1 diskId,attr"`
		FileRef   string `xml:"http://schemas.dmtf.org/ovf/envelope/1 fileRef,attr"`
		Format    string `xml:"http://schemas.dmtf.org/ovf/envelope/1 format,attr"`
		Populated int64  `xml:"http://schemas.dmtf.org/ovf/envelope/1 populatedSize,attr"`
	} `xml:"http://schemas.dmtf.org/ovf/envelope/1 DiskSection>Disk"`
	System struct {
		ID string `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		OS struct {
			ID int `xml:"http://schemas.dmtf.org/ovf/envelope/1 id,attr"`
		} `xml:"http://schemas.dmtf.org/ovf/envelope/1 OperatingSystemSection"`
		HW struct {
			System struct {
				Type string `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData VirtualSystemType"`
			} `xml:"http://schemas.dmtf.org/ovf/envelope/1 System"`
			Items []struct {
				InstanceID      int    `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData InstanceID"`
				ResourceType    int    `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData ResourceType"`
				ResourceSubType string `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData ResourceSubType"`
				Quantity        int64  `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData VirtualQuantity"`
				Units           string `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData AllocationUnits"`
				HostResource    string `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData HostResource"`
				Parent          int    `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData Parent"`
				Connection      string `xml:"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData Connection"`
			} `xml:"http://schemas.dmtf.org/ovf/envelope/1 Item"`
			Configs []struct {
				Key   string `xml:"http://www.vmware.com/schema/ovf key,attr"`
				Value string `xml:"http://www.vmware.com/schema/ovf value,attr"`
			} `xml:"http://www.vmware.com/schema/ovf Config"`
		} `xml:"http://schemas.dmtf.org/ovf/envelope/1 VirtualHardwareSection"`
	} `xml:"http://schemas.dmtf.org/ovf/envelope/1 VirtualSystem"`
	Networks []struct {
		Name string `xml:"http://schemas.dmtf.org/ovf/envelope/1 name,attr"`
	} `xml:"http://schemas.dmtf.org/ovf/envelope/1 NetworkSection>Network"`
}

func parseOVF(t *testing.T, b []byte) parsedOVF {
	t.Helper()
	var p parsedOVF
	if err := xml.Unmarshal(b, &p); err != nil {
		t.Fatalf("descriptor does not parse: %v\n%s", err, b)
	}
	return p
}

func TestOVFDescribesTheDisk(t *testing.T) {
	b, err := OVF(DefaultAppliance("linux", false, 3<<30, 700<<20), File{Name: "linux-disk1.vmdk", Size: 123456789})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration: %.60s", b)
	}
	p := parseOVF(t, b)
	if p.Version != "1.0" || len(p.References) != 1 || len(p.Disks) != 1 {
		t.Fatalf("envelope: %+v", p)
	}
	ref, d := p.References[0], p.Disks[0]
	if ref.Href != "linux-disk1.vmdk" || ref.Size != 123456789 || d.FileRef != ref.ID {
		t.Errorf("file reference %+v, disk %+v", ref, d)
	}
	if d.Capacity != 3<<30 || d.Units != "byte" || d.Populated != 700<<20 || d.Format != StreamOptimized {
		t.Errorf("disk %+v", d)
	}
	byType := map[int]int{}
	for _, it := range p.System.HW.Items {
		byType[it.ResourceType]++
		switch it.ResourceType {
		case rtProcessor:
			if it.Quantity != 2 {
				t.Errorf("%d CPUs", it.Quantity)
			}
		case rtMemory:
			if it.Quantity != 2048 || it.Units != "byte * 2^20" {
				t.Errorf("memory %d %s", it.Quantity, it.Units)
			}
		case rtDisk:
			if it.HostResource != "ovf:/disk/"+d.DiskID || it.Parent != 3 {
				t.Errorf("disk item %+v", it)
			}
		case rtEthernet:
			if it.ResourceSubType != "E1000" || len(p.Networks) != 1 || it.Connection != p.Networks[0].Name {
				t.Errorf("NIC %+v on networks %v", it, p.Networks)
			}
		case rtStorage:
			if it.InstanceID != 3 || it.ResourceSubType != "vmware.sata.ahci" {
				t.Errorf("controller %+v", it)
			}
		}
	}
	for _, rt := range []int{rtProcessor, rtMemory, rtStorage, rtDisk, rtEthernet} {
		if byType[rt] != 1 {
			t.Errorf("%d items of resource type %d", byType[rt], rt)
		}
	}
	if p.System.OS.ID != 101 || !strings.HasPrefix(p.System.HW.System.Type, "vmx-") {
		t.Errorf("system type: os %d, %q", p.System.OS.ID, p.System.HW.System.Type)
	}
	if fw := firmwareOf(p); fw != "bios" {
		t.Errorf("hybrid or BIOS disk described with firmware %q", fw)
	}
}

func TestOVFFirmwareUEFI(t *testing.T) {
	b, err := OVF(DefaultAppliance("linux", true, 1<<30, 1<<20), File{Name: "d.vmdk", Size: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := parseOVF(t, b)
	if fw := firmwareOf(p); fw != "efi" {
		t.Errorf("UEFI-only disk described with firmware %q", fw)
	}
	for _, c := range p.System.HW.Configs {
		if c.Key == "bootOptions.efiSecureBootEnabled" && c.Value != "false" {
			t.Errorf("secure boot %q: GRUB is not signed", c.Value)
		}
	}
}

func firmwareOf(p parsedOVF) string {
	for _, c := range p.System.HW.Configs {
		if c.Key == "firmware" {
			return c.Value
		}
	}
	return ""
}

// The RASD schema is a sequence in alphabetical order; VMware refuses
// items whose elements come in another.
func TestOVFItemElementOrder(t *testing.T) {
	b, _ := OVF(DefaultAppliance("linux", false, 1<<30, 1<<20), File{Name: "d.vmdk", Size: 1})
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	var prev string
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if e.Name.Local == "Item" || e.Name.Local == "System" {
				prev = ""
			} else if e.Name.Space == NSRASD || e.Name.Space == NSVSSD {
				if e.Name.Local < prev {
					t.Errorf("%s after %s", e.Name.Local, prev)
				}
				prev = e.Name.Local
			}
		}
	}
}
