package emulator

import (
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// DataPlane is the answer of GET /emulator/v1/dataplane: what answers on
// each IP the emulator handed out, each master's boot, each forwarding
// rule's propagation and each pool member's health.
type DataPlane struct {
	// Enabled is false when the emulator runs without a data plane
	// (Options.DataPlane, --dataplane); everything else is then empty.
	Enabled         bool                      `json:"enabled"`
	Addresses       []DataPlaneAddress        `json:"addresses"`
	Instances       []DataPlaneInstance       `json:"instances"`
	ForwardingRules []DataPlaneForwardingRule `json:"forwardingRules"`
	TargetPools     []DataPlaneTargetPool     `json:"targetPools"`
}

// DataPlaneAddress is one IP: who holds it in the API and what answers there.
type DataPlaneAddress struct {
	IP string `json:"ip"`
	// Holder is the resource the API gave the IP to (an instance, a
	// forwarding rule or a reserved address), empty when none does.
	Holder string `json:"holder,omitempty"`
	// Answers is "instance", "forwardingRule" or "nothing".
	Answers        string `json:"answers"`
	Instance       string `json:"instance,omitempty"`
	ForwardingRule string `json:"forwardingRule,omitempty"`
	// Reason says why nothing answers.
	Reason string          `json:"reason,omitempty"`
	Ports  []DataPlanePort `json:"ports,omitempty"`
}

// DataPlanePort is one port the data plane serves, or failed to bind, on an IP.
type DataPlanePort struct {
	Port      int    `json:"port"`
	Protocol  string `json:"protocol"` // https (API server), http (health-check port), tcp (forwarding)
	Listening bool   `json:"listening"`
	// Dropping: the port is held for a forwarding rule that does not
	// forward yet, and connections to it time out as on GCE.
	Dropping bool `json:"dropping,omitempty"`
	// Error is the last bind failure and the setting to change.
	Error string `json:"error,omitempty"`
}

// DataPlaneInstance is one VM as its guest sees itself.
type DataPlaneInstance struct {
	Instance string `json:"instance"`
	Status   string `json:"status"` // the API's status
	Master   bool   `json:"master"`
	// State is stopped (not RUNNING), notMaster, failed (see Error),
	// zoneDown, booting (until ReadyAt) or answering.
	State           string    `json:"state"`
	ReadyAt         time.Time `json:"readyAt,omitzero"`
	APIServerPort   int       `json:"apiServerPort,omitempty"`
	HealthCheckPort int       `json:"healthCheckPort,omitempty"`
	IPs             []string  `json:"ips,omitempty"`
	Cert            string    `json:"cert,omitempty"` // metadata or generated
	Error           string    `json:"error,omitempty"`
}

// DataPlaneForwardingRule is one forwarding rule's data-plane state.
type DataPlaneForwardingRule struct {
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

// DataPlaneTargetPool is one pool's members and their health.
type DataPlaneTargetPool struct {
	TargetPool  string            `json:"targetPool"`
	HealthCheck string            `json:"healthCheck,omitempty"`
	Members     []DataPlaneMember `json:"members"`
}

// DataPlaneMember is a pool member as forwarding sees it. Without a health
// check every member counts as HEALTHY, as on GCE.
type DataPlaneMember struct {
	Instance  string    `json:"instance"`
	IP        string    `json:"ip,omitempty"`
	Health    string    `json:"health"` // HEALTHY or UNHEALTHY
	LastProbe time.Time `json:"lastProbe,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// dataPlaneRoutes registers the data plane's control endpoint.
func (s *Server) dataPlaneRoutes() {
	s.mux.HandleFunc("GET /emulator/v1/dataplane", s.ctlDataPlane)
}

func (s *Server) ctlDataPlane(w http.ResponseWriter, r *http.Request) {
	if s.dp == nil {
		ctlJSON(w, 200, DataPlane{Addresses: []DataPlaneAddress{}, Instances: []DataPlaneInstance{},
			ForwardingRules: []DataPlaneForwardingRule{}, TargetPools: []DataPlaneTargetPool{}})
		return
	}
	s.dp.sync(r.Context())
	ctlJSON(w, 200, s.dp.report())
}

// report is the last published status with live member health.
func (d *dataPlane) report() DataPlane {
	d.mu.Lock()
	out := d.status
	d.mu.Unlock()
	pools := make([]DataPlaneTargetPool, len(out.TargetPools))
	for i, tp := range out.TargetPools {
		tp.Members = append([]DataPlaneMember{}, tp.Members...)
		for j := range tp.Members {
			m := &tp.Members[j]
			m.Health = "HEALTHY"
			if tp.HealthCheck != "" {
				st, _ := d.healthOf(healthKey{tp.TargetPool, m.Instance, tp.HealthCheck})
				if !st.healthy {
					m.Health = "UNHEALTHY"
				}
				m.LastProbe, m.LastError = st.lastProbe, st.lastErr
			}
		}
		pools[i] = tp
	}
	out.TargetPools = pools
	return out
}

// publish stores what the control API reports.
func (d *dataPlane) publish(sn *snapshot, vms []DataPlaneInstance, rules []DataPlaneForwardingRule) {
	byIP := map[netip.Addr]*DataPlaneAddress{}
	get := func(a netip.Addr) *DataPlaneAddress {
		e := byIP[a]
		if e == nil {
			e = &DataPlaneAddress{IP: a.String(), Holder: sn.holders[a], Answers: "nothing"}
			byIP[a] = e
		}
		return e
	}
	for a := range sn.holders {
		get(a)
	}
	for _, ap := range slices.SortedFunc(maps.Keys(d.listeners), netip.AddrPort.Compare) {
		l := d.listeners[ap]
		e := get(ap.Addr())
		proto := map[string]string{kindAPIServer: "https", kindHealthCheck: "http", kindForward: "tcp", kindDrop: "tcp"}[l.kind]
		if l.kind == kindDrop {
			e.Ports = append(e.Ports, DataPlanePort{Port: int(ap.Port()), Protocol: proto, Dropping: l.ln != nil, Error: l.err})
			continue
		}
		e.Ports = append(e.Ports, DataPlanePort{Port: int(ap.Port()), Protocol: proto, Listening: l.ln != nil, Error: l.err})
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
	addrs := make([]DataPlaneAddress, 0, len(byIP))
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
	pools := make([]DataPlaneTargetPool, 0, len(sn.pools))
	for _, key := range slices.Sorted(maps.Keys(sn.pools)) {
		ps := sn.pools[key]
		tp := DataPlaneTargetPool{TargetPool: ps.link}
		if ps.check != nil {
			tp.HealthCheck = ps.check.link
		}
		for _, m := range ps.members {
			mv := DataPlaneMember{Instance: m.link}
			if m.dial.IsValid() {
				mv.IP = m.dial.String()
			}
			tp.Members = append(tp.Members, mv)
		}
		pools = append(pools, tp)
	}
	d.mu.Lock()
	d.status = DataPlane{Enabled: true, Addresses: addrs, Instances: vms, ForwardingRules: rules, TargetPools: pools}
	d.mu.Unlock()
}

func instanceReason(v DataPlaneInstance) string {
	switch v.State {
	case "stopped":
		return "instance " + v.Status
	case "notMaster":
		return "instance is not a master (no KUBERNETES_MASTER: 'true' in kube-env)"
	case "failed":
		return "instance's API server cannot start: " + v.Error
	case "zoneDown":
		return "instance's zone is DOWN"
	case "booting":
		return "instance booting until " + v.ReadyAt.Format(time.RFC3339Nano)
	}
	return "instance " + v.State
}
