package exporter

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// BootOptions are c2vm run's flags.
type BootOptions struct {
	Disk     string
	Firmware Firmware // BIOS or UEFI
	Expect   string   // succeed once this appears and the guest powered off
	Timeout  time.Duration
	Accel    string // auto, kvm or tcg
	Memory   string
	CPUs     int
	Snapshot bool // leave the disk unchanged
	// QuitOnExpect stops the guest once Expect appears instead of waiting
	// for it to power off: for guests that only reach a login prompt.
	QuitOnExpect bool
	Stdout       io.Writer
	Stdin        io.Reader
}

// ovmf is where Debian's ovmf package puts the 4 MiB UEFI firmware.
var ovmfDir = "/usr/share/OVMF"

// Boot runs a disk in QEMU with the serial console on Stdout.
func Boot(ctx context.Context, o BootOptions) error {
	if _, err := os.Stat(o.Disk); err != nil {
		return &InputError{Msg: fmt.Sprintf("disk %s: %v", o.Disk, err), Fix: "give the path of a disk c2vm assemble wrote"}
	}
	qemu, err := lookTool("qemu-system-x86_64")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "c2vm-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	args, err := qemuArgs(o, work)
	if err != nil {
		return err
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdin = o.Stdin
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	var onFound func()
	if o.QuitOnExpect {
		onFound = func() { cmd.Process.Kill() }
	}
	seen := watch(out, o.Stdout, o.Expect, onFound)
	err = cmd.Wait()
	found := seen()
	if found && o.QuitOnExpect {
		return nil
	}
	switch {
	case ctx.Err() != nil && o.Expect != "" && !found:
		return fmt.Errorf("timed out after %s: %q did not appear on the guest's console", o.Timeout, o.Expect)
	case ctx.Err() != nil && o.Expect != "":
		return fmt.Errorf("timed out after %s: %q appeared but the guest did not power off", o.Timeout, o.Expect)
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("qemu: %v", err)
	case o.Expect != "" && !found:
		return fmt.Errorf("the guest powered off without printing %q", o.Expect)
	}
	return nil
}

// watch copies the console to w and reports whether text appeared; onFound,
// if set, runs the first time it does.
func watch(r io.Reader, w io.Writer, text string, onFound func()) func() bool {
	var mu sync.Mutex
	found := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(r)
		var tail string
		buf := make([]byte, 4096)
		for {
			n, err := br.Read(buf)
			if n > 0 {
				if w != nil {
					w.Write(buf[:n])
				}
				tail += string(buf[:n])
				if text != "" && strings.Contains(tail, text) {
					mu.Lock()
					first := !found
					found = true
					mu.Unlock()
					if first && onFound != nil {
						onFound()
					}
				}
				if len(tail) > 2*len(text)+4096 {
					tail = tail[len(tail)-len(text)-1:]
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return func() bool {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return found
	}
}

func qemuArgs(o BootOptions, work string) ([]string, error) {
	if o.Memory == "" {
		o.Memory = "1024M"
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	accel, err := pickAccel(o.Accel)
	if err != nil {
		return nil, err
	}
	args := []string{"-machine", "q35", "-accel", accel, "-m", o.Memory, "-smp", fmt.Sprint(o.CPUs),
		"-nographic", "-no-reboot", "-serial", "mon:stdio",
		"-drive", fmt.Sprintf("file=%s,format=%s,if=virtio", o.Disk, diskFormat(o.Disk)),
		"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0"}
	if accel == "kvm" {
		args = append(args, "-cpu", "host")
	}
	if o.Snapshot {
		args = append(args, "-snapshot")
	}
	switch o.Firmware {
	case UEFI:
		code := filepath.Join(ovmfDir, "OVMF_CODE_4M.fd")
		vars, err := os.ReadFile(filepath.Join(ovmfDir, "OVMF_VARS_4M.fd"))
		if err != nil {
			return nil, &MissingToolError{Tool: "UEFI firmware (OVMF)", Package: "ovmf"}
		}
		varsCopy := filepath.Join(work, "OVMF_VARS.fd")
		if err := os.WriteFile(varsCopy, vars, 0o600); err != nil {
			return nil, err
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+varsCopy)
	case BIOS, "":
	default:
		return nil, &InputError{Msg: fmt.Sprintf("firmware %q cannot be booted", o.Firmware), Fix: "use --firmware bios or --firmware uefi"}
	}
	return args, nil
}

// pickAccel chooses KVM when asked, or when /dev/kvm works and C2VM_ACCEL
// does not say otherwise; TCG always works, only slower.
func pickAccel(a string) (string, error) {
	if a == "" || a == "auto" {
		a = os.Getenv("C2VM_ACCEL")
	}
	switch a {
	case "", "auto":
		if kvmUsable() {
			return "kvm", nil
		}
		return "tcg", nil
	case "kvm", "tcg":
		return a, nil
	}
	return "", &InputError{Msg: fmt.Sprintf("unknown accelerator %q", a), Fix: "use auto, kvm or tcg"}
}

// diskFormat tells QEMU the format from the file name.
func diskFormat(p string) string {
	switch ext := strings.TrimPrefix(filepath.Ext(p), "."); ext {
	case "qcow2", "vmdk", "vhdx", "vdi":
		return ext
	case "vhd":
		return "vpc"
	}
	return "raw"
}

// kvmUsable starts a paused VM with KVM and quits it at once. Opening
// /dev/kvm is not enough: some nested hypervisors accept it and then fail to
// set up a vCPU, and QEMU aborts.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	qemu, err := lookTool("qemu-system-x86_64")
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-accel", "kvm", "-cpu", "host", "-machine", "q35",
		"-display", "none", "-nodefaults", "-S", "-monitor", "stdio")
	cmd.Stdin = strings.NewReader("quit\n")
	return cmd.Run() == nil
}
