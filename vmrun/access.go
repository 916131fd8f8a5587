package vmrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/c2vm/c2vm/internal/diskmeta"
	"github.com/c2vm/c2vm/internal/hosttools"
	"github.com/c2vm/c2vm/internal/usererr"
)

// Getting into a running guest: --ssh forwards a host port to the guest's
// SSH server and prints the command line; --cloud-init attaches a NoCloud
// seed, which cloud-init in the guest reads at first boot.

// maxUserData bounds --cloud-init's file: user-data is configuration and
// scripts, and the seed holding it is made in the run's directory.
const maxUserData = 16 << 20

// sshGuestPort is the guest's SSH server.
const sshGuestPort = 22

// checkCloudInit checks --cloud-init's file before anything runs.
func checkCloudInit(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return usererr.New(fmt.Sprintf("--cloud-init %s: %v", p, unwrapPathError(err)), "give a cloud-init user-data file (#cloud-config …)")
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxUserData {
		return usererr.New(fmt.Sprintf("--cloud-init %s is not a regular file of at most 16 MiB", p), "give a cloud-init user-data file (#cloud-config …)")
	}
	return nil
}

// makeSeed writes a NoCloud seed into dir: a FAT image labelled CIDATA
// with user-data and meta-data, made with mkfs.vfat and mcopy as the
// exporter makes the ESP, without privilege. The user's file is copied
// into dir first, so its name never reaches a tool. The instance id comes
// from the user-data: the same data is the same instance to cloud-init.
func makeSeed(ctx context.Context, dir, userData string) (string, error) {
	data, err := readFileLimited(userData, maxUserData)
	if err != nil {
		return "", usererr.New(fmt.Sprintf("--cloud-init %s: %v", userData, err), "give a readable user-data file")
	}
	sum := sha256.Sum256(data)
	meta := fmt.Sprintf("instance-id: iid-c2vm-%s\n", hex.EncodeToString(sum[:8]))
	for name, b := range map[string][]byte{"user-data": data, "meta-data": []byte(meta)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return "", err
		}
	}
	// FAT's own overhead is small; double the data and add a MiB.
	kib := 1024 + 2*(len(data)+len(meta))/1024
	const seed = "cidata.img"
	if err := hosttools.RunIn(ctx, dir, nil, nil, "mkfs.vfat", "-n", "CIDATA", "-C", seed, strconv.Itoa(kib)); err != nil {
		return "", fmt.Errorf("making the cloud-init seed: %w", err)
	}
	env := []string{"MTOOLS_SKIP_CHECK=1"}
	if err := hosttools.RunIn(ctx, dir, nil, env, "mcopy", "-i", seed, "user-data", "meta-data", "::/"); err != nil {
		return "", fmt.Errorf("making the cloud-init seed: %w", err)
	}
	return filepath.Join(dir, seed), nil
}

func readFileLimited(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer f.Close()
	return readLimited(f, max)
}

// readLimited reads all of r, refusing more than max bytes.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("larger than %d bytes", max)
	}
	return b, err
}

// forwardTo is the forward to a guest port: one the user or the image's
// EXPOSE already made, else a free port on 127.0.0.1.
func forwardTo(fwds []Forward, guest int) (Forward, bool, error) {
	if f, ok := findForward(fwds, guest); ok {
		return f, false, nil
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return Forward{}, false, fmt.Errorf("finding a free host port for guest port %d: %v", guest, err)
	}
	defer l.Close()
	return Forward{HostIP: "127.0.0.1", Host: l.Addr().(*net.TCPAddr).Port, Guest: guest}, true, nil
}

// findForward is the first forward to a guest port.
func findForward(fwds []Forward, guest int) (Forward, bool) {
	for _, f := range fwds {
		if f.Guest == guest {
			return f, true
		}
	}
	return Forward{}, false
}

// ensureForward adds a forward to a guest port unless one exists, and
// returns it.
func (p *plan) ensureForward(guest int) (Forward, error) {
	f, added, err := forwardTo(p.forwards, guest)
	if added {
		p.forwards = append(p.forwards, f)
	}
	return f, err
}

// cloudUser finds the first user a cloud-config's users list names, for
// the ssh command line; a guess that only shapes a hint.
var cloudUser = regexp.MustCompile(`(?m)^\s*-\s*name:\s*["']?([a-z_][a-z0-9_-]{0,31})["']?\s*$`)

// planAccess finds whom SSH logs in as, forwards port 22 for --ssh (and
// for a named VM whose disk has keys, so that c2vm ssh works), forwards
// the ports to wait for, and says how to log in.
func (p *plan) planAccess() error {
	if p.meta != nil {
		p.sshUser = p.meta.SSHUser
	}
	if p.o.CloudInit != "" && p.sshUser == "" {
		if b, err := readFileLimited(p.o.CloudInit, maxUserData); err == nil {
			if m := cloudUser.FindSubmatch(b); m != nil {
				p.sshUser = string(m[1])
			}
		}
		if p.meta != nil && !p.meta.CloudInit {
			p.notes = append(p.notes, "c2vm: note: this disk was built without C2VM_CLOUD_INIT=1; the seed is attached, but nothing in the guest may read it")
		}
	}
	for _, port := range p.o.WaitPorts {
		if _, err := p.ensureForward(port); err != nil {
			return err
		}
	}
	if !p.o.SSH && (p.sshUser == "" || p.name == "") {
		if p.sshUser != "" {
			p.notes = append(p.notes, fmt.Sprintf("c2vm: this disk takes SSH keys for %s: add --ssh to forward a port and print the ssh command", p.sshUser))
		}
		return nil
	}
	f, err := p.ensureForward(sshGuestPort)
	if err != nil {
		return err
	}
	switch {
	case !p.o.SSH:
		p.notes = append(p.notes, fmt.Sprintf("c2vm: this disk takes SSH keys for %s: c2vm ssh %s logs in (--ssh says when its server answers)", p.sshUser, p.name))
		return nil
	case p.sshUser == "" && p.meta != nil && p.meta.CloudInit:
		p.notes = append(p.notes, "c2vm: --ssh: this disk takes its users and SSH keys from cloud-init, and no --cloud-init seed gives any, so nothing lets you log in over SSH")
		return nil
	case p.sshUser == "" && p.meta != nil:
		p.notes = append(p.notes, "c2vm: --ssh: this disk was built without SSH keys (its "+diskmeta.FileName+" names no sshUser), so nothing lets you log in over SSH; docs/getting-in.md says how to add keys")
		return nil
	}
	user := p.sshUser
	if user == "" {
		user = "root" // a disk without c2vm.json: a guess
	}
	host := f.HostIP
	if host == "0.0.0.0" {
		host = "127.0.0.1" // every address: this machine's will do
	}
	p.sshLine = fmt.Sprintf("ssh -p %d %s@%s", f.Host, user, host)
	return nil
}
