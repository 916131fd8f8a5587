package vmrun

import (
	"os"
	"sync"
	"syscall"
)

// maxConsoleLog is the size at which a VM's console log starts anew, the
// full one kept as console.log.1 (replacing the one before): a guest that
// prints without end takes at most twice this of the host's disk.
var maxConsoleLog int64 = 16 << 20

// consoleLog is a VM's console.log: the guest's console and c2vm's lines,
// for c2vm logs. Each run starts it empty.
type consoleLog struct {
	mu sync.Mutex
	d  *vmDir
	f  *os.File // nil once a rotation failed: the rest is not kept
	n  int64
}

func openConsoleLog(d *vmDir) (*consoleLog, error) {
	if err := d.removeFiles(consoleFile + ".1"); err != nil {
		return nil, err
	}
	l := &consoleLog{d: d}
	return l, l.open()
}

func (l *consoleLog) open() error {
	f, err := l.d.root.OpenFile(consoleFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	l.f, l.n = f, 0
	return err
}

// Write never fails: a full disk must not stop the guest.
func (l *consoleLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil && l.n+int64(len(b)) > maxConsoleLog && l.n > 0 {
		l.f.Close()
		if l.d.root.Rename(consoleFile, consoleFile+".1") != nil || l.open() != nil {
			l.f = nil
		}
	}
	if l.f != nil {
		n, _ := l.f.Write(b)
		l.n += int64(n)
	}
	return len(b), nil
}

func (l *consoleLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
