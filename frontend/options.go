package frontend

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/bootstrap"
	"github.com/c2vm/c2vm/bootstrap/accounts"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/exporter/secureboot"
	"github.com/c2vm/c2vm/internal/usererr"
	c2llb "github.com/c2vm/c2vm/llb"
)

// Options are build args with the C2VM_ prefix. Each one is listed, with its
// default, by `docker buildx build --call outline` and in docs/frontend.md.
type Option struct {
	Name, Default, Description string
}

var options = []Option{
	{"C2VM_FORMAT", "raw", "comma-separated disk formats, exactly those exported: raw (linux.img), qcow2 (zstd), qcow2-uncompressed, vmdk, vhdx, vdi, vhd, vhd-azure, ova, gce, containerdisk"},
	{"C2VM_DISK_SIZE", "auto", "disk size: auto (content plus headroom) or N[K|M|G|T]; the root grows to a larger disk at boot"},
	{"C2VM_FIRMWARE", "hybrid", "boot firmware the disk supports: hybrid (BIOS and UEFI), bios or uefi"},
	{"C2VM_HOSTNAME", "c2vm", "the guest's hostname"},
	{"C2VM_KERNEL_CMDLINE", "", "extra kernel command line arguments"},
	{"C2VM_ROOT_PASSWORD_SECRET", "", "id of a --secret holding a crypt(3) hash for root (e.g. from mkpasswd); root stays locked without it"},
	{"C2VM_MODE", "auto", "system (the image's kernel and init, c2vm installs them on Debian/Ubuntu), app (c2vm's kernel and init run the image's ENTRYPOINT/CMD, any image) or auto (system when possible)"},
	{"C2VM_APP", "auto", "system mode: run ENTRYPOINT/CMD as c2vm-app.service: auto (unless it is a bare shell or a service enabled in the image runs the same program), service (always, disabling such a service) or off"},
	{"C2VM_SSH_AUTHORIZED_KEYS", "", "OpenSSH public keys, one a line, for C2VM_USER (else root, key only); or context:NAME/PATH, a file of the build context NAME (--build-context NAME=DIR)"},
	{"C2VM_SSH_AUTHORIZED_KEYS_SECRET", "", "id of a --secret holding more public keys, for teams that keep theirs private"},
	{"C2VM_USER", "", "NAME[:UID]: a user with a home, in the sudo (or wheel) and docker groups, who gets the keys (system mode)"},
	{"C2VM_USER_PASSWORD_SECRET", "", "id of a --secret holding a crypt(3) hash for C2VM_USER; without it the user has no password"},
	{"C2VM_SUDO_NOPASSWD", "0", "1: C2VM_USER may use sudo without a password"},
	{"C2VM_SECURE_BOOT", "auto", "auto (UEFI boots through the distribution's signed shim, GRUB and kernel when every piece is signed, else c2vm's GRUB with a note naming the unsigned piece), require (fail the build unless signed) or off (c2vm's GRUB)"},
	{"C2VM_CLOUD_INIT", "0", "1: install cloud-init (NoCloud, ConfigDrive, EC2, GCE, Azure, OpenStack), which then makes users, installs keys and sets the hostname (system mode)"},
}

// settings are the parsed options.
type settings struct {
	disk      c2llb.DiskOptions
	bootstrap bootstrap.Options
	mode      disk.Mode
	app       bootstrap.ServicePolicy
	// keysFrom is C2VM_SSH_AUTHORIZED_KEYS's context:NAME/PATH, read when
	// the build runs; literal keys are in bootstrap.Access already.
	keysFrom contextFile
}

var hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// parseOptions reads the C2VM_ build args, failing on a value that would
// only fail later inside the build.
func parseOptions(args map[string]string) (settings, error) {
	get := func(name string) string {
		if v, ok := args[name]; ok {
			return v
		}
		for _, o := range options {
			if o.Name == name {
				return o.Default
			}
		}
		return ""
	}
	var s settings
	formats, err := disk.ParseFormats(get("C2VM_FORMAT"))
	if err != nil {
		return s, fmt.Errorf("C2VM_FORMAT: %w", err)
	}
	if _, err := disk.ParseSize(get("C2VM_DISK_SIZE")); err != nil {
		return s, fmt.Errorf("C2VM_DISK_SIZE: %w", err)
	}
	fw, err := disk.ParseFirmware(get("C2VM_FIRMWARE"))
	if err != nil {
		return s, fmt.Errorf("C2VM_FIRMWARE: %w", err)
	}
	if _, err := disk.ParseCmdline(get("C2VM_KERNEL_CMDLINE")); err != nil {
		return s, fmt.Errorf("C2VM_KERNEL_CMDLINE: %w", err)
	}
	host := get("C2VM_HOSTNAME")
	if !hostnameRE.MatchString(host) {
		return s, fmt.Errorf("C2VM_HOSTNAME %q is not a valid hostname: use letters, digits and inner hyphens, at most 63", host)
	}
	sb, err := secureboot.ParseMode(get("C2VM_SECURE_BOOT"))
	if err != nil {
		return s, fmt.Errorf("C2VM_SECURE_BOOT: %w", err)
	}
	s.disk = c2llb.DiskOptions{Formats: formats[1:], Size: get("C2VM_DISK_SIZE"), Firmware: string(fw),
		Cmdline: get("C2VM_KERNEL_CMDLINE"), Epoch: args["SOURCE_DATE_EPOCH"], SecureBoot: string(sb)}
	epoch := args["SOURCE_DATE_EPOCH"]
	if n, err := strconv.ParseUint(epoch, 10, 63); epoch != "" && (err != nil || strconv.FormatUint(n, 10) != epoch) {
		return s, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: set it to a Unix time, such as $(git log -1 --format=%%ct)", epoch)
	}
	s.bootstrap = bootstrap.Options{Hostname: host, RootPasswordSecret: get("C2VM_ROOT_PASSWORD_SECRET"), Epoch: epoch}
	if s.mode, err = disk.ParseMode(get("C2VM_MODE")); err != nil {
		return s, fmt.Errorf("C2VM_MODE: %w", err)
	}
	switch a := bootstrap.ServicePolicy(strings.ToLower(get("C2VM_APP"))); a {
	case bootstrap.ServiceAuto, bootstrap.ServiceAlways, bootstrap.ServiceOff:
		s.app = a
	default:
		return s, fmt.Errorf("C2VM_APP %q: use auto, service or off", get("C2VM_APP"))
	}
	if err := checkSecretID("C2VM_ROOT_PASSWORD_SECRET", s.bootstrap.RootPasswordSecret); err != nil {
		return s, err
	}
	s.bootstrap.Access, s.keysFrom, err = parseAccess(get)
	return s, err
}

