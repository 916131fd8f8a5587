package vmrun

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// logPoll is how often Logs looks for more of a running VM's console.
var logPoll = 200 * time.Millisecond

// Logs copies VM name's console log (its last or current run) to w. With
// follow it goes on while the VM runs, as tail -f would, and returns once
// the VM has stopped or ctx ends.
func Logs(ctx context.Context, name string, follow bool, w io.Writer) error {
	d, err := openVMDir(name, false)
	if err != nil {
		return err
	}
	defer d.Close()
	if old, err := d.root.OpenFile(consoleFile+".1", os.O_RDONLY|syscall.O_NOFOLLOW, 0); err == nil {
		io.Copy(w, old)
		old.Close()
	}
	f, err := openLog(d)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	for {
		running := d.running()
		if err := f.copyTo(w); err != nil {
			return err
		}
		if !follow || !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(logPoll):
		}
		// A rotated log goes on in a new file; a new run starts it anew.
		if f.replaced(d) {
			f.copyTo(w)
			f.Close()
			if f, err = openLog(d); err != nil {
				return err
			}
		}
	}
}

// logReader reads a console log from where it last stopped.
type logReader struct {
	f   *os.File // nil while there is no log yet
	off int64
}

func openLog(d *vmDir) (*logReader, error) {
	f, err := d.root.OpenFile(consoleFile, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return &logReader{}, nil
	}
	if err != nil {
		return nil, err
	}
	return &logReader{f: f}, nil
}

// copyTo copies what was added since the last call; a file cut short (a
// new run's) is read again from its start.
func (l *logReader) copyTo(w io.Writer) error {
	if l.f == nil {
		return nil
	}
	if fi, err := l.f.Stat(); err == nil && fi.Size() < l.off {
		l.off = 0
	}
	n, err := io.Copy(w, io.NewSectionReader(l.f, l.off, 1<<62))
	l.off += n
	return err
}

// replaced tells whether the log's name now stands for another file.
func (l *logReader) replaced(d *vmDir) bool {
	now, err := d.root.Lstat(consoleFile)
	if err != nil {
		return false
	}
	if l.f == nil {
		return true
	}
	was, err := l.f.Stat()
	return err == nil && !os.SameFile(was, now)
}

func (l *logReader) Close() {
	if l.f != nil {
		l.f.Close()
	}
}
