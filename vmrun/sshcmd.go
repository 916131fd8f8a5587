package vmrun

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/c2vm/c2vm/internal/usererr"
)

// SSHArgs waits until VM name's SSH server answers, up to timeout, and
// returns the ssh command line that logs in: as the user the disk's keys
// are for, through the VM's forward of port 22, with the VM's own
// known_hosts. The server's host key is pinned under the VM's name, since
// forwarded ports change from run to run; it is accepted on first use.
// identity, if any, is the private key to use; command, if any, runs in
// the guest.
func SSHArgs(ctx context.Context, name string, timeout time.Duration, identity string, command []string, out io.Writer) ([]string, error) {
	d, err := openVMDir(name, false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := d.readState()
	if err != nil {
		return nil, stateDirError(d.path, err)
	}
	switch {
	case st == nil || !d.running():
		return nil, usererr.New(fmt.Sprintf("VM %s is not running", name), fmt.Sprintf("start it: c2vm run --name %s --detach DISK", name))
	case st.SSHUser == "":
		return nil, usererr.New(fmt.Sprintf("VM %s's disk %s was built without SSH keys, so nothing lets you log in over SSH", name, st.Disk),
			"build the disk with C2VM_SSH_AUTHORIZED_KEYS (or c2vm assemble --ssh-authorized-keys FILE): see docs/getting-in.md; the console is on c2vm logs "+name)
	}
	f, ok := findForward(st.Forwards, sshGuestPort)
	if !ok {
		return nil, usererr.New(fmt.Sprintf("VM %s has no forward to its port 22", name), fmt.Sprintf("run it anew with a name: c2vm stop %s, then c2vm run --name %[1]s DISK", name))
	}
	addr := net.JoinHostPort(loopbackFor(f.HostIP), strconv.Itoa(f.Host))
	if err := waitSSH(ctx, d, addr, timeout, out); err != nil {
		return nil, err
	}
	known, err := sshOptionPath(d.file(knownHostsFile))
	if err != nil {
		return nil, err
	}
	args := []string{"ssh", "-p", strconv.Itoa(f.Host), "-o", "HostKeyAlias=c2vm-" + name,
		"-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=accept-new"}
	if identity != "" {
		args = append(args, "-i", identity, "-o", "IdentitiesOnly=yes")
	}
	args = append(args, "--", st.SSHUser+"@"+loopbackFor(f.HostIP))
	return append(args, command...), nil
}

// waitSSH polls addr for an SSH server's greeting while the VM runs.
func waitSSH(ctx context.Context, d *vmDir, addr string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for said := false; !sshAnswers(ctx, addr); said = true {
		if !said {
			fmt.Fprintf(out, "c2vm: waiting up to %s for VM %s's SSH server (%s)\n", timeout, d.name, addr)
		}
		select {
		case <-ctx.Done():
			return usererr.New(fmt.Sprintf("VM %s's SSH server did not answer on %s (its port 22) within %s", d.name, addr, timeout),
				fmt.Sprintf("check its console with c2vm logs %s; give it longer with --timeout", d.name))
		case <-time.After(probeRepeat):
		}
		if !d.running() {
			return usererr.New(fmt.Sprintf("VM %s stopped before its SSH server answered", d.name), "see how it ended: c2vm logs "+d.name)
		}
	}
	return nil
}

// sshOptionPath quotes a file name for an ssh -o option, where whitespace
// separates file names and %-tokens are expanded.
func sshOptionPath(p string) (string, error) {
	if strings.ContainsAny(p, "\"\\") || strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", usererr.New(fmt.Sprintf("the VM's state directory %s has a quote, backslash or control character, which ssh cannot take in an option", p),
			"point XDG_STATE_HOME at a plainer directory")
	}
	return `"` + strings.ReplaceAll(p, "%", "%%") + `"`, nil
}
