package vmrun

import (
	"io"
	"strconv"
	"strings"
	"sync"
)

// exitMarker starts the line an app-mode guest's c2vm init prints just
// before it powers off: "c2vm: exit code=N".
const exitMarker = "c2vm: exit code="

// maxLine bounds the line kept for the exit-code check; longer lines are
// console noise, never the marker.
const maxLine = 256

// console is QEMU's standard output: it copies the guest's console to out
// and watches it for the expected text and the exit-code line, which may
// arrive split across any number of writes.
type console struct {
	out    io.Writer
	expect string

	mu      sync.Mutex
	tail    string // the last len(expect)-1 bytes, for a match across writes
	found   bool
	foundCh chan struct{} // closed when expect first appears
	line    []byte        // the current line, up to maxLine
	long    bool          // the current line outgrew maxLine
	code    int           // the last exit code reported, or -1
	end     []byte        // the last bytes seen, up to len(quitMarker)+8
}

// quitMarker is what QEMU writes on the console as Ctrl-a x quits it.
const quitMarker = "QEMU: Terminated"

func newConsole(out io.Writer, expect string) *console {
	return &console{out: out, expect: expect, foundCh: make(chan struct{}), code: -1}
}

// Write never fails: a console nobody reads any more must not stop the
// guest.
func (c *console) Write(p []byte) (int, error) {
	c.out.Write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	c.end = append(c.end, p...)
	if keep := len(quitMarker) + 8; len(c.end) > keep {
		c.end = c.end[len(c.end)-keep:]
	}
	c.scanExpect(p)
	for _, b := range p {
		c.scanByte(b)
	}
	return len(p), nil
}

func (c *console) scanExpect(p []byte) {
	if c.expect == "" || c.found {
		return
	}
	s := c.tail + string(p)
	if strings.Contains(s, c.expect) {
		c.found = true
		close(c.foundCh)
		return
	}
	if keep := len(c.expect) - 1; len(s) > keep {
		s = s[len(s)-keep:]
	}
	c.tail = s
}

func (c *console) scanByte(b byte) {
	switch {
	case b == '\n':
		c.endLine()
	case b == '\r':
	case len(c.line) < maxLine:
		c.line = append(c.line, b)
	default:
		c.long = true
	}
}

// endLine checks a complete line. The marker may follow other text on its
// line (a kernel message without its newline), but nothing may follow the
// number; the last marker wins, as init prints it after the program's own
// output.
func (c *console) endLine() {
	line := strings.TrimRight(string(c.line), " \t")
	long := c.long
	c.line, c.long = c.line[:0], false
	i := strings.LastIndex(line, exitMarker)
	if long || i < 0 {
		return
	}
	num := line[i+len(exitMarker):]
	if n, err := strconv.Atoi(num); err == nil && allDigits(num) && len(num) <= 3 && n <= 255 {
		c.code = n
	}
}

// close checks a last line that had no newline.
func (c *console) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.line) > 0 {
		c.endLine()
	}
}

// result reports whether expect appeared, and the exit code (-1 for none).
func (c *console) result() (found bool, code int, endsLine bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.found, c.code, len(c.end) == 0 || c.end[len(c.end)-1] == '\n'
}

// quitByUser tells whether the console ends with QEMU's words for Ctrl-a
// x. Nothing can follow them, as QEMU exits; a guest printing them just
// before powering off only makes its run look cut.
func (c *console) quitByUser() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.HasSuffix(strings.TrimRight(string(c.end), "\r\n"), quitMarker)
}
