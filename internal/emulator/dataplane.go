package emulator

import (
	"maps"
	"net/http"
	"net/netip"
	"slices"

	"github.com/hakube/hakube/internal/emulator/dataplane"
	"github.com/hakube/hakube/internal/emulator/guest"
	compute "google.golang.org/api/compute/v1"
)

// The emulator's side of the data plane (package dataplane): the snapshot
// it works from, the health targetPools.getHealth reports, and the control
// endpoint. The data plane sees the inventory only through dataPlaneSnapshot.

// The data plane's report, under the names the control client has always
// used.
type (
	DataPlane               = dataplane.Report
	DataPlaneAddress        = dataplane.AddressStatus
	DataPlanePort           = dataplane.PortStatus
	DataPlaneInstance       = dataplane.InstanceStatus
	DataPlaneForwardingRule = dataplane.RuleStatus
	DataPlaneTargetPool     = dataplane.PoolStatus
	DataPlaneMember         = dataplane.MemberStatus
)

const (
	// InstanceHeader names the instance that answered, on every response a
	// VM of the emulator sends.
	InstanceHeader = guest.InstanceHeader
	// EmulatedKubeVersion is the gitVersion a master's /version reports.
	EmulatedKubeVersion = guest.KubeVersion
)

// dataPlaneSnapshot copies what the data plane needs of the inventory. It
// takes Server.mu; the data plane calls it from its reconcile goroutine.
func (s *Server) dataPlaneSnapshot() dataplane.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := dataplane.Snapshot{TimeFactor: s.lat.factor(), Holders: maps.Clone(s.ips.used)}
	if s.opts.Kubernetes {
		sn.Disks = s.dataPlaneDisks()
	}
	for _, pname := range slices.Sorted(maps.Keys(s.projects)) {
		p := s.projects[pname]
		for _, row := range p.instances.rows { // unsorted: this runs under Server.mu
			sn.VMs = append(sn.VMs, s.snapshotVM(p, row.v))
		}
		for _, tp := range p.targetPools.list("") {
			sn.Pools = append(sn.Pools, p.snapshotPool(tp))
		}
		for _, fr := range p.forwardingRules.list("") {
			r := dataplane.Rule{Link: fr.SelfLink, ID: fr.Id, IP: addrOf(fr.IPAddress), PortRange: fr.PortRange,
				Protocol: fr.IPProtocol, Target: fr.Target}
			if op, ok := p.busy[fr.SelfLink]; ok && !op.isDone() && op.op.OperationType == "insert" {
				r.Pending = true
			}
			sn.Rules = append(sn.Rules, r)
		}
	}
	return sn
}

// snapshotVM is an instance as the data plane sees it: its IPs, the
// metadata its guest reads, its machine and its data disk.
func (s *Server) snapshotVM(p *project, in *instanceRec) dataplane.VM {
	v := dataplane.VM{Link: in.SelfLink, Name: in.Name, Project: p.name, Zone: zoneOf(in), ID: in.Id,
		Status: in.Status, Deleting: in.deleting, ZoneDown: s.zoneDown[zoneOf(in)],
		LastStart: in.LastStartTimestamp, Reboots: in.reboots, CPUs: in.guestCPUs(), Console: in.console}
	v.MachineType = lastSegment(in.MachineType)
	if mt, ok := findMachineType(v.MachineType); ok {
		v.MemoryMB = mt.memMB
	}
	if s.opts.Kubernetes {
		v.DataDisk = p.dataDisk(in)
	}
	for i, nic := range in.NetworkInterfaces {
		if a := addrOf(nic.NetworkIP); a.IsValid() {
			v.Internal = append(v.Internal, a)
		}
		if i == 0 && len(nic.AliasIpRanges) > 0 {
			v.PodCIDR, _ = netip.ParsePrefix(nic.AliasIpRanges[0].IpCidrRange)
		}
		for _, ac := range nic.AccessConfigs {
			if a := addrOf(ac.NatIP); a.IsValid() {
				v.External = append(v.External, a)
			}
		}
	}
	if in.Metadata != nil {
		for _, it := range in.Metadata.Items {
			if it != nil && it.Value != nil {
				v.Metadata.Set(it.Key, *it.Value)
			}
		}
	}
	return v
}

// snapshotPool is a pool with its members' IPs and its health check, GCE's
// defaults filled in.
func (p *project) snapshotPool(tp *compute.TargetPool) dataplane.Pool {
	pool := dataplane.Pool{Link: tp.SelfLink}
	for _, ml := range tp.Instances {
		m := dataplane.Member{Link: ml, Name: lastSegment(ml)}
		if in := p.instanceByLink(ml); in != nil {
			m.Link = in.SelfLink
			for i, nic := range in.NetworkInterfaces {
				a := addrOf(nic.NetworkIP)
				if i == 0 {
					m.Dial = a
				}
				m.IPs = append(m.IPs, a)
				for _, ac := range nic.AccessConfigs {
					m.IPs = append(m.IPs, addrOf(ac.NatIP))
				}
			}
		}
		pool.Members = append(pool.Members, m)
	}
	if len(tp.HealthChecks) > 0 {
		// A dangling reference still makes the pool checked, with GCE's
		// defaults.
		hc := &compute.HttpHealthCheck{}
		if r, ok := parseRef(tp.HealthChecks[0], ref{Project: p.name, Scope: "global", Coll: "httpHealthChecks"}); ok {
			if stored, ok := p.httpHealthChecks.get("global", r.Name); ok {
				c := *stored
				hc = &c
			}
		}
		httpHealthCheckDefaults(hc)
		pool.Check = &dataplane.HealthCheck{Link: tp.HealthChecks[0], Port: int(hc.Port), Path: hc.RequestPath, Host: hc.Host,
			IntervalSec: hc.CheckIntervalSec, TimeoutSec: hc.TimeoutSec,
			Healthy: int(hc.HealthyThreshold), Unhealthy: int(hc.UnhealthyThreshold)}
	}
	return pool
}

// memberHealth is a pool member's health as targetPools.getHealth reports
// it: from the data plane's health checker when the pool has a check and the
// data plane runs (UNHEALTHY until healthyThreshold probes pass), else from
// the instance's status. Called under Server.mu; HealthOf takes only the
// data plane's health lock.
func (s *Server) memberHealth(p *project, poolLink, instanceLink string) string {
	in := p.instanceByLink(instanceLink)
	if s.dp != nil && in != nil {
		if r, ok := parseRef(poolLink, ref{Project: p.name}); ok && r.Coll == "targetPools" {
			if tp, ok := p.targetPools.get(r.Scope, r.Name); ok && len(tp.HealthChecks) > 0 {
				if s.dp.HealthOf(tp.SelfLink, in.SelfLink, tp.HealthChecks[0]).Healthy {
					return "HEALTHY"
				}
				return "UNHEALTHY"
			}
		}
	}
	if in == nil || in.Status != "RUNNING" || s.zoneDown[zoneOf(in)] {
		return "UNHEALTHY"
	}
	return "HEALTHY"
}

func zoneOf(in *instanceRec) string { return lastSegment(in.Zone) }

// dataPlaneRoutes registers the data plane's control endpoint.
func (s *Server) dataPlaneRoutes() {
	s.mux.HandleFunc("GET /emulator/v1/dataplane", s.ctlDataPlane)
}

func (s *Server) ctlDataPlane(w http.ResponseWriter, r *http.Request) {
	if s.dp == nil {
		ctlJSON(w, 200, dataplane.DisabledReport())
		return
	}
	ctlJSON(w, 200, s.dp.Report(r.Context()))
}
