package dataplane

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hakube/hakube/internal/emulator/guest"
)

// Report is what the data plane reports (the emulator serves it as GET
// /emulator/v1/dataplane): what answers on each IP the emulator handed out,
// each master's boot, each forwarding rule's propagation and each pool
// member's health.
type Report struct {
	// Enabled is false when the emulator runs without a data plane
	// (Options.DataPlane, --dataplane); everything else is then empty.
	Enabled         bool             `json:"enabled"`
	Addresses       []AddressStatus  `json:"addresses"`
	Instances       []InstanceStatus `json:"instances"`
	ForwardingRules []RuleStatus     `json:"forwardingRules"`
	TargetPools     []PoolStatus     `json:"targetPools"`
}

// AddressStatus is one IP: who holds it in the API and what answers there.
type AddressStatus struct {
	IP string `json:"ip"`
	// Holder is the resource the API gave the IP to (an instance, a
	// forwarding rule or a reserved address), empty when none does.
	Holder string `json:"holder,omitempty"`
	// Answers is "instance", "forwardingRule" or "nothing".
	Answers        string `json:"answers"`
	Instance       string `json:"instance,omitempty"`
	ForwardingRule string `json:"forwardingRule,omitempty"`
	// Reason says why nothing answers.
	Reason string       `json:"reason,omitempty"`
	Ports  []PortStatus `json:"ports,omitempty"`
}

// PortStatus is one port the data plane serves, or failed to bind, on an IP.
type PortStatus struct {
	Port      int    `json:"port"`
	Protocol  string `json:"protocol"` // https (API server), http (health-check port), tcp (forwarding)
	Listening bool   `json:"listening"`
	// Dropping: the port is held for a forwarding rule that does not
	// forward yet, and connections to it time out as on GCE.
	Dropping bool `json:"dropping,omitempty"`
	// Error is the last bind failure and the setting to change.
	Error string `json:"error,omitempty"`
}

// InstanceStatus is one VM as its guest sees itself.
type InstanceStatus struct {
	Instance string `json:"instance"`
	Status   string `json:"status"` // the API's status
	Master   bool   `json:"master"`
	// Kubernetes: the VM runs the Kubernetes guest (real processes on
	// masters), not the static one.
	Kubernetes bool `json:"kubernetes,omitempty"`
	// State is stopped (not RUNNING), zoneDown or booting (until ReadyAt)
	// for every VM. An up VM is, with the static guest, notMaster, failed
	// (see Error) or answering; with the Kubernetes guest, starting,
	// running, failing (a component keeps exiting: Error and Components say
	// which and why) or failed (its processes could not be started: Error).
	State           string    `json:"state"`
	ReadyAt         time.Time `json:"readyAt,omitzero"`
	APIServerPort   int       `json:"apiServerPort,omitempty"`
	HealthCheckPort int       `json:"healthCheckPort,omitempty"`
	IPs             []string  `json:"ips,omitempty"`
	Cert            string    `json:"cert,omitempty"` // metadata or generated
	Error           string    `json:"error,omitempty"`
	// Boots counts the VM's boots in this emulator; Components are its
	// processes in the running boot (a Kubernetes master's).
	Boots      int                     `json:"boots,omitempty"`
	Components []guest.ComponentStatus `json:"components,omitempty"`
}

// RuleStatus is one forwarding rule's data-plane state.
type RuleStatus struct {
	ForwardingRule string `json:"forwardingRule"`
	IP             string `json:"ip"`
	PortRange      string `json:"portRange"`
	Target         string `json:"target"`
	// State is pending (insert not DONE), propagating (until ReadyAt),
	// forwarding or unsupported (see Error).
	State   string    `json:"state"`
	ReadyAt time.Time `json:"readyAt,omitzero"`
	Error   string    `json:"error,omitempty"`
}

// PoolStatus is one pool's members and their health.
type PoolStatus struct {
	TargetPool  string         `json:"targetPool"`
	HealthCheck string         `json:"healthCheck,omitempty"`
	Members     []MemberStatus `json:"members"`
}

