package dataplane

import (
	"net/netip"
	"strings"
	"time"

	"github.com/hakube/hakube/internal/emulator/guest"
)

// Snapshot is what the data plane needs of the emulator's inventory, as
// plain data: the emulator copies it under its own lock, and the data plane
// works from the copy without it. Nothing in it points into the inventory.
type Snapshot struct {
	// TimeFactor turns GCE's durations (boot, propagation, health-check
	// intervals) into emulated ones: emulated seconds per real GCE second,
	// 0 when nothing should take time.
	TimeFactor float64
	VMs        []VM
	Rules      []Rule
	Pools      []Pool
	// Holders maps every IP the API handed out to the selfLink holding it.
	Holders map[netip.Addr]string
	// Disks are the ids of every disk that exists (with Kubernetes guests
	// only): a deleted disk's etcd data goes with it.
	Disks map[uint64]bool
}

// VM is one instance.
type VM struct {
	Link, Name    string
	Project, Zone string
	ID            uint64 // a new id under the same link is a new instance
	Status        string // the API's status
	Deleting      bool   // a delete is under way (Status is STOPPING)
	ZoneDown      bool
	Internal      []netip.Addr // nic0's first
	External      []netip.Addr
	// PodCIDR is nic0's first alias IP range (zero when it has none).
	PodCIDR netip.Prefix
	// LastStart is the instance's lastStartTimestamp and Reboots counts its
	// resets and guest reboots: a new value of either is a new boot, which
	// reads Metadata again.
	LastStart string
	Reboots   uint64
	Metadata  guest.Metadata
	// The machine type's name and size.
	MachineType    string
	CPUs, MemoryMB int64
	// DataDisk is the id of the disk attached as master-pd (0: none).
	DataDisk uint64
	// Console is the instance's serial console (it lives as long as the
	// instance's record; nil: the guest keeps one of its own).
	Console *guest.Console
}

func (v *VM) ips() []netip.Addr {
	return append(append([]netip.Addr{}, v.Internal...), v.External...)
}

// Rule is one forwarding rule.
type Rule struct {
	Link                        string
	ID                          uint64
	IP                          netip.Addr
	PortRange, Protocol, Target string
	Pending                     bool // its insert operation is still running
}

// Pool is one target pool and its members; Check is nil when the pool has
// no health check.
type Pool struct {
	Link    string
	Members []Member
	Check   *HealthCheck
}

// Member is one pool member as the forwarder and the checker see it.
type Member struct {
	Link, Name string
	Dial       netip.Addr   // nic0's internal IP: where connections and probes go
	IPs        []netip.Addr // every IP of the member: a connection from one is its own
}

// HealthCheck is a legacy HTTP health check, GCE's defaults filled in.
type HealthCheck struct {
	Link                    string
	Port                    int
	Path, Host              string
	IntervalSec, TimeoutSec int64
	Healthy, Unhealthy      int // thresholds
}

// poolKey identifies a pool whatever host prefixes its URL.
func poolKey(link string) string {
	if i := strings.Index(link, "projects/"); i >= 0 {
		return link[i:]
	}
	return link
}

// pass is one snapshot matched with the data plane's own records.
type pass struct {
	now     time.Time
	factor  float64
	vms     []*vmPass
	rules   []*rulePass
	pools   map[string]*poolPass // by poolKey
	holders map[netip.Addr]string
	retired []*forwarder // of deleted rules: shut down before anything else
}

type vmPass struct {
	VM
	md guest.Metadata // what the guest reads: at its boot while RUNNING
	rt *vmRuntime
}

type rulePass struct {
	Rule
	rt *ruleRuntime
}

type poolPass struct {
	Pool
	check *checkCfg
}

// checkCfg is a health check in emulated time.
type checkCfg struct {
	HealthCheck
	interval, timeout time.Duration
}

// vmRuntime is the data plane's own record of one instance. Boot timing
// survives a zone outage (the boot delay is not paid again when the zone
// comes back) but not a stop.
type vmRuntime struct {
	id      uint64
	boot    guest.BootKey // the boot being tracked
	readyAt time.Time     // zero while not running
	// The guest reads its metadata at boot: later setMetadata calls take
	// effect at the next start, as on a real VM.
	bootMD  guest.Metadata
	machine *guest.Machine
	gen     uint64 // last pass that saw the instance
	// cfg caches the parse of cfgMD.
	cfg   *guest.Config
	cfgMD guest.Metadata
}

// config returns the guest's view of md, parsing only when it changed
// (kube-env runs to kilobytes; comparing the same strings is cheap):
// with the contract's parsers for Kubernetes guests.
func (rt *vmRuntime) config(md guest.Metadata, kube bool) *guest.Config {
	if rt.cfg == nil || md != rt.cfgMD {
		if kube {
			rt.cfg = guest.ParseKube(md)
		} else {
			rt.cfg = guest.Parse(md)
		}
		rt.cfgMD = md
	}
	return rt.cfg
}

