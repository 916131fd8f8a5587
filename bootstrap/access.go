package bootstrap

import (
	"strings"

	"github.com/c2vm/c2vm/bootstrap/accounts"
	"github.com/moby/buildkit/client/llb"
)

// Access is how one gets into the guest: SSH public keys, a user, or
// cloud-init. Keys are not secrets and may come as a build arg; password
// hashes come only as secrets.
type Access struct {
	// AuthorizedKeys are checked public key lines (accounts.ParseAuthorizedKeys)
	// from C2VM_SSH_AUTHORIZED_KEYS: the user's, or root's without a user.
	AuthorizedKeys []string
	// KeysSecret names a secret holding more keys, for teams that keep
	// theirs private.
	KeysSecret string
	// User is C2VM_USER, NAME[:UID] (checked by accounts.ParseUser).
	User string
	// UserPasswordSecret names a secret with the user's crypt(3) hash.
	UserPasswordSecret string
	// SudoNoPasswd lets the user use sudo without a password.
	SudoNoPasswd bool
	// CloudInit installs cloud-init, which then makes users, installs keys
	// and sets the hostname from the platform's datasource.
	CloudInit bool
}

// Keys tells whether keys are given, in a build arg or a secret.
func (a Access) Keys() bool { return len(a.AuthorizedKeys) > 0 || a.KeysSecret != "" }

// packages are what the install step adds for the options: an SSH server
// for keys and cloud-init, sudo for a user (cloud-init's users usually
// have sudo rules). apt-get leaves a package the image has as it is.
func (a Access) packages() []string {
	var p []string
	if a.CloudInit {
		p = append(p, "cloud-init")
	}
	if a.Keys() || a.CloudInit {
		p = append(p, "openssh-server")
	}
	if a.User != "" || a.CloudInit {
		p = append(p, "sudo")
	}
	return p
}

// CloudConfigPath is where cloudConfig goes; c2vm assemble records a disk
// that has it in c2vm.json.
const CloudConfigPath = "/" + accounts.CloudConfigPath

func addCloudConfig(fa *llb.FileAction) *llb.FileAction {
	return fa.Mkdir("/etc/cloud/cloud.cfg.d", 0o755, llb.WithParents(true)).
		Mkfile(CloudConfigPath, 0o644, []byte(cloudConfig))
}

// Role names of the secrets guest-config reads: the files they are
// mounted as in its secrets directory.
const (
	secretsDir       = "/run/c2vm-secrets"
	roleRootPassword = "root-password"
	roleUserPassword = "user-password"
	roleKeys         = "authorized-keys"
)

// guestConfigArgs are c2vm guest-config's arguments and mounts for the
// options; secret reports whether a secret is read (the step must then
// never come from cache: a secret's contents are not in the cache key).
func guestConfigArgs(o Options) (args []string, opts []llb.RunOption, name string, secret bool) {
	name = "lock root account"
	addSecret := func(flag, role, id string) {
		args = append(args, flag, id)
		// Optional: guest-config says which --secret is missing, where a
		// required mount would fail with BuildKit's terse message.
		opts = append(opts, llb.AddSecret(secretsDir+"/"+role, llb.SecretID(id), llb.SecretOptional))
		secret = true
	}
	if o.RootPasswordSecret != "" {
		addSecret("--root-password-secret", roleRootPassword, o.RootPasswordSecret)
		name = "set root password"
	}
	a := o.Access
	if a.User != "" {
		args = append(args, "--user", a.User)
		if a.SudoNoPasswd {
			args = append(args, "--sudo-nopasswd")
		}
		if a.UserPasswordSecret != "" {
			addSecret("--user-password-secret", roleUserPassword, a.UserPasswordSecret)
		}
		name += ", add user " + strings.SplitN(a.User, ":", 2)[0]
	}
	if len(a.AuthorizedKeys) > 0 {
		keys := llb.Scratch().File(llb.Mkfile("/authorized_keys", 0o644, []byte(strings.Join(a.AuthorizedKeys, "\n")+"\n")),
			llb.WithCustomName("SSH authorized keys"))
		opts = append(opts, llb.AddMount("/c2vm-keys", keys, llb.Readonly))
		args = append(args, "--authorized-keys-file", "/c2vm-keys/authorized_keys")
	}
	if a.KeysSecret != "" {
		addSecret("--authorized-keys-secret", roleKeys, a.KeysSecret)
	}
	if a.Keys() {
		name += ", install SSH keys"
	}
	return args, opts, name, secret
}