// MemberStatus is a pool member as forwarding sees it. Without a health
// check every member counts as HEALTHY, as on GCE.
type MemberStatus struct {
	Instance  string    `json:"instance"`
	IP        string    `json:"ip,omitempty"`
	Health    string    `json:"health"` // HEALTHY or UNHEALTHY
	LastProbe time.Time `json:"lastProbe,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// DisabledReport is the report of an emulator without a data plane.
func DisabledReport() Report { return emptyReport(false) }

func emptyReport(enabled bool) Report {
	return Report{Enabled: enabled, Addresses: []AddressStatus{}, Instances: []InstanceStatus{},
		ForwardingRules: []RuleStatus{}, TargetPools: []PoolStatus{}}
}

// Report runs a reconcile pass, so that it reflects every change made
// before the call, and returns the status with live member health.
func (d *Plane) Report(ctx context.Context) Report {
	d.sync(ctx)
	d.mu.Lock()
	out := d.status
	d.mu.Unlock()
	pools := make([]PoolStatus, len(out.TargetPools))
	for i, tp := range out.TargetPools {
		tp.Members = append([]MemberStatus{}, tp.Members...)
		for j := range tp.Members {
			m := &tp.Members[j]
			m.Health = "HEALTHY"
			if tp.HealthCheck != "" {
				h := d.HealthOf(tp.TargetPool, m.Instance, tp.HealthCheck)
				if !h.Healthy {
					m.Health = "UNHEALTHY"
				}
				m.LastProbe, m.LastError = h.LastProbe, h.LastError
			}
		}
		pools[i] = tp
	}
	out.TargetPools = pools
	return out
}

// publish stores what Report reports.
func (d *Plane) publish(ps *pass, vms []InstanceStatus, rules []RuleStatus) {
	addrs := d.addressStatus(ps, vms, rules)
	pools := make([]PoolStatus, 0, len(ps.pools))
	for _, key := range slices.Sorted(maps.Keys(ps.pools)) {
		pp := ps.pools[key]
		tp := PoolStatus{TargetPool: pp.Link}
		if pp.check != nil {
			tp.HealthCheck = pp.check.Link
		}
		for _, m := range pp.Members {
			mv := MemberStatus{Instance: m.Link}
			if m.Dial.IsValid() {
				mv.IP = m.Dial.String()
			}
			tp.Members = append(tp.Members, mv)
		}
		pools = append(pools, tp)
	}
	d.mu.Lock()
	d.status = Report{Enabled: true, Addresses: addrs, Instances: vms, ForwardingRules: rules, TargetPools: pools}
	d.mu.Unlock()
}

// addressStatus says, for every IP handed out or listened on, what answers
// there, and why nothing does.
func (d *Plane) addressStatus(ps *pass, vms []InstanceStatus, rules []RuleStatus) []AddressStatus {
	byIP := map[netip.Addr]*AddressStatus{}
	get := func(a netip.Addr) *AddressStatus {
		e := byIP[a]
		if e == nil {
			e = &AddressStatus{IP: a.String(), Holder: ps.holders[a], Answers: "nothing"}
			byIP[a] = e
		}
		return e
	}
	for a := range ps.holders {
		get(a)
	}
	for _, ap := range slices.SortedFunc(maps.Keys(d.listeners), netip.AddrPort.Compare) {
		l := d.listeners[ap]
		e := get(ap.Addr())
		if l.kind == kindDrop {
			e.Ports = append(e.Ports, PortStatus{Port: int(ap.Port()), Protocol: l.protocol, Dropping: l.ln != nil, Error: l.err})
			continue
		}
		e.Ports = append(e.Ports, PortStatus{Port: int(ap.Port()), Protocol: l.protocol, Listening: l.ln != nil, Error: l.err})
		if l.ln == nil {
			continue
		}
		if l.kind == kindForward {
			e.Answers, e.ForwardingRule = "forwardingRule", l.owner
		} else {
			e.Answers, e.Instance = "instance", l.owner
		}
	}
	// Say why nothing answers where the API has handed out an IP.
	for _, e := range byIP {
		for _, p := range e.Ports {
			if e.Answers == "nothing" && p.Error != "" && e.Reason == "" {
				e.Reason = "the data plane cannot listen here (see ports)"
			}
		}
	}
	for _, v := range vms {
		for _, ip := range v.IPs {
			if e := byIP[addrOf(ip)]; e != nil && e.Answers == "nothing" && e.Reason == "" {
				e.Reason = instanceReason(v)
			}
		}
	}
	for _, r := range rules {
		if e := byIP[addrOf(r.IP)]; e != nil && e.Answers == "nothing" && e.Reason == "" {
			e.Reason = "forwarding rule " + r.State
			if r.Error != "" {
				e.Reason += ": " + r.Error
			}
		}
	}
	addrs := make([]AddressStatus, 0, len(byIP))
	for _, a := range slices.SortedFunc(maps.Keys(byIP), netip.Addr.Compare) {
		e := byIP[a]
		if e.Answers == "nothing" && e.Reason == "" {
			e.Reason = "nothing is bound to this IP"
			if strings.Contains(e.Holder, "/addresses/") {
				e.Reason = "reserved, not in use"
			}
		}
		addrs = append(addrs, *e)
	}
	return addrs
}

func instanceReason(v InstanceStatus) string {
	switch v.State {
	case "stopped":
		return "instance " + v.Status
	case "notMaster":
		return "instance is not a master (no KUBERNETES_MASTER: 'true' in kube-env)"
	case "failed":
		if v.Kubernetes {
			return "instance's guest failed: " + v.Error
		}
		return "instance's API server cannot start: " + v.Error
	case "zoneDown":
		return "instance's zone is DOWN"
	case "booting":
		return "instance booting until " + v.ReadyAt.Format(time.RFC3339Nano)
	}
	return "instance " + v.State
}

// addrOf parses an IP string; invalid input yields the zero Addr.
func addrOf(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a
}

// bindErrorMessage explains a failed bind and names the setting to change.
func bindErrorMessage(ap netip.AddrPort, w *want, err error) string {
	what, fix := w.svc.What, w.svc.PrivilegedFix
	if w.kind == kindForward || w.kind == kindDrop { // a dropping rule holds the same ports it will forward
		what = "forwarding rule " + lastSegment(w.owner)
		fix = "Give the forwarding rule a port range ≥ 1024, e.g. the API server port from hakube --apiserver-port 6443"
	}
	msg := fmt.Sprintf("cannot listen on %s for %s: %v", ap, what, err)
	switch {
	case errors.Is(err, syscall.EACCES):
		msg += "; ports below 1024 need root (or CAP_NET_BIND_SERVICE) and this emulator runs as an unprivileged user. " + fix
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		msg += "; the IP is not on this machine. Linux routes all of 127.0.0.0/8 to loopback; on macOS add it with 'sudo ifconfig lo0 alias " +
			ap.Addr().String() + " up'. Keep subnet ranges inside --internal-range and addresses inside --external-range"
	case errors.Is(err, syscall.EADDRINUSE):
		msg += "; another process (or another emulator sharing the IP ranges) holds this address: give each emulator its own --external-range and --internal-range"
	}
	return msg
}

// lastSegment returns the name at the end of a URL or path.
func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}
