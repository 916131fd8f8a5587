package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/c2vm/c2vm/bootstrap/accounts"
	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/spf13/cobra"
)

// guestConfigFlags are the step's inputs. Secrets are mounted by BuildKit
// as optional files named after their role in secretsDir; the ids are
// passed too, so that a secret the build was not given is reported with
// the option that named it and the --secret to add.
type guestConfigFlags struct {
	root, statusFile, secretsDir, keysFile, user string
	rootPWSecret, userPWSecret, keysSecret       string
	sudoNoPasswd, keysOnly                       bool
}

// guestConfigCmd is the build step that configures accounts in a target
// root filesystem with c2vm's own code (bootstrap.Configure runs it).
func guestConfigCmd() *cobra.Command {
	var g guestConfigFlags
	cmd := &cobra.Command{
		Use:    "guest-config --root DIR [flags]",
		Short:  "Remove baked SSH host keys, lock root or set its password, add a user and SSH keys in a root filesystem",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.statusFile == "" {
				return g.run()
			}
			// The file lies in the image's root: whatever the image put
			// there (a file, a planted symlink) goes before anything runs.
			if err := os.Remove(g.statusFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			err := g.run()
			if err == nil {
				return nil
			}
			// The frontend reads the status and reports it as the build's
			// error: a failing step would only say "exit code: 1".
			fmt.Fprintf(os.Stderr, "c2vm guest-config: %s\n", err)
			return writeStatus(g.statusFile, err.Error())
		},
	}
	f := cmd.Flags()
	f.StringVar(&g.root, "root", "", "the root filesystem to configure")
	f.StringVar(&g.statusFile, "status-file", "", "write the error here and exit 0 (on success the file does not exist)")
	f.StringVar(&g.secretsDir, "secrets-dir", "/run/c2vm-secrets", "where the secrets are mounted, as root-password, user-password and authorized-keys")
	f.StringVar(&g.rootPWSecret, "root-password-secret", "", "id of the secret holding root's crypt(3) hash (C2VM_ROOT_PASSWORD_SECRET)")
	f.StringVar(&g.user, "user", "", "NAME[:UID] of a user to add (C2VM_USER)")
	f.StringVar(&g.userPWSecret, "user-password-secret", "", "id of the secret holding the user's crypt(3) hash (C2VM_USER_PASSWORD_SECRET)")
	f.BoolVar(&g.sudoNoPasswd, "sudo-nopasswd", false, "let the user use sudo without a password (C2VM_SUDO_NOPASSWD)")
	f.StringVar(&g.keysFile, "authorized-keys-file", "", "a file of OpenSSH public keys for the user, or root (C2VM_SSH_AUTHORIZED_KEYS)")
	f.StringVar(&g.keysSecret, "authorized-keys-secret", "", "id of a secret holding more keys (C2VM_SSH_AUTHORIZED_KEYS_SECRET)")
	f.BoolVar(&g.keysOnly, "keys-only", false, "app mode: give root the keys and change nothing else")
	cmd.MarkFlagRequired("root")
	return cmd
}

// writeStatus creates the status file anew, never through a link.
func writeStatus(name, msg string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(msg); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (g *guestConfigFlags) run() error {
	o := accounts.Options{KeysOnly: g.keysOnly, Log: os.Stderr}
	var err error
	if g.rootPWSecret != "" {
		if o.PasswordHash, err = g.hash("root-password", "C2VM_ROOT_PASSWORD_SECRET", g.rootPWSecret); err != nil {
			return err
		}
	}
	if g.user != "" {
		u, err := accounts.ParseUser(g.user)
		if err != nil {
			return usererr.New("C2VM_USER: "+err.Error(), "give NAME or NAME:UID")
		}
		u.SudoNoPasswd = g.sudoNoPasswd
		if g.userPWSecret != "" {
			if u.PasswordHash, err = g.hash("user-password", "C2VM_USER_PASSWORD_SECRET", g.userPWSecret); err != nil {
				return err
			}
		}
		o.User = &u
	}
	if o.AuthorizedKeys, err = g.keys(); err != nil {
		return err
	}
	if err := accounts.Apply(g.root, o); err != nil {
		return fmt.Errorf("configuring the guest: %w", err)
	}
	return nil
}

// secret reads the secret mounted for role; option and id name it in the
// message when the build was not given it.
func (g *guestConfigFlags) secret(role, option, id, holds string) ([]byte, error) {
	f, err := os.Open(filepath.Join(g.secretsDir, role))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usererr.New(fmt.Sprintf("the secret %q named by %s was not given to the build", id, option),
			fmt.Sprintf("add --secret id=%s,src=FILE to docker buildx build (or c2vm build), FILE holding %s", id, holds))
	}
	if err != nil {
		return nil, fmt.Errorf("the secret %q (%s): %v", id, option, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, accounts.MaxKeysBytes+1))
	if err != nil {
		return nil, fmt.Errorf("the secret %q (%s): %v", id, option, err)
	}
	return b, nil
}

func (g *guestConfigFlags) hash(role, option, id string) (string, error) {
	const holds = "a crypt(3) hash (mkpasswd -m yescrypt)"
	b, err := g.secret(role, option, id, holds)
	if err != nil {
		return "", err
	}
	h := strings.TrimSpace(string(b))
	if h == "" {
		return "", usererr.New(fmt.Sprintf("the secret %q named by %s is empty", id, option), "put "+holds+" in it")
	}
	if err := accounts.CheckHash(h); err != nil {
		return "", usererr.New(fmt.Sprintf("the secret %q named by %s: %v", id, option, err), "put "+holds+" in it, on one line")
	}
	return h, nil
}

// keys reads the keys file (checked by the frontend, checked again) and
// the keys secret.
func (g *guestConfigFlags) keys() ([]string, error) {
	var all []string
	if g.keysFile != "" {
		b, err := os.ReadFile(g.keysFile)
		if err != nil {
			return nil, fmt.Errorf("reading the keys: %v", err)
		}
		k, err := accounts.ParseAuthorizedKeys(b)
		if err != nil {
			return nil, usererr.New("C2VM_SSH_AUTHORIZED_KEYS: "+err.Error(), accounts.KeysFix)
		}
		all = append(all, k...)
	}
	if g.keysSecret != "" {
		b, err := g.secret("authorized-keys", "C2VM_SSH_AUTHORIZED_KEYS_SECRET", g.keysSecret, "OpenSSH public keys, one a line")
		if err != nil {
			return nil, err
		}
		k, err := accounts.ParseAuthorizedKeys(b)
		if err != nil {
			return nil, usererr.New(fmt.Sprintf("the secret %q named by C2VM_SSH_AUTHORIZED_KEYS_SECRET: %v", g.keysSecret, err), accounts.KeysFix)
		}
		all = append(all, k...)
	}
	return all, nil
}
