package ext4

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// memImage is an in-memory target.
type memImage []byte

func (m memImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, fmt.Errorf("write [%d, +%d) outside the image", off, len(p))
	}
	return copy(m[off:], p), nil
}

// prog reads a fuzz input as a stream of small numbers.
type prog struct{ b []byte }

func (p *prog) more() bool { return len(p.b) > 0 }
func (p *prog) u8() int {
	if len(p.b) == 0 {
		return 0
	}
	v := p.b[0]
	p.b = p.b[1:]
	return int(v)
}
func (p *prog) u16() int { return p.u8() | p.u8()<<8 }

// name makes a name from the input, odd bytes included ('/', NUL, '.',
// non-ASCII), so that validation is exercised too.
func (p *prog) name() string {
	n := p.u8()%24 + 1
	if n == 24 {
		n = 200 + p.u8()%60 // long names, some over 255
	}
	alphabet := "abcdefgh.-_/\x00é日ABCDEFG0123456789"
	var b []byte
	for range n {
		c := p.u8()
		b = append(b, alphabet[c%len(alphabet)])
	}
	return string(b)
}

func (p *prog) xattrs() []Xattr {
	var xs []Xattr
	for range p.u8() % 4 {
		ns := []string{"user.", "trusted.", "security.", "system.", "bogus."}[p.u8()%5]
		v := bytes.Repeat([]byte{byte(p.u8())}, p.u16()%5000)
		if p.u8()%4 == 0 {
			v = vfsACL([3]uint32{aclUserObj, 6, 0}, [3]uint32{aclUser, uint32(p.u8() % 8), uint32(p.u16())},
				[3]uint32{aclGroupObj, 4, 0}, [3]uint32{aclMask, 6, 0}, [3]uint32{aclOther, 4, 0})
			xs = append(xs, Xattr{"system.posix_acl_access", v})
			continue
		}
		xs = append(xs, Xattr{ns + p.name(), v})
	}
	return xs
}

// runProg writes the tree an input describes; it returns Close's error.
func runProg(img memImage, input []byte) error {
	p := &prog{b: input}
	w, err := NewWriter(img, Params{Size: int64(len(img)), Inodes: int64(p.u16() % 600), Time: testTime})
	if err != nil {
		return err
	}
	dirs, files := []string{""}, []string{}
	join := func(d, n string) string {
		if d == "" {
			return n
		}
		return d + "/" + n
	}
	for ops := 0; p.more() && ops < 300; ops++ {
		op, parent := p.u8()%10, dirs[p.u8()%len(dirs)]
		path := join(parent, p.name())
		f := &File{Mode: uint32(p.u16()) & 0o7777, UID: uint32(p.u16()) << (p.u8() % 17), Mtime: testTime}
		f.Mtime = f.Mtime.AddDate(p.u8()*3-300, 0, 0)
		var data io.Reader
		switch op {
		case 0, 8:
			f.Mode |= sIFDIR
			if op == 8 && len(dirs) > 1 {
				path = dirs[1+p.u8()%(len(dirs)-1)]
			}
		case 1:
			f.Mode |= sIFREG
			f.Size = int64(p.u16()) << (p.u8() % 12)
			data = io.LimitReader(&prng{s: uint64(f.Size)}, f.Size)
		case 2:
			f.Mode |= sIFREG
			f.Size = int64(p.u16()) << 12
			off := int64(0)
			var n int64
			for range p.u8() % 8 {
				off += int64(p.u16()) << (p.u8() % 8)
				l := int64(p.u16())
				if off+l > f.Size {
					break
				}
				f.Data = append(f.Data, Segment{off, l})
				off += l
				n += l
			}
			data = io.LimitReader(&prng{s: 7}, n)
		case 3:
			f.Mode |= sIFLNK
			f.Linkname = string(bytes.Repeat([]byte{'t'}, p.u16()%4200))
		case 4:
			if len(files) > 0 {
				err = w.Link(path, files[p.u8()%len(files)])
				continue
			}
		case 5:
			f.Mode |= []uint32{sIFCHR, sIFBLK}[p.u8()%2]
			f.DevMajor, f.DevMinor = uint32(p.u16()%5000), uint32(p.u16())<<(p.u8()%6)
		case 6:
			f.Mode |= sIFIFO
		case 7:
			f.Mode |= sIFREG | sIFSOCK*uint32(p.u8()%2)
			f.Xattrs = p.xattrs()
		case 9:
			f.Mode |= sIFDIR
			if w.Create(path, f, nil) == nil {
				for i := range p.u8() * 8 {
					w.Create(fmt.Sprintf("%s/entry-%d-%s", path, i, p.name()), &File{Mode: sIFREG | 0o644}, nil)
				}
			}
			continue
		}
		f.Xattrs = append(f.Xattrs, p.xattrs()...)
		if err := w.Create(path, f, data); err == nil {
			switch {
			case f.Mode&sIFMT == sIFDIR:
				dirs = append(dirs, path)
			case f.Mode&sIFMT != 0:
				files = append(files, path)
			}
		} else if w.err != nil {
			break // a spoiled writer: Close reports it
		}
	}
	return w.Close()
}

// FuzzWriter writes random small trees: the writer either fails with a
// clear error or makes a filesystem e2fsck finds clean. e2fsck runs on the
// seed corpus; while fuzzing only with C2VM_FUZZ_FSCK=1 (it is slow).
func FuzzWriter(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x10\x02\x00\x01hello\x01\x00\x05\x00\x01abc\x03\x00\x02xy\x09\x00\x10\x03dir"))
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	check := !fuzzing || os.Getenv("C2VM_FUZZ_FSCK") == "1"
	f.Fuzz(func(t *testing.T, input []byte) {
		img := make(memImage, 24<<20)
		err := runProg(img, input)
		if err != nil {
			if !errors.Is(err, ErrNoSpace) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Close: %v", err)
			}
			return
		}
		if !check {
			return
		}
		fsck(t, writeSparse(t, img))
	})
}

// writeSparse saves an image to a file, leaving zero blocks as holes.
func writeSparse(t *testing.T, img []byte) string {
	path := filepath.Join(t.TempDir(), "fs.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(int64(len(img)))
	for off := 0; off < len(img); off += blockSize {
		if b := img[off : off+blockSize]; !bytes.Equal(b, zeroBlock[:]) {
			f.WriteAt(b, int64(off))
		}
	}
	return path
}
