package rootfs

// headerChain finds an entry's own header where archive/tar reads it. An
// entry's headers start where the previous entry's data ends; each PAX or
// GNU long-name header before the entry's own is followed by data of the
// size it declares. Following them forward from the start, as archive/tar
// does, gives the block archive/tar parsed; a search of the blocks read
// for one that looks like a header can find one hidden in a sparse map or
// in data, which archive/tar and GNU tar never parse.
type headerChain struct {
	next int64 // where the next header block of the entry starts
	own  int64 // where the entry's own header starts once read; else ownUnread or ownLost
}

const (
	ownUnread = -1
	ownLost   = -2 // a block of the chain was read in a large read or skipped
)

// start begins a new entry's chain at off.
func (c *headerChain) start(off int64) { *c = headerChain{next: off, own: ownUnread} }

// see follows the chain over the blocks the tap has read so far. Header
// blocks come in small reads, which the tap keeps.
func (c *headerChain) see(t *tap) {
	for c.own == ownUnread && t.off >= c.next+512 {
		b, ok := t.at(c.next, 512)
		if !ok {
			c.own = ownLost
			return
		}
		if !metaHeader(rawBlock(b).typeFlag()) {
			c.own = c.next
			return
		}
		size, err := parseNumeric(rawBlock(b).size())
		if err != nil || size > maxSpecialFile {
			c.own = ownLost // archive/tar refuses it too
			return
		}
		c.next += 512 + roundUp(size, 512)
	}
}
