package diskformat

import "path/filepath"

// GCEDiskName is the one file Google Compute Engine's image import reads
// from its .tar.gz.
const GCEDiskName = "disk.raw"

// GCETarArgs are GNU tar's arguments to pack the raw disk raw as dst, the
// archive GCE imports: one member named disk.raw, stored sparse (the holes
// of a mostly empty disk take no room and need no reading on import), in
// the old GNU format GCE documents, gzip'ed. Owner and time are fixed so
// that the same disk gives the same archive; gzip stores no time when it
// reads from tar.
func GCETarArgs(raw, dst string) []string {
	return []string{"--create", "--force-local", "--file=" + dst, "--gzip", "--sparse", "--format=oldgnu",
		"--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "--transform=s|.*|" + GCEDiskName + "|",
		"--directory=" + filepath.Dir(raw), filepath.Base(raw)}
}
