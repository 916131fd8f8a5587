package vmrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A running VM's c2vm process serves a control socket, ctl.sock in the
// VM's state directory (which only its user may enter): c2vm stop and c2vm
// rm -f send a stop request there and get back, when QEMU has exited, how
// the run ended. The process that watches QEMU is the one that knows.

// stopRequest asks the run to power the guest off.
type stopRequest struct {
	// Timeout is the guest's grace period after its power button;
	// negative stops QEMU at once.
	Timeout time.Duration `json:"timeout"`
	// By, Flag and AtOnce name the request, its grace period and no grace
	// in messages: "c2vm stop", "c2vm stop --timeout", "c2vm rm -f".
	By     string `json:"by"`
	Flag   string `json:"flag"`
	AtOnce string `json:"atOnce"`
}

// control is the socket's server side.
type control struct {
	l    net.Listener
	reqs chan<- stopRequest
	d    *vmDir

	mu      sync.Mutex
	waiting []net.Conn
	ended   *Ending
}

func (p *plan) serveControl() (*control, error) {
	if err := p.vm.removeFiles(ctlFile); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", p.vm.sock(ctlFile))
	if err != nil {
		return nil, err
	}
	c := &control{l: l, reqs: p.stopReqs, d: p.vm}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go c.handle(conn)
		}
	}()
	return c, nil
}

// handle reads one request; the answer comes with finish.
func (c *control) handle(conn net.Conn) {
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var r stopRequest
	if err := json.NewDecoder(io.LimitReader(conn, 4096)).Decode(&r); err != nil {
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	c.mu.Lock()
	if c.ended != nil {
		c.mu.Unlock()
		c.answer(conn, *c.ended)
		return
	}
	c.waiting = append(c.waiting, conn)
	c.mu.Unlock()
	select {
	case c.reqs <- r:
	default: // a flood of requests: one is enough
	}
}

// finish answers every waiting request with how the run ended, and closes
// the socket.
func (c *control) finish(e Ending) {
	c.mu.Lock()
	c.ended = &e
	waiting := c.waiting
	c.waiting = nil
	c.mu.Unlock()
	c.l.Close()
	c.d.removeFiles(ctlFile)
	for _, conn := range waiting {
		c.answer(conn, e)
	}
}

func (c *control) answer(conn net.Conn, e Ending) {
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	json.NewEncoder(conn).Encode(e)
	conn.Close()
}

// errNotRunning is requestStop's answer for a VM that no run holds.
var errNotRunning = errors.New("not running")

// requestStop asks the run of VM d to stop and waits up to wait for how it
// ended. A run starting up may not listen yet: connecting is retried while
// the VM's lock is held.
func requestStop(d *vmDir, r stopRequest, wait time.Duration) (Ending, error) {
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if conn, err = net.Dial("unix", d.sock(ctlFile)); err == nil {
			break
		}
		if !d.running() {
			return Ending{}, errNotRunning
		}
		if time.Now().After(deadline) {
			return Ending{}, fmt.Errorf("VM %s runs, but its control socket does not answer: %v", d.name, err)
		}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	if err := json.NewEncoder(conn).Encode(r); err != nil {
		return Ending{}, err
	}
	var e Ending
	if err := json.NewDecoder(io.LimitReader(conn, 1<<20)).Decode(&e); err != nil {
		return Ending{}, fmt.Errorf("VM %s did not say how it ended: %v", d.name, err)
	}
	return e, nil
}
