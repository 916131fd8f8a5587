package main

import (
	"os"

	"github.com/c2vm/c2vm/exporter"
	"github.com/c2vm/c2vm/exporter/secureboot"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// secureBootFlags choose the disk's UEFI chain (docs/secure-boot.md).
type secureBootFlags struct {
	mode string
	dirs []string
}

func (s *secureBootFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.mode, "secure-boot", "auto", "auto (the distribution's signed shim, GRUB and kernel when every piece is signed, else c2vm's GRUB, saying which piece is not), require (fail unless signed) or off; default from $C2VM_SECURE_BOOT")
	f.StringArrayVar(&s.dirs, "secure-boot-dir", nil, "a root holding the signed shim and GRUB as Debian and Ubuntu install them (usr/lib/shim, usr/lib/grub/x86_64-efi-signed); repeatable, tried in order; default $C2VM_SECURE_BOOT_DIR, /usr/lib/c2vm/secureboot, /")
}

// apply puts the flags into o; $C2VM_SECURE_BOOT stands in for an unset
// --secure-boot.
func (s *secureBootFlags) apply(cmd *cobra.Command, o *exporter.Options) error {
	m := s.mode
	if !cmd.Flags().Changed("secure-boot") {
		if v, ok := os.LookupEnv("C2VM_SECURE_BOOT"); ok {
			m = v
		}
	}
	var err error
	if o.SecureBoot, err = secureboot.ParseMode(m); err != nil {
		return err
	}
	o.SecureBootDirs = s.dirs
	return nil
}
