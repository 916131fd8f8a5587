package frontend

import (
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/subrequests/outline"
)

func TestParseOptionsDefaults(t *testing.T) {
	s, err := parseOptions(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.disk.Formats) != 0 || s.disk.Size != "auto" || s.disk.Firmware != "hybrid" || s.bootstrap.Hostname != "c2vm" || s.bootstrap.RootPasswordSecret != "" {
		t.Errorf("defaults: %+v", s)
	}
}

func TestParseOptions(t *testing.T) {
	s, err := parseOptions(map[string]string{"C2VM_FORMAT": "qcow2,vhd", "C2VM_DISK_SIZE": "20G", "C2VM_FIRMWARE": "uefi",
		"C2VM_HOSTNAME": "web-1", "C2VM_KERNEL_CMDLINE": "quiet", "C2VM_ROOT_PASSWORD_SECRET": "rootpw", "SOURCE_DATE_EPOCH": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.disk.Formats) != 2 || s.disk.Formats[1].Name != "vhd" || s.disk.Size != "20G" || s.disk.Firmware != "uefi" ||
		s.disk.Cmdline != "quiet" || s.disk.Epoch != "1" || s.bootstrap.Hostname != "web-1" || s.bootstrap.RootPasswordSecret != "rootpw" {
		t.Errorf("parsed: %+v", s)
	}
	for args, want := range map[string]string{
		"C2VM_FORMAT=iso":          `C2VM_FORMAT: unknown format "iso"`,
		"C2VM_DISK_SIZE=lots":      `C2VM_DISK_SIZE: bad size "lots"`,
		"C2VM_FIRMWARE=coreboot":   `C2VM_FIRMWARE: unknown firmware "coreboot"`,
		"C2VM_HOSTNAME=bad_name!":  `C2VM_HOSTNAME "bad_name!" is not a valid hostname`,
		"C2VM_MODE=vm":             `C2VM_MODE: unknown mode "vm"`,
		"C2VM_APP=always":          `C2VM_APP "always": use auto, service or off`,
		"C2VM_KERNEL_CMDLINE=a\nb": "C2VM_KERNEL_CMDLINE: kernel command line",
	} {
		k, v, _ := strings.Cut(args, "=")
		if _, err := parseOptions(map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", args, err, want)
		}
	}
}

func TestUnknownOptions(t *testing.T) {
	got := unknownOptions(map[string]string{"C2VM_FORMATS": "x", "C2VM_FORMAT": "raw", "HTTP_PROXY": "y", "C2VM_SIZE": "1G"})
	if !slices.Equal(got, []string{"C2VM_FORMATS", "C2VM_SIZE"}) {
		t.Errorf("unknown options %v", got)
	}
}

func TestOutlineListsOptions(t *testing.T) {
	o := &outline.Outline{Args: []outline.Arg{{Name: "FROM_DOCKERFILE"}}}
	addOptions(o)
	if len(o.Args) != len(options)+1 || o.Args[1].Name != "C2VM_FORMAT" || o.Args[1].Value != "raw" || o.Args[1].Description == "" {
		t.Errorf("outline args %+v", o.Args)
	}
}
