package frontend

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/bootstrap"
	"github.com/c2vm/c2vm/exporter"
	c2llb "github.com/c2vm/c2vm/llb"
)

// Options are build args with the C2VM_ prefix. Each one is listed, with its
// default, by `docker buildx build --call outline` and in docs/frontend.md.
type Option struct {
	Name, Default, Description string
}

var options = []Option{
	{"C2VM_FORMAT", "raw", "comma-separated disk formats: raw,qcow2,vmdk,vhdx,vdi,vhd (linux.img, the raw disk, is always written)"},
	{"C2VM_DISK_SIZE", "auto", "disk size: auto (content plus headroom) or N[K|M|G|T]; the root grows to a larger disk at boot"},
	{"C2VM_FIRMWARE", "hybrid", "boot firmware the disk supports: hybrid (BIOS and UEFI), bios or uefi"},
	{"C2VM_HOSTNAME", "c2vm", "the guest's hostname"},
	{"C2VM_KERNEL_CMDLINE", "", "extra kernel command line arguments"},
	{"C2VM_ROOT_PASSWORD_SECRET", "", "id of a --secret holding a crypt(3) hash for root (e.g. from mkpasswd); root stays locked without it"},
	{"C2VM_MODE", "auto", "system (the image's kernel and init, c2vm installs them on Debian/Ubuntu), app (c2vm's kernel and init run the image's ENTRYPOINT/CMD, any image) or auto (system when possible)"},
	{"C2VM_APP", "auto", "system mode: run ENTRYPOINT/CMD as c2vm-app.service: auto (unless it is a bare shell), service or off"},
}

// settings are the parsed options.
type settings struct {
	disk      c2llb.DiskOptions
	bootstrap bootstrap.Options
	mode      exporter.Mode
	app       bootstrap.App
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
	formats, err := exporter.ParseFormats(get("C2VM_FORMAT"))
	if err != nil {
		return s, fmt.Errorf("C2VM_FORMAT: %w", err)
	}
	if _, err := exporter.ParseSize(get("C2VM_DISK_SIZE")); err != nil {
		return s, fmt.Errorf("C2VM_DISK_SIZE: %w", err)
	}
	fw, err := exporter.ParseFirmware(get("C2VM_FIRMWARE"))
	if err != nil {
		return s, fmt.Errorf("C2VM_FIRMWARE: %w", err)
	}
	if _, err := exporter.ParseCmdline(get("C2VM_KERNEL_CMDLINE")); err != nil {
		return s, fmt.Errorf("C2VM_KERNEL_CMDLINE: %w", err)
	}
	host := get("C2VM_HOSTNAME")
	if !hostnameRE.MatchString(host) {
		return s, fmt.Errorf("C2VM_HOSTNAME %q is not a valid hostname: use letters, digits and inner hyphens, at most 63", host)
	}
	s.disk = c2llb.DiskOptions{Formats: formats[1:], Size: get("C2VM_DISK_SIZE"), Firmware: string(fw),
		Cmdline: get("C2VM_KERNEL_CMDLINE"), Epoch: args["SOURCE_DATE_EPOCH"]}
	s.bootstrap = bootstrap.Options{Hostname: host, RootPasswordSecret: get("C2VM_ROOT_PASSWORD_SECRET")}
	if s.mode, err = exporter.ParseMode(get("C2VM_MODE")); err != nil {
		return s, fmt.Errorf("C2VM_MODE: %w", err)
	}
	switch a := bootstrap.App(strings.ToLower(get("C2VM_APP"))); a {
	case bootstrap.AppAuto, bootstrap.AppService, bootstrap.AppOff:
		s.app = a
	default:
		return s, fmt.Errorf("C2VM_APP %q: use auto, service or off", get("C2VM_APP"))
	}
	return s, nil
}

// unknownOptions lists C2VM_ build args that are not options: a typo would
// otherwise be ignored silently.
func unknownOptions(args map[string]string) []string {
	var bad []string
	for k := range args {
		if len(k) > 5 && k[:5] == "C2VM_" && !isOption(k) {
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
