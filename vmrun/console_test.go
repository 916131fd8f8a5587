package vmrun

import (
	"io"
	"strings"
	"testing"
)

// feed writes s to a new console split at every given size in turn.
func feed(s, expect string, sizes ...int) *console {
	c := newConsole(io.Discard, expect)
	for i := 0; len(s) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(s))
		c.Write([]byte(s[:n]))
		s = s[n:]
	}
	c.close()
	return c
}

func TestConsoleExitCode(t *testing.T) {
	long := strings.Repeat("x", 2*maxLine)
	for in, want := range map[string]int{
		"c2vm: exit code=0\r\n": 0,
		"boot\r\nhello\r\nc2vm: exit code=7\r\nreboot: Power down":    7,
		"[    4.2] c2vm: exit code=255\n":                             255,
		"c2vm: exit code=1\r\nprogram again\r\nc2vm: exit code=2\r\n": 2,
		"c2vm: exit code=9  \r\n":                                     9,
		"c2vm: exit code=12":                                          12, // no newline before the end
		"c2vm: exit code=256\r\n":                                     -1,
		"c2vm: exit code=-1\r\n":                                      -1,
		"c2vm: exit code=\r\n":                                        -1,
		"c2vm: exit code=1 done\r\n":                                  -1,
		"c2vm: exit code=0x1\r\n":                                     -1,
		"c2vm: exit code =1\r\n":                                      -1,
		long + "c2vm: exit code=5\r\n":                                -1, // a line too long to be init's
		long + "\r\nc2vm: exit code=5\r\n":                            5,
		"no marker at all\r\n":                                        -1,
	} {
		for _, sizes := range [][]int{{1 << 20}, {1}, {3, 7}, {16}} {
			_, code, _ := feed(in, "", sizes...).result()
			if code != want {
				t.Errorf("%.40q split %v: code %d, want %d", in, sizes, code, want)
			}
		}
	}
}

func TestConsoleExpect(t *testing.T) {
	for _, sizes := range [][]int{{1}, {2, 5}, {100}} {
		c := feed("GRUB loading.\r\nWelcome to Debian\r\nc2vm-test login: ", "login:", sizes...)
		if found, _, endsLine := c.result(); !found || endsLine {
			t.Errorf("split %v: found %v, endsLine %v", sizes, found, endsLine)
		}
		select {
		case <-c.foundCh:
		default:
			t.Error("foundCh not closed")
		}
		if found, _, _ := feed("log in: login", "login:", sizes...).result(); found {
			t.Errorf("split %v: found a text that is not there", sizes)
		}
	}
}

func TestConsoleCopies(t *testing.T) {
	var out strings.Builder
	c := newConsole(&out, "x")
	c.Write([]byte("abc"))
	c.Write([]byte("x\r\n"))
	if out.String() != "abcx\r\n" {
		t.Errorf("copied %q", out.String())
	}
	if _, _, endsLine := c.result(); !endsLine {
		t.Error("endsLine after a newline is false")
	}
}
