package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/c2vm/c2vm/bootstrap/guest"
	"github.com/spf13/cobra"
)

// guestConfigCmd is the build step that configures accounts in a target
// root filesystem with c2vm's own code (bootstrap.Configure runs it).
func guestConfigCmd() *cobra.Command {
	var root, pwFile string
	cmd := &cobra.Command{
		Use:    "guest-config --root DIR [--root-password-file FILE]",
		Short:  "Remove baked SSH host keys and lock root (or set its password hash) in a root filesystem",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var o guest.Options
			if pwFile != "" {
				f, err := os.Open(pwFile)
				if err != nil {
					return fmt.Errorf("the root password secret is missing (%v)\n  fix: pass --secret id=<the id in C2VM_ROOT_PASSWORD_SECRET>,src=FILE to docker buildx build", err)
				}
				b, err := io.ReadAll(io.LimitReader(f, 4096))
				f.Close()
				if err != nil {
					return err
				}
				o.PasswordHash = strings.TrimSpace(string(b))
				if o.PasswordHash == "" {
					return fmt.Errorf("the root password secret is empty\n  fix: put a crypt(3) hash in it (mkpasswd -m yescrypt)")
				}
			}
			if err := guest.Apply(root, o); err != nil {
				return fmt.Errorf("configuring the guest: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "the root filesystem to configure")
	cmd.Flags().StringVar(&pwFile, "root-password-file", "", "a file holding root's crypt(3) password hash")
	cmd.MarkFlagRequired("root")
	return cmd
}
