package exporter

import (
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/c2vm/c2vm/exporter/rootfs"
)

// Growing the root at first boot. A disk made with --size auto is only as
// large as its content; when the virtual disk is later made larger (or
// converted into a larger one), the guest grows the root partition with
// systemd-repart and then the filesystem with systemd-growfs. Both ship with
// systemd (Debian 11+, Ubuntu 20.04+); a tree without systemd gets nothing
// added and keeps its size (docs/disk-layout.md).

// extraFile is a file assembly adds to the tree: a directory (no body,
// link or src), a symlink, or a regular file with body or the content of
// the host file src.
type extraFile struct {
	name, body, link, src string
	mode                  uint32
}

// firstBootFiles returns what to add for first-boot growth, leaving alone
// anything the tree already has. Files go only into real directories: a
// symlinked or non-directory /etc, /etc/repart.d, /etc/systemd/system or
// local-fs.target.wants gets nothing added through it (the writer
// refuses that), and the disk then keeps its size, as one without
// systemd does.
func firstBootFiles(inv *rootfs.Inventory) []extraFile {
	if !inv.Has("lib/systemd/systemd-growfs") && !inv.Has("usr/lib/systemd/systemd-growfs") {
		return nil
	}
	var out []extraFile
	if !inv.Has("etc/repart.d/50-c2vm-root.conf") {
		out = append(out, into(inv, "etc/repart.d", extraFile{name: "etc/repart.d/50-c2vm-root.conf", body: repartConf})...)
	}
	const system, wants = "etc/systemd/system", "etc/systemd/system/local-fs.target.wants"
	if inv.IsDir(system) && !inv.Has(system+"/c2vm-growfs.service") && !inv.Has(wants+"/c2vm-growfs.service") {
		if link := into(inv, wants, extraFile{name: wants + "/c2vm-growfs.service", link: "/" + system + "/c2vm-growfs.service"}); link != nil {
			out = append(out, extraFile{name: system + "/c2vm-growfs.service", body: growfsUnit})
			out = append(out, link...)
		}
	}
	return out
}

// growthSkipped says why a tree with systemd-growfs gets no growth unit
// from firstBootFiles (files), or "" when it gets one or has its own.
func growthSkipped(inv *rootfs.Inventory, files []extraFile) string {
	const unit = "etc/systemd/system/c2vm-growfs.service"
	if !inv.Has("lib/systemd/systemd-growfs") && !inv.Has("usr/lib/systemd/systemd-growfs") || inv.Has(unit) {
		return ""
	}
	for _, f := range files {
		if f.name == unit {
			return ""
		}
	}
	return "note: the root filesystem will not grow at boot: /etc/systemd/system or local-fs.target.wants is a link or a file in the image, and c2vm writes nothing through it"
}

// into returns f with, before it, its directory dir when the tree lacks
// it; nothing when dir, or its parent when it is missing, is not a real
// directory.
func into(inv *rootfs.Inventory, dir string, f extraFile) []extraFile {
	switch {
	case inv.IsDir(dir):
		return []extraFile{f}
	case !inv.Has(dir) && inv.IsDir(path.Dir(dir)):
		return []extraFile{{name: dir}, f}
	}
	return nil
}

// writeExtras adds files to the stream, root-owned, with a fixed time so
// that they do not break reproducibility.
func writeExtras(sink rootfs.Sink, files []extraFile) error {
	epoch := time.Unix(0, 0)
	for _, f := range files {
		e := &rootfs.Entry{Path: f.name, Kind: rootfs.KindReg, Mode: 0o644, Mtime: epoch, Size: int64(len(f.body))}
		if f.mode != 0 {
			e.Mode = f.mode
		}
		var err error
		switch {
		case f.link != "":
			e.Kind, e.Link, e.Mode, e.Size = rootfs.KindSymlink, f.link, 0o777, 0
			err = sink.Add(e, nil)
		case f.src != "":
			err = addHostFile(sink, e, f.src)
		case f.body == "" && f.mode == 0:
			e.Kind, e.Mode = rootfs.KindDir, 0o755
			err = sink.Add(e, nil)
		default:
			err = sink.Add(e, strings.NewReader(f.body))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// addHostFile adds a file of c2vm's own (the app-mode kernel and
// initramfs) with its content.
func addHostFile(sink rootfs.Sink, e *rootfs.Entry, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	e.Size = fi.Size()
	return sink.Add(e, io.LimitReader(f, e.Size))
}
