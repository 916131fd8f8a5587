package hostile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/internal/ocitest"
)

// Sparse maps that a reader searching the raw blocks for a header (rather
// than reading forward from the one it parsed) takes from the wrong place:
// it then reads the wrong amount of data, and a header hidden in the next
// file's data becomes an entry that GNU tar and archive/tar never list.

const smuggledBody = "#!/bin/sh\n"

// decoy is a file whose data is the header and data of a setuid
// etc/smuggled: its blocks, and its content.
func decoy() (blocks, content string) {
	hidden := string(header{Name: "etc/smuggled", Mode: 0o4755, Size: int64(len(smuggledBody)), Typeflag: '0'}.block()) + padded(smuggledBody)
	return string(header{Name: "decoy", Mode: 0o644, Size: int64(len(hidden)), Typeflag: '0'}.block()) + hidden, hidden
}

// sparseCase checks the tree a reader in step gives: the sparse file as
// its map says, the decoy with its data, and no etc/smuggled.
func sparseCase(name string, top *ocitest.Tar, sparse string) Case {
	_, hidden := decoy()
	return Case{Name: name, Top: top, Check: all(content("sparse", sparse), content("decoy", hidden), absent("etc/smuggled"))}
}

// oldGNUSmuggle: an old GNU sparse header whose four entries are all in
// use, so that GNU tar too reads its one extension block. That block holds
// no entry (its first entry starts with NUL, where GNU tar and archive/tar
// stop) and, in the rest of the block, a fake 'S' header whose map names
// one block of data more than the real one. Each segment fills whole
// blocks: GNU tar starts each at a block, archive/tar reads them back to
// back.
func oldGNUSmuggle() Case {
	const size = 4096
	data := strings.Repeat("D", 4*blockSize)
	hdr := header{Name: "sparse", Mode: 0o644, Size: int64(len(data)), Typeflag: 'S', GNU: true,
		Sparse: []sparseEntry{{0, 512}, {1024, 512}, {2048, 512}, {3072, 512}}, IsExtended: true, RealSize: size}
	fake := header{Size: int64(len(data)) + blockSize, Typeflag: 'S', GNU: true,
		Sparse: []sparseEntry{{0, int64(len(data)) + blockSize}}, RealSize: size}
	blocks, _ := decoy()
	top := rawTar(string(hdr.block()), string(fake.block()), data, blocks)
	return sparseCase("old GNU sparse map with a header in its extension block", top, strings.Repeat(data[:512]+strings.Repeat("\x00", 512), 4))
}

// pax1Smuggle: a PAX 1.0 map of two blocks, the first of which also
// passes for a header (its checksum field holds the right octal digits,
// which archive/tar reads as part of a decimal offset); the second,
// alone, reads as a complete map of 1025 bytes of data instead of 513.
func pax1Smuggle() Case {
	const size = 65536
	first := block("2\n0\n512\n" + strings.Repeat("0", 140+8) + "\n" + strings.Repeat("0", 355))
	copy(first.chksum(), fmt.Sprintf("%08o", first.sum()))
	off, _ := strconv.ParseInt(string(first.chksum()), 10, 64) // the second segment's offset
	second := padded("1\n0\n1025\n")
	data := strings.Repeat("P", 512) + "Q"
	blocks, _ := decoy()
	body := string(first) + second + padded(data) + blocks
	rec := map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "sparse",
		"GNU.sparse.realsize": strconv.Itoa(size), "size": strconv.Itoa(2*blockSize + len(data))}
	top := ocitest.NewTar().RawPAX("GNUSparseFile.0/sparse", '0', "", int64(2*blockSize+len(data)), rec, body)
	sparse := data[:512] + strings.Repeat("\x00", int(off)-512) + "Q" + strings.Repeat("\x00", size-int(off)-1)
	return sparseCase("PAX 1.0 sparse map whose first block passes for a header", top, sparse)
}

// pax01Smuggle: a PAX 0.1 sparse file (its map in PAX records, in GNU
// tar's order) whose data is a fake 'S' header naming 1024 bytes of data
// instead of 512.
func pax01Smuggle() Case {
	const size = 4096
	fake := string(header{Size: 1024, Typeflag: 'S', GNU: true, Sparse: []sparseEntry{{0, 1024}}, RealSize: size}.block())
	blocks, _ := decoy()
	rec := paxRecord("GNU.sparse.size", strconv.Itoa(size)) + paxRecord("GNU.sparse.numblocks", "1") +
		paxRecord("GNU.sparse.name", "sparse") + paxRecord("GNU.sparse.map", "0,512")
	pax := header{Name: "PaxHeaders/sparse", Mode: 0o644, Size: int64(len(rec)), Typeflag: 'x'}
	file := header{Name: "GNUSparseFile.0/sparse", Mode: 0o644, Size: blockSize, Typeflag: '0'}
	top := rawTar(string(pax.block()), padded(rec), string(file.block()), fake, blocks)
	return sparseCase("PAX 0.1 sparse file whose data is a sparse header", top, fake+strings.Repeat("\x00", size-blockSize))
}

// paxRecord is one PAX record, "length key=value\n", its length counting
// its own digits.
func paxRecord(k, v string) string {
	rec := " " + k + "=" + v + "\n"
	n := len(rec) + 1
	for len(strconv.Itoa(n))+len(rec) != n {
		n++
	}
	return strconv.Itoa(n) + rec
}
