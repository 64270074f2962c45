// Alias IP ranges: the CIDR blocks instances take from a subnetwork's
// ranges. A blockSet keeps the blocks taken, disjoint and sorted, so that
// picking a free aligned block is a binary search and a short walk, not a
// scan of every address: a managed instance group of 1,000 VMs takes 1,000
// /24s of one secondary range.

package emulator

import (
	"net/netip"
	"slices"
	"sort"
)

// blockSet holds alias blocks and who holds each. Guarded by Server.mu.
type blockSet struct {
	blocks []aliasBlock // disjoint, sorted by lo
	// dense maps a range allocations are made in to a bound below which
	// every address of it is taken by blocks: the search starts there, so
	// that filling a range in order costs a binary search per block.
	dense map[netip.Prefix]uint64
}

// aliasBlock is one taken block, its addresses as integers (lo and hi
// inclusive; uint64 so that hi+1 never wraps).
type aliasBlock struct {
	lo, hi uint64
	holder string // selfLink of the instance
}

func newBlockSet() *blockSet { return &blockSet{dense: map[netip.Prefix]uint64{}} }

func addrNum(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

func numAddr(n uint64) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// bounds are a prefix's first and last addresses.
func bounds(p netip.Prefix) (lo, hi uint64) {
	lo = addrNum(p.Masked().Addr())
	return lo, lo + 1<<(32-p.Bits()) - 1
}

// first returns the index of the first block that ends at or after n.
func (s *blockSet) first(n uint64) int {
	return sort.Search(len(s.blocks), func(i int) bool { return s.blocks[i].hi >= n })
}

// holderOf returns who holds a block overlapping p, if anyone does.
func (s *blockSet) holderOf(p netip.Prefix) (string, bool) {
	lo, hi := bounds(p)
	if i := s.first(lo); i < len(s.blocks) && s.blocks[i].lo <= hi {
		return s.blocks[i].holder, true
	}
	return "", false
}

// claim takes exactly p; it fails, naming the holder, when any of p is taken.
func (s *blockSet) claim(p netip.Prefix, holder string) (string, bool) {
	lo, hi := bounds(p)
	i := s.first(lo)
	if i < len(s.blocks) && s.blocks[i].lo <= hi {
		return s.blocks[i].holder, false
	}
	s.insert(i, aliasBlock{lo: lo, hi: hi, holder: holder})
	return "", true
}

// alloc takes the first free block of prefix length bits, aligned, inside
// within. skip, when not nil, refuses a candidate block for a reason the
// set does not know (addresses the primary range hands out one by one).
func (s *blockSet) alloc(within netip.Prefix, bits int, holder string, skip func(lo, hi uint64) bool) (netip.Prefix, bool) {
	within = within.Masked()
	if bits < within.Bits() || bits > 32 {
		return netip.Prefix{}, false
	}
	s.track(within)
	start, end := bounds(within)
	size := uint64(1) << (32 - bits)
	cand := alignUp(max(start, s.dense[within]), size)
	i := s.first(cand)
	for cand+size-1 <= end {
		switch {
		case i < len(s.blocks) && s.blocks[i].lo <= cand+size-1:
			cand = alignUp(s.blocks[i].hi+1, size)
		case skip != nil && skip(cand, cand+size-1):
			cand += size
		default:
			s.insert(i, aliasBlock{lo: cand, hi: cand + size - 1, holder: holder})
			return netip.PrefixFrom(numAddr(cand), bits), true
		}
		for i < len(s.blocks) && s.blocks[i].hi < cand {
			i++
		}
	}
	return netip.Prefix{}, false
}

func alignUp(n, size uint64) uint64 { return (n + size - 1) / size * size }

// insert puts b at index i and moves the dense bounds it reaches.
func (s *blockSet) insert(i int, b aliasBlock) {
	s.blocks = slices.Insert(s.blocks, i, b)
	for w, d := range s.dense {
		if b.lo > d || b.hi < d {
			continue
		}
		for j := i; j < len(s.blocks) && s.blocks[j].lo <= d; j++ {
			d = s.blocks[j].hi + 1
		}
		s.dense[w] = d
	}
}

// track makes within a range whose dense bound is kept.
func (s *blockSet) track(within netip.Prefix) {
	within = within.Masked()
	if _, ok := s.dense[within]; ok {
		return
	}
	lo, _ := bounds(within)
	d := lo
	for j := s.first(lo); j < len(s.blocks) && s.blocks[j].lo <= d; j++ {
		d = max(d, s.blocks[j].hi+1)
	}
	s.dense[within] = d
}

// release gives p back if holder holds exactly it.
func (s *blockSet) release(p netip.Prefix, holder string) {
	lo, hi := bounds(p)
	i := s.first(lo)
	if i >= len(s.blocks) || s.blocks[i].lo != lo || s.blocks[i].hi != hi || s.blocks[i].holder != holder {
		return
	}
	s.blocks = slices.Delete(s.blocks, i, i+1)
	for w, d := range s.dense {
		if lo < d {
			s.dense[w] = max(lo, addrNum(w.Addr()))
		}
	}
}

// untrack forgets a range (a secondary range removed from its subnet).
func (s *blockSet) untrack(within netip.Prefix) { delete(s.dense, within.Masked()) }
