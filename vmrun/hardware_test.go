package vmrun

import (
	"strings"
	"testing"
)

func TestHardwareArgs(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "-drive D,if=virtio"},
		{Options{DiskBus: "virtio-scsi"}, "-device virtio-scsi-pci,id=scsi0 -drive D,if=none,id=disk0 -device scsi-hd,drive=disk0,bus=scsi0.0"},
		{Options{DiskBus: "pvscsi"}, "-device pvscsi,id=scsi0 -drive D,if=none,id=disk0 -device scsi-hd,drive=disk0,bus=scsi0.0"},
		{Options{DiskBus: "sata"}, "-device ahci,id=ahci0 -drive D,if=none,id=disk0 -device ide-hd,drive=disk0,bus=ahci0.0"},
		{Options{DiskBus: "nvme"}, "-drive D,if=none,id=disk0 -device nvme,drive=disk0,serial=c2vm0"},
		{Options{DiskBus: "ide", Machine: "pc"}, "-drive D,if=ide"},
	} {
		h, err := checkHardware(c.o, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(h.diskArgs("D"), " "); got != c.want {
			t.Errorf("%+v: %s", c.o, got)
		}
	}
	h, _ := checkHardware(Options{NIC: "e1000,vmxnet3"}, "")
	if got := strings.Join(h.nicArgs("user,id=net0,hostfwd=x"), " "); got != "-netdev user,id=net0,hostfwd=x -device e1000,netdev=net0 -netdev user,id=net1 -device vmxnet3,netdev=net1" {
		t.Errorf("nics: %s", got)
	}
	for _, bad := range []Options{{NIC: "ne2k"}, {NIC: "e1000,,"}, {Machine: "isapc"}, {DiskBus: "scsi"}, {DiskBus: "ide"}, {NIC: "e1000,netdev=x"}} {
		if _, err := checkHardware(bad, ""); err == nil || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestFirmwareBusNote(t *testing.T) {
	if n := firmwareBusNote("uefi", "pvscsi"); !strings.Contains(n, "--firmware bios") {
		t.Errorf("UEFI on pvscsi: %q", n)
	}
	for _, c := range [][2]string{{"bios", "pvscsi"}, {"uefi", "virtio"}, {"uefi", "nvme"}} {
		if n := firmwareBusNote(c[0], c[1]); n != "" {
			t.Errorf("%v: %q", c, n)
		}
	}
}
