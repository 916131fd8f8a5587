package rootfs

import "archive/tar"

// rawBlock is a 512-byte tar block as read, with the layout and the field
// names of archive/tar's format.go, for what archive/tar parses but does
// not return: where an entry's own header lies, and old GNU sparse maps.
type rawBlock []byte

func (b rawBlock) size() []byte   { return b[124:][:12] }
func (b rawBlock) typeFlag() byte { return b[156] }

// sparse is an old GNU header's sparse array: four entries, then the
// isExtended flag.
func (b rawBlock) sparse() sparseArray { return sparseArray(b[386:][:4*24+1]) }

// toSparse is an old GNU extension block as a sparse array: 21 entries,
// then the isExtended flag.
func (b rawBlock) toSparse() sparseArray { return sparseArray(b[:512]) }

type sparseArray []byte

func (s sparseArray) entry(i int) sparseElem { return sparseElem(s[i*24:]) }
func (s sparseArray) isExtended() []byte     { return s[24*s.maxEntries():][:1] }
func (s sparseArray) maxEntries() int        { return len(s) / 24 }

type sparseElem []byte

func (s sparseElem) offset() []byte { return s[0:][:12] }
func (s sparseElem) length() []byte { return s[12:][:12] }

// maxSpecialFile is the most data archive/tar reads for one PAX or GNU
// long-name header, or for a sparse map (format.go, maxSpecialFileSize).
const maxSpecialFile = 1 << 20

// metaHeader says whether archive/tar reads a header of this type as
// describing the header that follows, not as an entry (reader.go, next).
func metaHeader(typeflag byte) bool {
	switch typeflag {
	case tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return true
	}
	return false
}
