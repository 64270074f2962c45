// Who holds which IP: the pool every address comes from, and the claims
// instances, forwarding rules and static addresses make on it.

package emulator

import (
	"fmt"
	"net/netip"

	compute "google.golang.org/api/compute/v1"
)

// ipPool hands out IPv4 addresses. Every address is unique across the whole
// emulator (all projects and networks), because the data plane binds them
// all on this machine's loopback. Guarded by Server.mu.
type ipPool struct {
	external netip.Prefix
	cursor   map[netip.Prefix]netip.Addr
	used     map[netip.Addr]string // address → selfLink of its holder
	// aliases are the alias IP ranges taken from subnetworks' primary
	// ranges: no address of them goes to anyone else.
	aliases *blockSet
}

func newIPPool(external netip.Prefix) *ipPool {
	return &ipPool{external: external.Masked(), cursor: map[netip.Prefix]netip.Addr{}, used: map[netip.Addr]string{},
		aliases: newBlockSet()}
}

// inAlias reports whether a lies in an alias block.
func (p *ipPool) inAlias(a netip.Addr) bool {
	_, ok := p.aliases.holderOf(netip.PrefixFrom(a, 32))
	return ok
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
			if _, taken := p.used[a]; !taken && !p.inAlias(a) {
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
	if h, taken := p.used[a]; taken && h != holder || p.inAlias(a) {
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

// findAddressByIP returns the static address of region that holds ip.
func (p *project) findAddressByIP(region string, ip netip.Addr) *compute.Address {
	for _, a := range p.addresses.list("") {
		if addrOf(a.Address) == ip && (region == "" || lastSegment(a.Region) == region) {
			return a
		}
	}
	return nil
}

// useExternalIP gives ip to user (an instance access config or a forwarding
// rule) in region. The IP must be a RESERVED static address of that region,
// or free in the external range; a static IP in use elsewhere or in another
// region is refused as GCE refuses it.
func (p *project) useExternalIP(region string, ip netip.Addr, user, field string) *apiError {
	if a := p.findAddressByIP("", ip); a != nil {
		if lastSegment(a.Region) != region {
			return errInvalidField(field, ip.String(), fmt.Sprintf("The address is in region '%s', not '%s'.", lastSegment(a.Region), region))
		}
		if a.Status == "IN_USE" && (len(a.Users) == 0 || a.Users[0] != user) {
			return errInvalidField(field, ip.String(), "Specified IP address is in-use and would result in a conflict.")
		}
		if a.Status == "RESERVING" {
			return errNotReady(relPath(p.name, "regions/"+region, "addresses", a.Name))
		}
		a.Status = "IN_USE"
		a.Users = []string{user}
		return nil
	}
	if h, held := p.st.ips.holder(ip); held {
		if h == user {
			return nil
		}
		return errInvalidField(field, ip.String(), "Specified IP address is in-use and would result in a conflict.")
	}
	return errInvalidField(field, ip.String(), "The IP address is not reserved in this project; reserve it as a static address first.")
}

// releaseExternalIP undoes useExternalIP or an ephemeral allocation: a
// static address goes back to RESERVED, an ephemeral IP is freed.
func (p *project) releaseExternalIP(ip netip.Addr, user string) {
	if !ip.IsValid() {
		return
	}
	if a := p.findAddressByIP("", ip); a != nil {
		if len(a.Users) > 0 && a.Users[0] == user {
			a.Status = "RESERVED"
			a.Users = nil
		}
		p.st.ips.setHolder(ip, a.SelfLink)
		return
	}
	if h, ok := p.st.ips.holder(ip); ok && h == user {
		p.st.ips.release(ip)
	}
}

// claimInternalIP takes a requested networkIP: free, or a RESERVED internal
// static address of the region, which then turns IN_USE.
func (p *project) claimInternalIP(region string, ip netip.Addr, user, field string) *apiError {
	if a := p.findAddressByIP("", ip); a != nil && a.AddressType == "INTERNAL" {
		if lastSegment(a.Region) != region || a.Status == "IN_USE" && (len(a.Users) == 0 || a.Users[0] != user) {
			return errInvalidField(field, ip.String(), fmt.Sprintf("IP address '%s' (or range) is already in use.", ip))
		}
		a.Status = "IN_USE"
		a.Users = []string{user}
		return nil
	}
	if !p.st.ips.claim(ip, user) {
		return errInvalidField(field, ip.String(), fmt.Sprintf("IP address '%s' (or range) is already in use.", ip))
	}
	return nil
}

// releaseInternalIP undoes claimInternalIP or an allocation.
func (p *project) releaseInternalIP(ip netip.Addr, user string) {
	if !ip.IsValid() {
		return
	}
	if a := p.findAddressByIP("", ip); a != nil && a.AddressType == "INTERNAL" {
		if len(a.Users) > 0 && a.Users[0] == user {
			a.Status = "RESERVED"
			a.Users = nil
		}
		return
	}
	if h, ok := p.st.ips.holder(ip); ok && h == user {
		p.st.ips.release(ip)
	}
}

// allocEphemeral hands out an ephemeral external IP to user.
func (st *state) allocEphemeral(user string) (netip.Addr, *apiError) {
	ip, ok := st.ips.allocate(netip.Prefix{}, user)
	if !ok {
		return netip.Addr{}, &apiError{Code: 400, Reason: "invalid", OpCode: "IP_SPACE_EXHAUSTED", Message: "No external IP addresses are available."}
	}
	return ip, nil
}

// allocInternal hands out an internal IP inside the subnet's range, or the
// legacy network's range.
func (st *state) allocInternal(n *compute.Network, sn *compute.Subnetwork, holder string) (netip.Addr, *apiError) {
	cidr := n.IPv4Range
	if sn != nil {
		cidr = sn.IpCidrRange
	}
	pr, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, &apiError{Code: 400, Reason: "invalid", OpCode: "IP_SPACE_EXHAUSTED", Message: "Invalid subnetwork range " + cidr}
	}
	a, ok := st.ips.allocate(pr, holder)
	if !ok {
		return netip.Addr{}, &apiError{Code: 400, Reason: "invalid", OpCode: "IP_SPACE_EXHAUSTED",
			Message: fmt.Sprintf("IP space of '%s' is exhausted.", cidr)}
	}
	return a, nil
}

// releaseAddress deletes a static address. Its IP stays with its user, now
// as an ephemeral one, or goes back to the pool.
func (p *project) releaseAddress(a *compute.Address) {
	p.addresses.del("regions/"+lastSegment(a.Region), a.Name)
	ip := addrOf(a.Address)
	if len(a.Users) > 0 {
		p.st.ips.setHolder(ip, a.Users[0])
	} else {
		p.st.ips.release(ip)
	}
}
