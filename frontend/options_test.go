package frontend

import (
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/subrequests/outline"

	"github.com/c2vm/c2vm/internal/sshtest"
)

func TestParseOptionsDefaults(t *testing.T) {
	s, err := parseOptions(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.disk.Formats) != 0 || s.disk.Size != "auto" || s.disk.Firmware != "hybrid" || s.bootstrap.Hostname != "c2vm" || s.bootstrap.RootPasswordSecret != "" {
		t.Errorf("defaults: %+v", s)
	}
}

func TestParseOptions(t *testing.T) {
	s, err := parseOptions(map[string]string{"C2VM_FORMAT": "qcow2,vhd", "C2VM_DISK_SIZE": "20G", "C2VM_FIRMWARE": "uefi",
		"C2VM_HOSTNAME": "web-1", "C2VM_KERNEL_CMDLINE": "quiet", "C2VM_ROOT_PASSWORD_SECRET": "rootpw", "SOURCE_DATE_EPOCH": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.disk.Formats) != 2 || s.disk.Formats[1].Name != "vhd" || s.disk.Size != "20G" || s.disk.Firmware != "uefi" ||
		s.disk.Cmdline != "quiet" || s.disk.Epoch != "1" || s.bootstrap.Hostname != "web-1" || s.bootstrap.RootPasswordSecret != "rootpw" {
		t.Errorf("parsed: %+v", s)
	}
	for args, want := range map[string]string{
		"C2VM_FORMAT=iso":          `C2VM_FORMAT: unknown format "iso"`,
		"C2VM_DISK_SIZE=lots":      `C2VM_DISK_SIZE: bad size "lots"`,
		"C2VM_DISK_SIZE=nan":       `C2VM_DISK_SIZE: bad size "nan": not a number`,
		"C2VM_DISK_SIZE=inf":       `C2VM_DISK_SIZE: bad size "inf": not a number`,
		"C2VM_DISK_SIZE=0.1":       `C2VM_DISK_SIZE: bad size "0.1": not a whole number`,
		"C2VM_DISK_SIZE=-1G":       `C2VM_DISK_SIZE: bad size "-1G": not a number`,
		"C2VM_FIRMWARE=coreboot":   `C2VM_FIRMWARE: unknown firmware "coreboot"`,
		"C2VM_HOSTNAME=bad_name!":  `C2VM_HOSTNAME "bad_name!" is not a valid hostname`,
		"C2VM_MODE=vm":             `C2VM_MODE: unknown mode "vm"`,
		"C2VM_APP=always":          `C2VM_APP "always": use auto, service or off`,
		"C2VM_KERNEL_CMDLINE=a\nb": "C2VM_KERNEL_CMDLINE: kernel command line",
	} {
		k, v, _ := strings.Cut(args, "=")
		if _, err := parseOptions(map[string]string{k: v}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", args, err, want)
		}
	}
}

func TestUnknownOptions(t *testing.T) {
	got := unknownOptions(map[string]string{"C2VM_FORMATS": "x", "C2VM_FORMAT": "raw", "HTTP_PROXY": "y", "C2VM_SIZE": "1G", "c2vm_format": "qcow2"})
	if !slices.Equal(got, []string{"C2VM_FORMATS", "C2VM_SIZE", "c2vm_format"}) {
		t.Errorf("unknown options %v", got)
	}
}

func TestOutlineListsOptions(t *testing.T) {
	o := &outline.Outline{Args: []outline.Arg{{Name: "FROM_DOCKERFILE"}}}
	addOptions(o)
	if len(o.Args) != len(options)+1 || o.Args[1].Name != "C2VM_FORMAT" || o.Args[1].Value != "raw" || o.Args[1].Description == "" {
		t.Errorf("outline args %+v", o.Args)
	}
}

func TestAccessOptions(t *testing.T) {
	k1, k2 := sshtest.PublicKey(t, "me@host"), sshtest.PublicKey(t, "me@host")
	s, err := parseOptions(map[string]string{"C2VM_SSH_AUTHORIZED_KEYS": k1 + "\n" + k2 + "\n", "C2VM_USER": "dev:1500",
		"C2VM_USER_PASSWORD_SECRET": "devpw", "C2VM_SUDO_NOPASSWD": "1", "C2VM_SSH_AUTHORIZED_KEYS_SECRET": "team.keys"})
	if err != nil {
		t.Fatal(err)
	}
	a := s.bootstrap.Access
	if len(a.AuthorizedKeys) != 2 || a.AuthorizedKeys[1] != k2 || a.User != "dev:1500" || a.UserPasswordSecret != "devpw" || !a.SudoNoPasswd || a.KeysSecret != "team.keys" || a.CloudInit {
		t.Errorf("access %+v", a)
	}
	s, err = parseOptions(map[string]string{"C2VM_SSH_AUTHORIZED_KEYS": "context:keys/team/authorized_keys"})
	if err != nil || s.keysFrom != (contextFile{"keys", "team/authorized_keys"}) || len(s.bootstrap.Access.AuthorizedKeys) != 0 {
		t.Errorf("context form: %+v %v", s.keysFrom, err)
	}
	if s, err := parseOptions(map[string]string{"C2VM_CLOUD_INIT": "1"}); err != nil || !s.bootstrap.Access.CloudInit {
		t.Errorf("cloud-init: %v", err)
	}
	for args, want := range map[string]string{
		"C2VM_SSH_AUTHORIZED_KEYS=ssh-ed25519 AAAA":            "C2VM_SSH_AUTHORIZED_KEYS: line 1 is not an OpenSSH public key",
		"C2VM_SSH_AUTHORIZED_KEYS=" + k1 + "\nrm -rf /":        "line 2 is not an OpenSSH public key",
		"C2VM_SSH_AUTHORIZED_KEYS=context:keys/../etc/shadow":  "clean relative path",
		"C2VM_SSH_AUTHORIZED_KEYS=context:Keys!/a":             "not a build context name",
		"C2VM_SSH_AUTHORIZED_KEYS=context:keys/":               "clean relative path",
		"C2VM_USER=Root":                                       `C2VM_USER: "Root" is not a user name`,
		"C2VM_USER=dev:0":                                      "C2VM_USER: uid",
		"C2VM_USER=root":                                       "root is there already",
		"C2VM_USER_PASSWORD_SECRET=pw":                         "applies to C2VM_USER, which is not set",
		"C2VM_SUDO_NOPASSWD=1":                                 "applies to C2VM_USER",
		"C2VM_SUDO_NOPASSWD=maybe":                             `C2VM_SUDO_NOPASSWD "maybe" is not 0 or 1`,
		"C2VM_ROOT_PASSWORD_SECRET=a b":                        "is not a secret id",
		"C2VM_SSH_AUTHORIZED_KEYS_SECRET=--x":                  "is not a secret id",
		"C2VM_CLOUD_INIT=1\nC2VM_USER=dev":                     "C2VM_CLOUD_INIT=1 leaves users and SSH keys to cloud-init",
		"C2VM_CLOUD_INIT=1\nC2VM_SSH_AUTHORIZED_KEYS=" + k1:    "C2VM_CLOUD_INIT=1 leaves users",
		"C2VM_CLOUD_INIT=1\nC2VM_SSH_AUTHORIZED_KEYS_SECRET=k": "C2VM_CLOUD_INIT=1 leaves users",
	} {
		m := map[string]string{}
		for _, kv := range strings.Split(args, "\nC2VM_") {
			k, v, _ := strings.Cut(strings.TrimPrefix(kv, "C2VM_"), "=")
			m["C2VM_"+k] = v
		}
		if strings.Contains(args, k1+"\nrm") {
			m = map[string]string{"C2VM_SSH_AUTHORIZED_KEYS": k1 + "\nrm -rf /"}
		}
		if _, err := parseOptions(m); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%q: got %v, want %q and a fix", args, err, want)
		}
	}
}
