package vmrun

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The stand-in QEMU's user network: it listens on every forward of its
// -netdev, as QEMU does, and answers as the guest would. FAKE_PORTS lists
// the guest ports that listen, each with what it sends on a connection
// ("22=SSH-2.0-fake;8000=": port 8000 sends nothing); FAKE_PORTS_AFTER
// (a duration) is when they start to. A connection to any other port, or
// earlier, is closed at once, as QEMU closes one the guest refuses.

type fakePorts struct {
	mu          sync.Mutex
	established map[int]int // guest port: open connections the guest accepted
}

var hostfwdArg = regexp.MustCompile(`hostfwd=tcp:([0-9.]+):(\d+)-:(\d+)`)

func serveForwards(args []string) *fakePorts {
	fp := &fakePorts{established: map[int]int{}}
	open := map[int]string{}
	for _, spec := range strings.Split(os.Getenv("FAKE_PORTS"), ";") {
		if port, greeting, ok := strings.Cut(spec, "="); ok {
			n, _ := strconv.Atoi(port)
			open[n] = greeting
		}
	}
	after, _ := time.ParseDuration(os.Getenv("FAKE_PORTS_AFTER"))
	from := time.Now().Add(after)
	for _, a := range args {
		for _, m := range hostfwdArg.FindAllStringSubmatch(a, -1) {
			guest, _ := strconv.Atoi(m[3])
			l, err := net.Listen("tcp4", net.JoinHostPort(m[1], m[2]))
			if err != nil {
				panic(err)
			}
			greeting, listens := open[guest]
			go fp.accept(l, guest, listens, greeting, from)
		}
	}
	return fp
}

func (fp *fakePorts) accept(l net.Listener, guest int, listens bool, greeting string, from time.Time) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		if !listens || time.Now().Before(from) {
			c.Close()
			continue
		}
		go fp.hold(c, guest, greeting)
	}
}

// hold keeps an accepted connection until the client closes it.
func (fp *fakePorts) hold(c net.Conn, guest int, greeting string) {
	fp.count(guest, 1)
	defer fp.count(guest, -1)
	defer c.Close()
	c.Write([]byte(greeting))
	c.Read(make([]byte, 1))
}

func (fp *fakePorts) count(guest, d int) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.established[guest] += d
}

// usernet is QEMU's "info usernet" table for the connections held.
func (fp *fakePorts) usernet() string {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	s := "Hub -1 (net0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n"
	for guest, n := range fp.established {
		for range n {
			s += fmt.Sprintf("  TCP[ESTABLISHED]   27       127.0.0.1 40000       10.0.2.15 %5d     0     0\r\n", guest)
		}
	}
	return s
}
