package diskformat

import "encoding/xml"

// The OVF 1.0 descriptor as encoding/xml writes it. Prefixed names are
// spelled out (ovf:, rasd:, vssd:, vmw:) and declared on the envelope:
// encoding/xml would otherwise invent its own prefixes, which some readers
// of OVF (VirtualBox matches names, not namespaces) do not understand.
// Field order is element order: the RASD and VSSD schemas want their
// elements in alphabetical order, and VMware checks it.

type envelope struct {
	XMLName    xml.Name       `xml:"Envelope"`
	Xmlns      string         `xml:"xmlns,attr"`
	XmlnsOVF   string         `xml:"xmlns:ovf,attr"`
	XmlnsRASD  string         `xml:"xmlns:rasd,attr"`
	XmlnsVSSD  string         `xml:"xmlns:vssd,attr"`
	XmlnsVMW   string         `xml:"xmlns:vmw,attr"`
	Version    string         `xml:"ovf:version,attr"`
	Lang       string         `xml:"xml:lang,attr"`
	References []fileRef      `xml:"References>File"`
	Disks      diskSection    `xml:"DiskSection"`
	Networks   networkSection `xml:"NetworkSection"`
	System     virtualSystem  `xml:"VirtualSystem"`
}

type fileRef struct {
	ID   string `xml:"ovf:id,attr"`
	Href string `xml:"ovf:href,attr"`
	Size int64  `xml:"ovf:size,attr"`
}

type diskSection struct {
	Info  string     `xml:"Info"`
	Disks []diskDesc `xml:"Disk"`
}

type diskDesc struct {
	Capacity      int64  `xml:"ovf:capacity,attr"`
	CapacityUnits string `xml:"ovf:capacityAllocationUnits,attr"`
	DiskID        string `xml:"ovf:diskId,attr"`
	FileRef       string `xml:"ovf:fileRef,attr"`
	Format        string `xml:"ovf:format,attr"`
	Populated     int64  `xml:"ovf:populatedSize,attr"`
}

type networkSection struct {
	Info     string    `xml:"Info"`
	Networks []network `xml:"Network"`
}

type network struct {
	Name        string `xml:"ovf:name,attr"`
	Description string `xml:"Description"`
}

type virtualSystem struct {
	ID       string          `xml:"ovf:id,attr"`
	Info     string          `xml:"Info"`
	Name     string          `xml:"Name"`
	OS       osSection       `xml:"OperatingSystemSection"`
	Hardware hardwareSection `xml:"VirtualHardwareSection"`
}

// osSection: id is the CIM operating system type (101, "Linux 64-Bit",
// which VirtualBox maps to its Linux_64); VMware reads osType.
type osSection struct {
	ID          int    `xml:"ovf:id,attr"`
	OSType      string `xml:"vmw:osType,attr"`
	Info        string `xml:"Info"`
	Description string `xml:"Description"`
}

type hardwareSection struct {
	Info    string   `xml:"Info"`
	System  system   `xml:"System"`
	Items   []item   `xml:"Item"`
	Configs []config `xml:"vmw:Config"`
}

type system struct {
	ElementName string `xml:"vssd:ElementName"`
	InstanceID  int    `xml:"vssd:InstanceID"`
	Identifier  string `xml:"vssd:VirtualSystemIdentifier"`
	Type        string `xml:"vssd:VirtualSystemType"`
}

type item struct {
	Address             string `xml:"rasd:Address,omitempty"`
	AddressOnParent     string `xml:"rasd:AddressOnParent,omitempty"`
	AllocationUnits     string `xml:"rasd:AllocationUnits,omitempty"`
	AutomaticAllocation string `xml:"rasd:AutomaticAllocation,omitempty"`
	Connection          string `xml:"rasd:Connection,omitempty"`
	Description         string `xml:"rasd:Description,omitempty"`
	ElementName         string `xml:"rasd:ElementName"`
	HostResource        string `xml:"rasd:HostResource,omitempty"`
	InstanceID          int    `xml:"rasd:InstanceID"`
	Parent              string `xml:"rasd:Parent,omitempty"`
	ResourceSubType     string `xml:"rasd:ResourceSubType,omitempty"`
	ResourceType        int    `xml:"rasd:ResourceType"`
	VirtualQuantity     int64  `xml:"rasd:VirtualQuantity,omitempty"`
}

type config struct {
	Required string `xml:"ovf:required,attr"`
	Key      string `xml:"vmw:key,attr"`
	Value    string `xml:"vmw:value,attr"`
}
