package emulator

import "net/netip"

// ipPool hands out IPv4 addresses. Every address is unique across the whole
// emulator (all projects and networks), because the data plane binds them
// all on this machine's loopback. Guarded by Server.mu.
type ipPool struct {
	external netip.Prefix
	cursor   map[netip.Prefix]netip.Addr
	used     map[netip.Addr]string // address → selfLink of its holder
}

func newIPPool(external netip.Prefix) *ipPool {
	return &ipPool{external: external.Masked(), cursor: map[netip.Prefix]netip.Addr{}, used: map[netip.Addr]string{}}
}

// allocate returns a free address in prefix (the external range when prefix
// is invalid), skipping each /24's .0, .1 and .255 (network, gateway,
// broadcast). ok is false when the range is exhausted.
func (p *ipPool) allocate(prefix netip.Prefix, holder string) (netip.Addr, bool) {
	if !prefix.IsValid() {
		prefix = p.external
	}
	prefix = prefix.Masked()
	start, ok := p.cursor[prefix]
	if !ok || !prefix.Contains(start) {
		start = prefix.Addr()
	}
	a := start
	for {
		b := a.As4()
		if b[3] > 1 && b[3] < 255 {
			if _, taken := p.used[a]; !taken {
				p.used[a] = holder
				p.cursor[prefix] = a.Next()
				return a, true
			}
		}
		a = a.Next()
		if !prefix.Contains(a) {
			a = prefix.Addr()
		}
		if a == start {
			return netip.Addr{}, false
		}
	}
}

// claim takes a specific address; it fails when someone else holds it.
func (p *ipPool) claim(a netip.Addr, holder string) bool {
	if h, taken := p.used[a]; taken && h != holder {
		return false
	}
	p.used[a] = holder
	return true
}

func (p *ipPool) holder(a netip.Addr) (string, bool) {
	h, ok := p.used[a]
	return h, ok
}

func (p *ipPool) release(a netip.Addr) { delete(p.used, a) }

// setHolder moves an address to a new holder (a static IP going from
// RESERVED to a user keeps the address).
func (p *ipPool) setHolder(a netip.Addr, holder string) { p.used[a] = holder }