// ruleRuntime is the data plane's record of one forwarding rule.
type ruleRuntime struct {
	id      uint64
	readyAt time.Time // zero while its insert is pending
	fwd     *forwarder
	gen     uint64 // last pass that saw the rule
}

// match takes a snapshot and pairs it with the data plane's records: new
// instances and rules get one, boot and propagation clocks start as a VM is
// first seen RUNNING or a rule in place, and records of what went away are
// dropped. It runs on the reconcile goroutine, which owns the records.
func (d *Plane) match(sn Snapshot, now time.Time) *pass {
	ps := &pass{now: now, factor: sn.TimeFactor, pools: map[string]*poolPass{}, holders: sn.Holders}
	d.gen++
	for _, v := range sn.VMs {
		ps.vms = append(ps.vms, d.matchVM(v, now, sn.TimeFactor))
	}
	for _, p := range sn.Pools {
		pp := &poolPass{Pool: p}
		if p.Check != nil {
			pp.check = &checkCfg{HealthCheck: *p.Check,
				interval: scaledDuration(sn.TimeFactor, float64(p.Check.IntervalSec), minCheckInterval),
				timeout:  scaledDuration(sn.TimeFactor, float64(p.Check.TimeoutSec), minCheckTimeout)}
		}
		ps.pools[poolKey(p.Link)] = pp
	}
	for _, r := range sn.Rules {
		rt := d.rules[r.Link]
		if rt != nil && rt.id != r.ID { // deleted and recreated between two snapshots
			ps.retired = append(ps.retired, rt.fwd)
			rt = nil
		}
		if rt == nil {
			rt = &ruleRuntime{id: r.ID, fwd: newForwarder(d, r.Link)}
			d.rules[r.Link] = rt
		}
		if !r.Pending && rt.readyAt.IsZero() {
			rt.readyAt = now.Add(d.draw(propagationTime, sn.TimeFactor))
		}
		rt.gen = d.gen
		ps.rules = append(ps.rules, &rulePass{Rule: r, rt: rt})
	}
	for link, rt := range d.vms {
		if rt.gen != d.gen {
			rt.machine.Forget()
			delete(d.vms, link)
		}
	}
	if sn.Disks != nil {
		d.host.Disks(sn.Disks)
	}
	for link, rt := range d.rules {
		if rt.gen != d.gen {
			ps.retired = append(ps.retired, rt.fwd)
			delete(d.rules, link)
		}
	}
	return ps
}

func (d *Plane) matchVM(v VM, now time.Time, factor float64) *vmPass {
	rt := d.vms[v.Link]
	if rt == nil || rt.id != v.ID { // new, or deleted and recreated under the same name
		if rt != nil {
			rt.machine.Forget()
		}
		rt = &vmRuntime{id: v.ID, machine: d.host.NewMachine(v.Link, v.Project, v.Zone, v.Name, v.ID, v.Console)}
		d.vms[v.Link] = rt
	}
	vp := &vmPass{VM: v, rt: rt}
	if v.Status == "RUNNING" {
		// A new lastStartTimestamp or reboot count is a new boot, even if
		// no snapshot saw the VM stopped in between.
		key := guest.BootKey{Start: v.LastStart, Reboots: v.Reboots}
		if rt.readyAt.IsZero() || rt.boot != key {
			rt.boot = key
			rt.readyAt = now.Add(d.draw(bootTime, factor))
			rt.bootMD = v.Metadata
		}
		vp.md = rt.bootMD
	} else {
		rt.readyAt, rt.boot = time.Time{}, guest.BootKey{}
		vp.md = v.Metadata
	}
	rt.gen = d.gen
	return vp
}

// span is a duration range in GCE seconds; a draw is uniform within it.
type span struct{ min, max float64 }

// How long the data plane's own events take on GCE (docs/dataplane.md).
var (
	bootTime        = span{10, 25} // guest boot after RUNNING until the master's listeners start
	propagationTime = span{40, 80} // a new forwarding rule starts forwarding after this
)

// EventSeconds is the range of a data-plane event in GCE seconds: "boot"
// or "propagation".
func EventSeconds(event string) (min, max float64, ok bool) {
	switch event {
	case "boot":
		return bootTime.min, bootTime.max, true
	case "propagation":
		return propagationTime.min, propagationTime.max, true
	}
	return 0, 0, false
}

// draw is one event's duration in emulated time.
func (d *Plane) draw(sp span, factor float64) time.Duration {
	if factor <= 0 {
		return 0
	}
	sec := sp.min + d.rng.Float64()*(sp.max-sp.min)
	return time.Duration(sec * factor * float64(time.Second))
}

// Floors for scaled health-check timing: an interval below ~10 ms only burns
// CPU, and a timeout below ~50 ms makes a busy test machine flap members.
const (
	minCheckInterval = 10 * time.Millisecond
	minCheckTimeout  = 50 * time.Millisecond
)

// scaledDuration turns a duration configured on a resource (seconds, as GCE
// takes it) into emulated time, never below floor.
func scaledDuration(factor, sec float64, floor time.Duration) time.Duration {
	return max(time.Duration(sec*factor*float64(time.Second)), floor)
}
