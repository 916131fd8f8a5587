package vmrun

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
)

// openVM opens and locks the VM's state directory, and checks that this
// run fits the VM.
func (p *plan) openVM() error {
	d, err := openVMDir(p.name, true)
	if err != nil {
		return err
	}
	ok, err := d.tryLock()
	if err != nil || !ok {
		d.Close()
		if err != nil {
			return stateDirError(d.path, err)
		}
		return usererr.New(fmt.Sprintf("VM %s is running already", p.name),
			fmt.Sprintf("c2vm stop %s stops it; or give this run another --name (or --snapshot)", p.name))
	}
	p.vm = d
	if p.prev, err = d.readState(); err != nil {
		if p.o.Name != "" {
			return usererr.New(fmt.Sprintf("VM %s's state cannot be read: %v", p.name, err),
				fmt.Sprintf("c2vm rm %s starts the VM afresh", p.name))
		}
		// An unnamed VM starts afresh: its overlay no longer fits.
		p.prev = nil
	}
	return p.fitsVM()
}

// fitsVM refuses a run that would break the VM: a named VM made from
// another disk, or a run that would leave the VM's overlay aside
// (--snapshot, --in-place) and then record itself as the VM's last run.
func (p *plan) fitsVM() error {
	name, prev := p.name, p.prev
	if prev != nil && prev.Disk != p.o.Disk && p.o.Name != "" {
		return usererr.New(fmt.Sprintf("VM %s was made from %s, not %s", name, prev.Disk, p.o.Disk),
			fmt.Sprintf("c2vm rm %s lets this disk make it anew; or give this run another --name", name))
	}
	if !p.vm.regular(overlayFile) || !p.o.Snapshot && !p.o.InPlace {
		return nil
	}
	flag := "--in-place"
	if p.o.Snapshot {
		flag = "--snapshot"
	}
	return usererr.New(fmt.Sprintf("VM %s keeps its guest's writes in an overlay of its disk, which %s would leave aside", name, flag),
		fmt.Sprintf("drop %s to continue the VM; or give this run a --name of its own (c2vm rm %s discards the VM)", flag, name))
}

// mode is how the run treats the disk, as the state file records it.
func (p *plan) mode() string {
	switch {
	case p.o.InPlace:
		return modeInPlace
	case p.o.Snapshot:
		return modeSnapshot
	}
	return modeOverlay
}

// recordStart starts the VM's console log and state file.
func (p *plan) recordStart() error {
	d := p.vm
	if d == nil {
		return nil
	}
	// A guest whose disk is new to this VM makes new SSH host keys.
	if p.o.Snapshot || p.prev == nil || p.prev.Identity.Dev != p.id.Dev || p.prev.Identity.Ino != p.id.Ino {
		if err := d.removeFiles(knownHostsFile); err != nil {
			return err
		}
	}
	log, err := openConsoleLog(d)
	if err != nil {
		return stateDirError(d.path, err)
	}
	p.log = log
	p.st = &vmState{Disk: p.o.Disk, Identity: p.id, Format: p.image.Format, Mode: p.mode(), Firmware: p.firmware,
		Forwards: p.forwards, SSHUser: p.sshUser, PID: os.Getpid(), Started: time.Now().UTC()}
	return d.writeState(p.st)
}

// running is called once QEMU runs: the state file gets its process, c2vm
// stop its control socket, and the ports are waited for.
func (p *plan) running(ctx context.Context, pid int) {
	p.started = time.Now()
	if p.vm != nil {
		p.st.QEMUPID = pid
		if err := p.vm.writeState(p.st); err != nil {
			p.say(fmt.Sprintf("c2vm: warning: cannot record VM %s's state: %v", p.name, err))
		}
		ctl, err := p.serveControl()
		if err != nil {
			p.say(fmt.Sprintf("c2vm: warning: c2vm stop cannot reach VM %s: %v", p.name, err))
		}
		p.ctl = ctl
	}
	go p.waitReady(ctx)
}

// end records how the run ended: in the VM's state file and console log,
// and for every c2vm stop waiting on the control socket.
func (p *plan) end(err error) {
	e := endingOf(err)
	if p.log != nil {
		msg := "the guest powered off"
		if err != nil {
			msg = err.Error()
		}
		fmt.Fprintf(p.log, "c2vm: %s\n", strings.ReplaceAll(msg, "\n", "\nc2vm: "))
	}
	if p.vm != nil && p.st != nil {
		p.st.Ended, p.st.PID, p.st.QEMUPID = &e, 0, 0
		p.vm.writeState(p.st)
	}
	if p.ctl != nil {
		p.ctl.finish(e)
	}
}

// say prints one of c2vm's lines on stderr and in the VM's console log.
func (p *plan) say(line string) {
	b := []byte(line + "\n")
	p.o.Stderr.Write(b)
	if p.log != nil {
		p.log.Write(b)
	}
}
