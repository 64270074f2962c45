package emulator

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBlockSet: blocks are aligned, first fit, never overlap; a released
// block is the next one handed out; explicit claims collide with what
// overlaps them, naming its holder.
func TestBlockSet(t *testing.T) {
	pods := netip.MustParsePrefix("10.64.0.0/22")
	type step struct {
		op     string // alloc (bits), claim or release (cidr)
		bits   int
		cidr   string
		holder string
		want   string // the block, or the holder in the way, or "" for a failure
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order, then exhausted", []step{
			{op: "alloc", bits: 24, holder: "a", want: "10.64.0.0/24"},
			{op: "alloc", bits: 24, holder: "b", want: "10.64.1.0/24"},
			{op: "alloc", bits: 24, holder: "c", want: "10.64.2.0/24"},
			{op: "alloc", bits: 24, holder: "d", want: "10.64.3.0/24"},
			{op: "alloc", bits: 24, holder: "e", want: ""},
			{op: "alloc", bits: 32, holder: "e", want: ""},
		}},
		{"a freed block is reused", []step{
			{op: "alloc", bits: 24, holder: "a", want: "10.64.0.0/24"},
			{op: "alloc", bits: 24, holder: "b", want: "10.64.1.0/24"},
			{op: "alloc", bits: 24, holder: "c", want: "10.64.2.0/24"},
			{op: "release", cidr: "10.64.1.0/24", holder: "b"},
			{op: "alloc", bits: 24, holder: "d", want: "10.64.1.0/24"},
			{op: "alloc", bits: 24, holder: "e", want: "10.64.3.0/24"},
		}},
		{"release by someone else does nothing", []step{
			{op: "alloc", bits: 24, holder: "a", want: "10.64.0.0/24"},
			{op: "release", cidr: "10.64.0.0/24", holder: "b"},
			{op: "release", cidr: "10.64.0.0/25", holder: "a"},
			{op: "alloc", bits: 24, holder: "c", want: "10.64.1.0/24"},
		}},
		{"alignment skips what a smaller block leaves", []step{
			{op: "alloc", bits: 26, holder: "a", want: "10.64.0.0/26"},
			{op: "alloc", bits: 24, holder: "b", want: "10.64.1.0/24"},
			{op: "alloc", bits: 26, holder: "c", want: "10.64.0.64/26"},
			{op: "alloc", bits: 23, holder: "d", want: "10.64.2.0/23"},
			{op: "alloc", bits: 25, holder: "e", want: "10.64.0.128/25"},
			{op: "alloc", bits: 32, holder: "f", want: ""},
		}},
		{"explicit claims", []step{
			{op: "claim", cidr: "10.64.1.0/24", holder: "a", want: "10.64.1.0/24"},
			{op: "claim", cidr: "10.64.1.128/25", holder: "b", want: "a"},
			{op: "claim", cidr: "10.64.0.0/23", holder: "b", want: "a"},
			{op: "claim", cidr: "10.64.0.0/24", holder: "b", want: "10.64.0.0/24"},
			{op: "alloc", bits: 24, holder: "c", want: "10.64.2.0/24"},
			{op: "alloc", bits: 23, holder: "d", want: ""},
		}},
		{"wider than the range", []step{
			{op: "alloc", bits: 21, holder: "a", want: ""},
			{op: "alloc", bits: 22, holder: "a", want: "10.64.0.0/22"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newBlockSet()
			for i, st := range tt.steps {
				var got string
				switch st.op {
				case "alloc":
					if p, ok := s.alloc(pods, st.bits, st.holder, nil); ok {
						got = p.String()
					}
				case "claim":
					p := netip.MustParsePrefix(st.cidr)
					if h, ok := s.claim(p, st.holder); ok {
						got = p.String()
					} else {
						got = h
					}
				case "release":
					s.release(netip.MustParsePrefix(st.cidr), st.holder)
					continue
				}
				if got != st.want {
					t.Fatalf("step %d %s /%d %s by %s: got %q, want %q", i, st.op, st.bits, st.cidr, st.holder, got, st.want)
				}
			}
		})
	}
}

// TestBlockSetSkip: a block the caller refuses (addresses of the primary
// range held one by one) is passed over, and tried again later.
func TestBlockSetSkip(t *testing.T) {
	primary := netip.MustParsePrefix("10.128.0.0/29")
	held := map[uint64]bool{addrNum(netip.MustParseAddr("10.128.0.2")): true}
	skip := func(lo, hi uint64) bool {
		for n := lo; n <= hi; n++ {
			if held[n] {
				return true
			}
		}
		return false
	}
	s := newBlockSet()
	var got []string
	for range 4 {
		p, ok := s.alloc(primary, 31, "vm", skip)
		if !ok {
			got = append(got, "none")
			continue
		}
		got = append(got, p.String())
	}
	if want := []string{"10.128.0.0/31", "10.128.0.4/31", "10.128.0.6/31", "none"}; !cmp.Equal(got, want) {
		t.Errorf("allocations %v, want %v", got, want)
	}
	delete(held, addrNum(netip.MustParseAddr("10.128.0.2")))
	if p, ok := s.alloc(primary, 31, "vm", skip); !ok || p.String() != "10.128.0.2/31" {
		t.Errorf("after the address was freed: %v %v, want 10.128.0.2/31", p, ok)
	}
}

// TestBlockSetSearchStartsAtFreeSpace: filling a range in order, each
// search starts where the free space begins (a binary search, not a walk
// over every block taken), and a release moves that start back.
func TestBlockSetSearchStartsAtFreeSpace(t *testing.T) {
	pods := netip.MustParsePrefix("10.64.0.0/14")
	s := newBlockSet()
	for i := range 1000 {
		p, ok := s.alloc(pods, 24, fmt.Sprint("vm-", i), nil)
		if !ok {
			t.Fatalf("allocation %d failed", i)
		}
		if want := numAddr(addrNum(pods.Addr()) + uint64(i+1)*256); s.dense[pods] != addrNum(want) {
			t.Fatalf("after %s the search starts at %s, want %s", p, numAddr(s.dense[pods]), want)
		}
	}
	s.release(netip.MustParsePrefix("10.64.1.0/24"), "vm-1")
	if got := numAddr(s.dense[pods]); got != netip.MustParseAddr("10.64.1.0") {
		t.Fatalf("after a release the search starts at %s, want 10.64.1.0", got)
	}
	if p, _ := s.alloc(pods, 24, "new", nil); p.String() != "10.64.1.0/24" {
		t.Errorf("allocated %s, want the freed 10.64.1.0/24", p)
	}
	if got := numAddr(s.dense[pods]); got != netip.MustParseAddr("10.67.232.0") {
		t.Errorf("the search starts at %s once the gap is filled, want 10.67.232.0", got)
	}
	// The range holds 1,024 /24s.
	for i := 1000; i < 1024; i++ {
		if _, ok := s.alloc(pods, 24, fmt.Sprint("vm-", i), nil); !ok {
			t.Fatalf("allocation %d failed", i)
		}
	}
	if p, ok := s.alloc(pods, 24, "one-too-many", nil); ok {
		t.Errorf("allocated %s from a full range", p)
	}
}

func BenchmarkBlockSetAlloc(b *testing.B) {
	pods := netip.MustParsePrefix("10.0.0.0/8")
	for b.Loop() {
		s := newBlockSet()
		for range 1000 {
			if _, ok := s.alloc(pods, 24, "vm", nil); !ok {
				b.Fatal("exhausted")
			}
		}
	}
}
