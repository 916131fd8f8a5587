package main

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/exporter"
	"github.com/c2vm/c2vm/exporter/disk"
	"github.com/c2vm/c2vm/internal/usererr"
	"github.com/spf13/cobra"
)

// convertCmd is the frontend's conversion step: one format from the
// assembled raw disk, with the same virtual-size rule as c2vm assemble.
// Hidden: c2vm assemble --format does the same for users.
func convertCmd() *cobra.Command {
	var format string
	var minVirtual int64
	cmd := &cobra.Command{
		Use:    "convert --format FORMAT [--min-virtual-size BYTES] RAW DST",
		Short:  "Write one format of a raw disk",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs, err := disk.ParseFormats(format)
			if err != nil {
				return err
			}
			if len(fs) != 2 || !fs[1].Converted() {
				return usererr.New("c2vm convert makes one of the converted formats, not "+strconv.Quote(format), "name one of "+strings.Join(disk.FormatNames(), ", ")+" other than raw and ova")
			}
			raw, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			dst, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			return exporter.Convert(cmd.Context(), "/", fs[1], raw, dst, minVirtual)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "the format to write")
	cmd.Flags().Int64Var(&minVirtual, "min-virtual-size", 0, "the least virtual size of a sparse format, in bytes")
	return cmd
}
