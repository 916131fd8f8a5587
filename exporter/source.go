package exporter

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/c2vm/c2vm/internal/usererr"
)

// Source is a root filesystem to put on a disk. It is read twice: Scan
// learns sizes and boot files from metadata, Stream then writes the tree as a
// tar for mke2fs.
type Source interface {
	Scan(ctx context.Context) (*Inventory, error)
	Stream(ctx context.Context, ts *tarStream) error
	String() string
	Close() error
}

// InputError is a problem with what the user gave: it names the cause and
// what to do about it.
type InputError = usererr.Error

// OpenSource parses a SOURCE argument: a directory, a tar file,
// oci-layout:DIR[:TAG] or docker-archive:FILE[:REF].
func OpenSource(spec string) (Source, error) {
	if rest, ok := strings.CutPrefix(spec, "oci-layout:"); ok {
		return newOCILayoutSource(rest)
	}
	if rest, ok := strings.CutPrefix(spec, "docker-archive:"); ok {
		return newDockerArchiveSource(rest)
	}
	fi, err := os.Stat(spec)
	if err != nil {
		return nil, &InputError{Msg: fmt.Sprintf("source %s does not exist", spec),
			Fix: "give a root filesystem directory, a tar file, oci-layout:DIR[:TAG] or docker-archive:FILE"}
	}
	if fi.IsDir() {
		return &dirSource{root: spec}, nil
	}
	if !fi.Mode().IsRegular() {
		return nil, &InputError{Msg: fmt.Sprintf("source %s is neither a directory nor a file", spec), Fix: "give a directory or a tar file"}
	}
	return newTarFileSource(spec), nil
}
