package exporter

import (
	"context"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/exporter/disk"
)

// Convert writes format f of the raw disk as dst (both relative to dir),
// with Commands' virtual size rule.
func Convert(ctx context.Context, dir string, f disk.Format, raw, dst string, minVirtual int64) error {
	st, err := os.Stat(filepath.Join(dir, raw))
	if err != nil {
		return err
	}
	for _, argv := range f.Commands(raw, dst, st.Size(), minVirtual) {
		if err := runIn(ctx, dir, nil, nil, argv[0], argv[1:]...); err != nil {
			return err
		}
	}
	return nil
}
