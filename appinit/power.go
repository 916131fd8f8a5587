package appinit

import (
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Input event codes (linux/input-event-codes.h).
const (
	evKey    = 1
	keyPower = 116
	// An input_event on 64-bit: struct timeval (16 bytes), type, code
	// (uint16 each), value (int32).
	inputEventSize = 24
)

// watchPowerButton signals stop when an ACPI "Power Button" input device
// reports KEY_POWER pressed: that is what QEMU's system_powerdown and a
// hypervisor's "shut down" press. The button and evdev drivers are loaded
// in stage 1, so the devices exist by now; a short retry covers devtmpfs.
func watchPowerButton(stop chan<- struct{}, logf func(string, ...any)) {
	for try := 0; try < 10; try++ {
		devs := powerButtons("/sys/class/input")
		for _, d := range devs {
			f, err := os.Open(d)
			if err != nil {
				logf("power button %s: %v", d, err)
				continue
			}
			go safely(logf, func() { readPowerKey(f, stop) })
		}
		if len(devs) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("no power button: ACPI shutdown requests will not reach the program")
}

// powerButtons lists the /dev/input/event* nodes named "Power Button".
func powerButtons(sysInput string) []string {
	names, _ := filepath.Glob(filepath.Join(sysInput, "event*", "device", "name"))
	var devs []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err == nil && strings.TrimSpace(string(b)) == "Power Button" {
			devs = append(devs, "/dev/input/"+filepath.Base(filepath.Dir(filepath.Dir(n))))
		}
	}
	return devs
}

// readPowerKey reads input events until KEY_POWER is pressed.
func readPowerKey(r io.ReadCloser, stop chan<- struct{}) {
	defer r.Close()
	ev := make([]byte, inputEventSize)
	for {
		if _, err := io.ReadFull(r, ev); err != nil {
			return
		}
		typ := binary.NativeEndian.Uint16(ev[16:])
		code := binary.NativeEndian.Uint16(ev[18:])
		value := int32(binary.NativeEndian.Uint32(ev[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			select {
			case stop <- struct{}{}:
			default:
			}
		}
	}
}