// unknownOptions lists C2VM_ build args that are not options: a typo would
// otherwise be ignored silently.
func unknownOptions(args map[string]string) []string {
	var bad []string
	for k := range args {
		// Build args are case-sensitive: c2vm_format would be ignored.
		if len(k) > 5 && strings.EqualFold(k[:5], "C2VM_") && !isOption(k) {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	return bad
}

func isOption(name string) bool {
	for _, o := range options {
		if o.Name == name {
			return true
		}
	}
	return false
}

// contextFile is a file of a named build context.
type contextFile struct{ name, path string }

// contextName is a build context name as buildx takes it.
var contextName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// parseAccess reads the options that say how one gets into the guest.
func parseAccess(get func(string) string) (bootstrap.Access, contextFile, error) {
	var a bootstrap.Access
	var from contextFile
	if v := get("C2VM_SSH_AUTHORIZED_KEYS"); strings.HasPrefix(v, "context:") {
		var err error
		if from, err = parseContextFile(strings.TrimPrefix(v, "context:")); err != nil {
			return a, from, err
		}
	} else if strings.TrimSpace(v) != "" {
		keys, err := accounts.ParseAuthorizedKeys([]byte(v))
		if err != nil {
			return a, from, usererr.New("C2VM_SSH_AUTHORIZED_KEYS: "+err.Error(), accounts.KeysFix+", or context:NAME/PATH for a file")
		}
		a.AuthorizedKeys = keys
	}
	if v := get("C2VM_USER"); v != "" {
		if _, err := accounts.ParseUser(v); err != nil {
			return a, from, usererr.New("C2VM_USER: "+err.Error(), "give NAME or NAME:UID, such as dev or dev:1000")
		}
		a.User = v
	}
	a.KeysSecret, a.UserPasswordSecret = get("C2VM_SSH_AUTHORIZED_KEYS_SECRET"), get("C2VM_USER_PASSWORD_SECRET")
	for name, id := range map[string]string{"C2VM_SSH_AUTHORIZED_KEYS_SECRET": a.KeysSecret, "C2VM_USER_PASSWORD_SECRET": a.UserPasswordSecret} {
		if err := checkSecretID(name, id); err != nil {
			return a, from, err
		}
	}
	var err error
	if a.SudoNoPasswd, err = parseBool("C2VM_SUDO_NOPASSWD", get("C2VM_SUDO_NOPASSWD")); err != nil {
		return a, from, err
	}
	if a.CloudInit, err = parseBool("C2VM_CLOUD_INIT", get("C2VM_CLOUD_INIT")); err != nil {
		return a, from, err
	}
	return a, from, checkAccessCombination(a, from)
}

// checkAccessCombination refuses options that need another, and mixing
// c2vm's users and keys with cloud-init's: which would win would depend
// on the order things run at boot.
func checkAccessCombination(a bootstrap.Access, from contextFile) error {
	if a.User == "" {
		for name, set := range map[string]bool{"C2VM_USER_PASSWORD_SECRET": a.UserPasswordSecret != "", "C2VM_SUDO_NOPASSWD": a.SudoNoPasswd} {
			if set {
				return usererr.New(name+" applies to C2VM_USER, which is not set", "add C2VM_USER=NAME, or drop "+name)
			}
		}
	}
	if a.CloudInit && (a.Keys() || from.name != "" || a.User != "") {
		return usererr.New("C2VM_CLOUD_INIT=1 leaves users and SSH keys to cloud-init, so C2VM_USER and C2VM_SSH_AUTHORIZED_KEYS(_SECRET) cannot be used with it",
			"put the user and its keys in the cloud-init user-data (c2vm run --cloud-init FILE, or the cloud's), or drop C2VM_CLOUD_INIT")
	}
	return nil
}

// parseContextFile reads NAME/PATH: a context name, then a clean relative
// path in it.
func parseContextFile(v string) (contextFile, error) {
	name, p, _ := strings.Cut(v, "/")
	bad := func(why string) (contextFile, error) {
		return contextFile{}, usererr.New(fmt.Sprintf("C2VM_SSH_AUTHORIZED_KEYS=context:%s: %s", v, why),
			"write context:NAME/PATH, such as context:keys/authorized_keys with --build-context keys=DIR")
	}
	if !contextName.MatchString(name) {
		return bad(fmt.Sprintf("%q is not a build context name", name))
	}
	if p == "" || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == ".." || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 }) {
		return bad("the path must be a clean relative path in the context")
	}
	return contextFile{name: name, path: p}, nil
}

// secretID is what c2vm takes as a secret id: what docker buildx --secret
// ids look like, so that a message can quote it.
var secretID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func checkSecretID(option, id string) error {
	if id != "" && !secretID.MatchString(id) {
		return usererr.New(fmt.Sprintf("%s %q is not a secret id", option, id), "use letters, digits, '.', '_' and '-', as in --secret id=rootpw,src=FILE")
	}
	return nil
}

func parseBool(option, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "", "0", "false", "no", "off":
		return false, nil
	}
	return false, usererr.New(fmt.Sprintf("%s %q is not 0 or 1", option, v), "set "+option+"=1 or leave it out")
}
