package vmrun

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
)

// DefaultReadyTimeout bounds the wait for the guest's SSH server and the
// ports of --wait-port.
const DefaultReadyTimeout = 5 * time.Minute

// How long one probe of a port may take, and how often it is retried.
var (
	probeTimeout = 5 * time.Second
	probeRepeat  = time.Second
)

// Through QEMU's user network, the host side of a forward accepts a
// connection at once, whatever the guest does: only what comes back tells.
// When nothing in the guest listens, QEMU closes the connection again; an
// SSH server greets with "SSH-"; a server that waits for the client (HTTP)
// sends nothing, but QEMU then lists the connection as established in the
// guest.

// waitReady waits for --ssh's server and --wait-port's ports, says each
// one that answers, and then calls the background run's ready hook; a port
// that does not answer within ReadyTimeout fails the run.
func (p *plan) waitReady(run context.Context) {
	ctx, cancel := context.WithTimeout(run, p.o.ReadyTimeout)
	defer cancel()
	if p.o.background {
		// QEMU answers its monitor once it has set the machine up: only
		// then does the VM run.
		if _, err := p.mon.execute(ctx, "query-status", nil); err != nil {
			if run.Err() == nil {
				p.notReady <- fmt.Errorf("QEMU's monitor did not answer within --ready-timeout %s: %v", p.o.ReadyTimeout, err)
			}
			return
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(p.o.WaitPorts)+1)
	if p.sshLine != "" {
		f, _ := findForward(p.forwards, sshGuestPort)
		wg.Go(func() { errs <- p.waitPort(ctx, f, true) })
	}
	for _, port := range p.o.WaitPorts {
		f, _ := findForward(p.forwards, port)
		wg.Go(func() { errs <- p.waitPort(ctx, f, false) })
	}
	wg.Wait()
	close(errs)
	if run.Err() != nil {
		return // the run ended first
	}
	for err := range errs {
		if err != nil {
			select {
			case p.notReady <- err:
			default:
			}
			return
		}
	}
	if p.o.ready != nil {
		p.o.ready(p.name)
	}
}

// waitPort probes one forward until it answers or ctx ends.
func (p *plan) waitPort(ctx context.Context, f Forward, ssh bool) error {
	addr := net.JoinHostPort(loopbackFor(f.HostIP), strconv.Itoa(f.Host))
	for {
		ok := false
		if ssh {
			ok = sshAnswers(ctx, addr)
		} else {
			ok = p.portAnswers(ctx, addr, f.Guest)
		}
		if ok {
			if ssh {
				line := "c2vm: log in with: " + p.sshLine
				if p.name != "" {
					line += " (or c2vm ssh " + p.name + ")"
				}
				p.say(line)
			} else {
				p.say(fmt.Sprintf("c2vm: port %d ready (%s)", f.Guest, addr))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return p.notReadyError(f, ssh)
		case <-time.After(probeRepeat):
		}
	}
}

func (p *plan) notReadyError(f Forward, ssh bool) error {
	what := fmt.Sprintf("guest port %d", f.Guest)
	if ssh {
		what = "the guest's SSH server (port 22)"
	}
	logs := "the console above"
	if p.name != "" {
		logs = "c2vm logs " + p.name
	}
	return usererr.New(fmt.Sprintf("%s did not answer on %s within --ready-timeout %s, so c2vm stopped the guest", what, f.hostAddr(), p.o.ReadyTimeout),
		fmt.Sprintf("check %s for where the guest is; give it longer with --ready-timeout", logs))
}

// loopbackFor is the address that reaches a forward bound to ip.
func loopbackFor(ip string) string {
	if ip == "0.0.0.0" {
		return "127.0.0.1"
	}
	return ip
}

// sshAnswers tells whether an SSH server greets on addr.
func sshAnswers(ctx context.Context, addr string) bool {
	c, err := dialProbe(ctx, addr)
	if err != nil {
		return false
	}
	defer c.Close()
	b := make([]byte, 4)
	_, err = io.ReadFull(c, b)
	return err == nil && string(b) == "SSH-"
}

// portAnswers tells whether the guest accepted a connection to its port
// through the forward at addr.
func (p *plan) portAnswers(ctx context.Context, addr string, guest int) bool {
	c, err := dialProbe(ctx, addr)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n > 0 {
		return true
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		return false // closed: nothing listens there (yet)
	}
	qctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	usernet, err := p.mon.hmp(qctx, "info usernet")
	return err == nil && establishedTo(usernet, guest)
}

// establishedTo reads QEMU's "info usernet" table for an established TCP
// connection to the guest's port. Its rows are "TCP[STATE] FD SRC-ADDR
// SRC-PORT DEST-ADDR DEST-PORT RECV-Q SEND-Q"; for a forwarded
// connection, DEST is the guest's side.
func establishedTo(usernet string, guest int) bool {
	for _, l := range strings.Split(usernet, "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && f[0] == "TCP[ESTABLISHED]" && f[5] == strconv.Itoa(guest) {
			return true
		}
	}
	return false
}

func dialProbe(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: probeTimeout}
	c, err := d.DialContext(ctx, "tcp4", addr)
	if err == nil {
		c.SetDeadline(time.Now().Add(probeTimeout))
	}
	return c, err
}
