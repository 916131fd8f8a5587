package vmrun

import (
	"bytes"
	"encoding/binary"
)

// gptHeader is a GPT header, at LBA 1.
type gptHeader []byte

func (h gptHeader) entriesLBA() uint64 { return binary.LittleEndian.Uint64(h[72:]) }
func (h gptHeader) entryCount() uint64 { return uint64(binary.LittleEndian.Uint32(h[80:])) }
func (h gptHeader) entrySize() uint64  { return uint64(binary.LittleEndian.Uint32(h[84:])) }

// gptEntry is a partition entry: type GUID, partition GUID, first and
// last LBA.
type gptEntry []byte

func (e gptEntry) typeGUID() []byte { return e[0:16] }
func (e gptEntry) firstLBA() uint64 { return binary.LittleEndian.Uint64(e[32:]) }
func (e gptEntry) lastLBA() uint64  { return binary.LittleEndian.Uint64(e[40:]) }

// gptPart is a used partition entry, in bytes.
type gptPart struct {
	num         int    // 1-based, as GRUB's gptN counts
	typ         string // type GUID as guidString prints it
	start, size int64
}

// gptPartitions returns the used entries of the GPT whose header is at LBA
// 1, for 512- and 4096-byte sectors; ok is false when there is none or its
// entries lie beyond head. An entry whose range is reversed or beyond
// 2^63 bytes has size 0.
func gptPartitions(head []byte) (parts []gptPart, ok bool) {
	for _, sector := range []uint64{512, 4096} {
		if uint64(len(head)) < 2*sector || !bytes.Equal(head[sector:sector+8], []byte("EFI PART")) {
			continue
		}
		h := gptHeader(head[sector:])
		start, count, size := h.entriesLBA()*sector, h.entryCount(), h.entrySize()
		if size < 128 || count > 4096 || start > uint64(len(head)) || count*size > uint64(len(head))-start {
			return nil, false
		}
		for i := range count {
			e := gptEntry(head[start+i*size:])
			if allZeroBytes(e.typeGUID()) {
				continue
			}
			p := gptPart{num: int(i) + 1, typ: guidString(e.typeGUID())}
			if first, last := e.firstLBA(), e.lastLBA(); first <= last && last < 1<<63/sector {
				p.start, p.size = int64(first*sector), int64((last-first+1)*sector)
			}
			parts = append(parts, p)
		}
		return parts, true
	}
	return nil, false
}
