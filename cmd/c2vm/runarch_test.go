package main

import (
	"strings"
	"testing"
)

// c2vm run's --arch: a bad value and what an arm64 disk cannot do are
// refused before any disk is read, with one message and its fix.
func TestRunArchFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--arch", "riscv64"}, []string{`unknown architecture "riscv64"`, "fix: use --arch auto, amd64 or arm64"}},
		{[]string{"--arch", "arm64", "--secure-boot"}, []string{"no signed boot chain", "fix: drop --secure-boot"}},
		{[]string{"--arch", "arm64", "--firmware", "bios"}, []string{"arm64 machines have no BIOS", "fix:"}},
		{[]string{"--arch", "arm64", "--machine", "q35"}, []string{"arm64 disks run on QEMU's virt machine, not --machine q35", "fix: drop --machine"}},
		{[]string{"--arch", "arm64", "--disk-bus", "sata"}, []string{"--disk-bus sata", "fix: use --disk-bus virtio (the default), virtio-scsi or nvme"}},
		{[]string{"--arch", "arm64", "--boot", "kernel"}, []string{"--boot kernel starts x86 kernels", "fix:"}},
		{[]string{"--arch", "amd64", "--machine", "virt"}, []string{"--machine virt is QEMU's arm64 machine", "fix:"}},
	} {
		err, stderr := runC2VM(t, nil, append(append([]string{"run"}, c.args...), "/nonexistent/linux.img")...)
		if err == nil || strings.Count(stderr, "c2vm:") != 1 {
			t.Errorf("c2vm run %v: %v\n%s", c.args, err, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("c2vm run %v: stderr lacks %q:\n%s", c.args, w, stderr)
			}
		}
	}
}
