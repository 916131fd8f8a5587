package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// sshdDropIn is c2vm's sshd settings. sshd keeps the first value it reads
// for a keyword and Debian's and Ubuntu's sshd_config include
// sshd_config.d/*.conf first (OpenSSH 8.2+: Debian 11, Ubuntu 20.04), so
// a low number wins over the main file and over drop-ins such as
// cloud-init's 50-cloud-init.conf.
const sshdDropIn = SSHDDropIn

// SSHDDropIn is the drop-in's path, relative to the root.
const SSHDDropIn = "etc/ssh/sshd_config.d/10-c2vm.conf"

// SSHDConfig is the drop-in's text: root by key only; passwords only when
// the build set one.
func SSHDConfig(passwords bool) string {
	pw := "no"
	if passwords {
		pw = "yes"
	}
	return fmt.Sprintf(`# c2vm: root logs in with a key only; passwords are accepted only when the
# build set one.
PermitRootLogin prohibit-password
PasswordAuthentication %s
KbdInteractiveAuthentication %s
`, pw, pw)
}

// configureSSHD writes the drop-in when the target has an OpenSSH server.
// It returns a note when the image's sshd_config does not read drop-ins.
func configureSSHD(root *os.Root, passwords bool) (string, error) {
	main, err := readSmall(root, "etc/ssh/sshd_config")
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("/etc/ssh/sshd_config: %w", err)
	}
	if err := mkdirIfMissing(root, "etc/ssh/sshd_config.d", 0o755); err != nil {
		return "", err
	}
	if err := writeOwned(root, sshdDropIn, []byte(SSHDConfig(passwords)), 0o644, 0, 0); err != nil {
		return "", err
	}
	if !includesDropIns(main) {
		return "note: the image's /etc/ssh/sshd_config does not Include sshd_config.d/*.conf, so c2vm's " +
			"/" + sshdDropIn + " (root by key only, no passwords unless set) does not apply: add the Include line to it", nil
	}
	return "", nil
}

// includesDropIns tells whether sshd_config has an Include of sshd_config.d.
func includesDropIns(b []byte) bool {
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.EqualFold(f[0], "Include") && strings.Contains(l, "sshd_config.d") {
			return true
		}
	}
	return false
}
