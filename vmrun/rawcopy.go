package vmrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/c2vm/c2vm/internal/hosttools"
)

// A disk in another format than raw is read for the direct boot through a
// raw copy. Its data may be compressed (qcow2), so a small file can
// declare gigabytes: the copy is made only when the data qemu-img maps is
// at most rawCopyRatio times the file, or rawCopyFloor.
var (
	rawCopyFloor int64 = 256 << 20
	rawCopyRatio int64 = 16
)

// maxMapJSON bounds qemu-img map's report: a disk fragmented into more
// extents than fit is not copied.
const maxMapJSON = 64 << 20

// rawContents opens a disk's contents as raw bytes: the file itself when
// it is raw, else a sparse raw copy that qemu-img makes in dir, reading
// the disk as its headers say (never probing).
func rawContents(ctx context.Context, disk, format, dir string) (*os.File, error) {
	if format == "raw" {
		return os.Open(disk)
	}
	fi, err := os.Stat(disk)
	if err != nil {
		return nil, err
	}
	budget := max(rawCopyFloor, rawCopyRatio*fi.Size())
	n, err := mappedData(ctx, disk, format, budget)
	if err != nil {
		return nil, err
	}
	if n > budget {
		return nil, fmt.Errorf("its %s file of %d MiB holds more than %d MiB of data, too much to copy out for reading its kernel", format, fi.Size()>>20, budget>>20)
	}
	out := filepath.Join(dir, "disk.raw")
	// disk and out are absolute: qemu-img reads no protocol prefix.
	if err := hosttools.Run(ctx, nil, nil, "qemu-img", "convert", "-q", "-f", format, "-O", "raw", disk, out); err != nil {
		return nil, err
	}
	return os.Open(out)
}

// mappedData adds up the data extents qemu-img map reports for disk,
// stopping once they pass budget.
func mappedData(ctx context.Context, disk, format string, budget int64) (int64, error) {
	qemuImg, err := hosttools.Look("qemu-img")
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemuImg, "map", "--output=json", "-f", format, disk)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer cmd.Wait()
	defer cancel() // runs first: a map stopped early is killed, then reaped
	dec := json.NewDecoder(io.LimitReader(out, maxMapJSON))
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return 0, fmt.Errorf("qemu-img map: not a JSON array (%v)", err)
	}
	var sum int64
	for dec.More() {
		var e struct {
			Length int64 `json:"length"`
			Data   bool  `json:"data"`
		}
		if err := dec.Decode(&e); err != nil {
			return 0, fmt.Errorf("qemu-img map: %v (a disk in more extents than c2vm reads)", err)
		}
		if e.Data && e.Length > 0 {
			sum += e.Length
		}
		if sum > budget {
			return sum, nil
		}
	}
	return sum, nil
}
