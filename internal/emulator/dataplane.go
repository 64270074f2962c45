package emulator

import (
	"context"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
	compute "google.golang.org/api/compute/v1"
)

// The data plane makes the emulated network real on loopback: masters serve
// HTTPS and /healthz on their IPs (dataplane_vm.go), forwarding rules
// forward TCP to their pool's healthy members and legacy HTTP health checks
// probe those members (dataplane_lb.go), and the control API reports what
// answers where (dataplane_control.go).
//
// One reconcile goroutine owns every listener. It wakes on s.changeCh and on
// its own deadline timer (boot and propagation delays, bind retries), takes a
// snapshot of the inventory under Server.mu, releases the lock and only then
// opens and closes listeners: no network I/O ever happens under Server.mu.
//
// Lock order: Server.mu may be held while taking hmu (memberHealth does);
// nothing takes Server.mu while holding hmu or mu.
type dataPlane struct {
	s   *Server
	log *zap.Logger
	// ctx ends at close: it stops the reconcile loop, probes and dials.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the data plane starts
	// syncReq asks the reconcile loop for a pass now; it closes the channel
	// it receives once the status is published.
	syncReq chan chan struct{}

	// probes is the health checker's HTTP transport: no proxy from the
	// environment, a fresh connection per probe as GCE's checkers make.
	probes *http.Transport

	// Owned by the reconcile goroutine (snapshot runs on it too, under
	// Server.mu); nothing else touches these.
	vms       map[string]*vmRuntime   // instance selfLink → runtime
	rules     map[string]*ruleRuntime // forwarding rule selfLink → runtime
	listeners map[netip.AddrPort]*listener
	probers   map[healthKey]*prober
	gen       uint64 // snapshot counter

	hmu    sync.Mutex // guards health
	health map[healthKey]*memberState

	mu     sync.Mutex // guards status
	status DataPlane
}

// bindRetry is how long a listener that failed to bind waits before the
// next attempt (a port held by another process may be freed).
const bindRetry = time.Second

func newDataPlane(s *Server) *dataPlane {
	ctx, cancel := context.WithCancel(context.Background())
	d := &dataPlane{
		s:       s,
		log:     s.log.Named("dataplane"),
		ctx:     ctx,
		cancel:  cancel,
		syncReq: make(chan chan struct{}),
		probes: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			DisableKeepAlives: true,
		},
		vms:       map[string]*vmRuntime{},
		rules:     map[string]*ruleRuntime{},
		listeners: map[netip.AddrPort]*listener{},
		probers:   map[healthKey]*prober{},
		health:    map[healthKey]*memberState{},
		status: DataPlane{Enabled: true, Addresses: []DataPlaneAddress{}, Instances: []DataPlaneInstance{},
			ForwardingRules: []DataPlaneForwardingRule{}, TargetPools: []DataPlaneTargetPool{}},
	}
	d.wg.Add(1)
	go d.run()
	return d
}

// close stops the reconcile loop, closes every listener and connection and
// waits for every goroutine the data plane started.
func (d *dataPlane) close() {
	d.cancel()
	d.wg.Wait()
	d.probes.CloseIdleConnections()
}

func (d *dataPlane) run() {
	defer d.wg.Done()
	defer d.teardown()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var waiting []chan struct{}
	for {
		start := time.Now()
		next := d.reconcile()
		cost := time.Since(start)
		for _, c := range waiting {
			close(c)
		}
		waiting = waiting[:0]
		timer.Stop()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
		select {
		case <-d.ctx.Done():
			return
		case <-d.s.changeCh:
			// With thousands of VMs a pass costs milliseconds, part of them
			// under Server.mu; a stream of API mutations must not keep the
			// data plane reconciling back to back.
			if pause := 4 * cost; pause > 2*time.Millisecond {
				t := time.NewTimer(min(pause, 250*time.Millisecond))
				select {
				case <-d.ctx.Done():
					t.Stop()
					return
				case c := <-d.syncReq:
					waiting = append(waiting, c)
				case <-t.C:
				}
				t.Stop()
			}
		case <-timer.C:
		case c := <-d.syncReq:
			waiting = append(waiting, c)
		}
	}
}

// sync runs a reconcile pass and waits for it, so that the control API
// reflects every change made before the request.
func (d *dataPlane) sync(ctx context.Context) {
	c := make(chan struct{})
	select {
	case d.syncReq <- c:
	case <-ctx.Done():
		return
	case <-d.ctx.Done():
		return
	}
	select {
	case <-c:
	case <-ctx.Done():
	case <-d.ctx.Done():
	}
}

// teardown closes everything; it runs on the reconcile goroutine as it exits.
func (d *dataPlane) teardown() {
	for ap, l := range d.listeners {
		l.close()
		delete(d.listeners, ap)
	}
	for _, r := range d.rules {
		r.fwd.shutdown()
	}
	for k, p := range d.probers {
		p.cancel()
		delete(d.probers, k)
	}
}

// snapshot is what the data plane needs from the inventory, copied under
// Server.mu.
type snapshot struct {
	now     time.Time
	preset  string
	scale   float64
	vms     []*vmSnap
	rules   []*ruleSnap
	pools   map[string]*poolSnap  // poolKey(selfLink) → pool
	holders map[netip.Addr]string // every IP the API handed out → holder
	retired []*forwarder          // of deleted rules: shut down once the lock is released
}

type vmSnap struct {
	link, name, zone, status string
	zoneDown                 bool
	internal, external       []netip.Addr
	rawEnv, rawCerts         string
	rt                       *vmRuntime
}

func (v *vmSnap) ips() []netip.Addr {
	return append(append([]netip.Addr{}, v.internal...), v.external...)
}

type ruleSnap struct {
	link, portRange, protocol, target string
	ip                                netip.Addr
	pending                           bool // its insert operation is still running
	rt                                *ruleRuntime
}

type poolSnap struct {
	link    string
	members []memberView
	check   *checkSnap
}

type checkSnap struct {
	link                    string
	port                    int
	path, host              string
	intervalSec, timeoutSec int64
	interval, timeout       time.Duration // scaled
	healthy, unhealthy      int
}

// vmRuntime is the data plane's own record of one instance. Boot state
// survives a zone outage (the VM keeps running behind it) but not a stop.
type vmRuntime struct {
	link      string
	id        uint64
	bootStart string    // lastStartTimestamp of the boot being tracked
	readyAt   time.Time // zero while not running
	// The guest reads its metadata at boot: later setMetadata calls take
	// effect at the next start, as on a real VM.
	rawEnv, rawCerts string
	cert             generatedCert
	gen              uint64 // last snapshot that saw the instance
	// parsed caches parseKubeEnv of parsedEnv and parsedCerts.
	parsed                 *kubeEnv
	parsedEnv, parsedCerts string
}

// parse returns the guest's view of its metadata, parsing only when it
// changed (kube-env runs to kilobytes; comparing the same strings is cheap).
func (rt *vmRuntime) parse(rawEnv, rawCerts string) *kubeEnv {
	if rt.parsed == nil || rawEnv != rt.parsedEnv || rawCerts != rt.parsedCerts {
		rt.parsed, rt.parsedEnv, rt.parsedCerts = parseKubeEnv(rawEnv, rawCerts), rawEnv, rawCerts
	}
	return rt.parsed
}

// ruleRuntime is the data plane's record of one forwarding rule.
type ruleRuntime struct {
	link    string
	id      uint64
	readyAt time.Time // zero while its insert is pending
	fwd     *forwarder
	gen     uint64 // last snapshot that saw the rule
}

// snap copies the inventory. It runs on the reconcile goroutine with
// Server.mu held, and starts boot and propagation clocks as it first sees a
// VM running or a rule in place, because latency draws need Server.mu.
func (d *dataPlane) snap() *snapshot {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	sn := &snapshot{now: now, preset: s.lat.preset, scale: s.lat.scale,
		pools: map[string]*poolSnap{}, holders: maps.Clone(s.ips.used)}
	d.gen++
	for _, pname := range slices.Sorted(maps.Keys(s.projects)) {
		p := s.projects[pname]
		for _, row := range p.instances.rows { // unsorted: this runs under Server.mu
			in := row.v
			v := &vmSnap{link: in.SelfLink, name: in.Name, zone: s.zoneOf(in), status: in.Status}
			v.zoneDown = s.zoneDown[v.zone]
			for _, nic := range in.NetworkInterfaces {
				if a := addrOf(nic.NetworkIP); a.IsValid() {
					v.internal = append(v.internal, a)
				}
				for _, ac := range nic.AccessConfigs {
					if a := addrOf(ac.NatIP); a.IsValid() {
						v.external = append(v.external, a)
					}
				}
			}
			rt := d.vms[v.link]
			if rt == nil || rt.id != in.Id { // new, or deleted and recreated under the same name
				rt = &vmRuntime{link: v.link, id: in.Id}
				d.vms[v.link] = rt
			}
			if in.Status == "RUNNING" {
				// A new lastStartTimestamp is a new boot, even if no
				// snapshot saw the VM stopped in between.
				if rt.readyAt.IsZero() || rt.bootStart != in.LastStartTimestamp {
					rt.bootStart = in.LastStartTimestamp
					rt.readyAt = now.Add(s.lat.draw("dataplane.boot"))
					rt.rawEnv, rt.rawCerts = guestMetadata(in)
				}
				v.rawEnv, v.rawCerts = rt.rawEnv, rt.rawCerts
			} else {
				rt.readyAt, rt.bootStart = time.Time{}, ""
				v.rawEnv, v.rawCerts = guestMetadata(in)
			}
			v.rt = rt
			rt.gen = d.gen
			sn.vms = append(sn.vms, v)
		}
		for _, tp := range p.targetPools.list("") {
			ps := &poolSnap{link: tp.SelfLink}
			for _, ml := range tp.Instances {
				m := memberView{link: ml, name: lastSegment(ml)}
				if in := p.instanceByLink(ml); in != nil {
					m.link = in.SelfLink
					for i, nic := range in.NetworkInterfaces {
						a := addrOf(nic.NetworkIP)
						if i == 0 {
							m.dial = a
						}
						m.ips = append(m.ips, a)
						for _, ac := range nic.AccessConfigs {
							m.ips = append(m.ips, addrOf(ac.NatIP))
						}
					}
				}
				ps.members = append(ps.members, m)
			}
			if len(tp.HealthChecks) > 0 {
				// A dangling reference still makes the pool checked, with
				// GCE's defaults.
				hc := &compute.HttpHealthCheck{}
				if r, ok := parseRef(tp.HealthChecks[0], ref{Project: p.name, Scope: "global", Coll: "httpHealthChecks"}); ok {
					if stored, ok := p.httpHealthChecks.get("global", r.Name); ok {
						c := *stored
						hc = &c
					}
				}
				httpHealthCheckDefaults(hc)
				ps.check = &checkSnap{link: tp.HealthChecks[0], port: int(hc.Port), path: hc.RequestPath, host: hc.Host,
					intervalSec: hc.CheckIntervalSec, timeoutSec: hc.TimeoutSec,
					healthy: int(hc.HealthyThreshold), unhealthy: int(hc.UnhealthyThreshold)}
				ps.check.scale(sn.preset, sn.scale)
			}
			sn.pools[poolKey(ps.link)] = ps
		}
		for _, fr := range p.forwardingRules.list("") {
			r := &ruleSnap{link: fr.SelfLink, ip: addrOf(fr.IPAddress), portRange: fr.PortRange,
				protocol: fr.IPProtocol, target: fr.Target}
			if op, ok := p.busy[fr.SelfLink]; ok && !op.isDone() && op.op.OperationType == "insert" {
				r.pending = true
			}
			rt := d.rules[r.link]
			if rt != nil && rt.id != fr.Id { // deleted and recreated between two snapshots
				sn.retired = append(sn.retired, rt.fwd)
				rt = nil
			}
			if rt == nil {
				rt = &ruleRuntime{link: r.link, id: fr.Id, fwd: newForwarder(d, r.link)}
				d.rules[r.link] = rt
			}
			if !r.pending && rt.readyAt.IsZero() {
				rt.readyAt = now.Add(s.lat.draw("dataplane.forwardingPropagation"))
			}
			r.rt = rt
			rt.gen = d.gen
			sn.rules = append(sn.rules, r)
		}
	}
	for link, rt := range d.vms {
		if rt.gen != d.gen {
			delete(d.vms, link)
		}
	}
	for link, rt := range d.rules {
		if rt.gen != d.gen {
			sn.retired = append(sn.retired, rt.fwd)
			delete(d.rules, link)
		}
	}
	return sn
}

// guestMetadata is what the guest reads from its metadata server.
func guestMetadata(in *instanceRec) (kubeEnv, certs string) {
	if in.Metadata == nil {
		return "", ""
	}
	for _, it := range in.Metadata.Items {
		if it == nil || it.Value == nil {
			continue
		}
		switch it.Key {
		case metaKubeEnv:
			kubeEnv = *it.Value
		case metaMasterCerts:
			certs = *it.Value
		}
	}
	return kubeEnv, certs
}

// scale turns interval and timeout into emulated time, like the latency
// model scales operations.
func (c *checkSnap) scale(preset string, scale float64) {
	c.interval = scaledDuration(preset, scale, float64(c.intervalSec), minCheckInterval)
	c.timeout = scaledDuration(preset, scale, float64(c.timeoutSec), minCheckTimeout)
}

// Floors for scaled health-check timing: an interval below ~10 ms only burns
// CPU, and a timeout below ~50 ms makes a busy test machine flap members.
const (
	minCheckInterval = 10 * time.Millisecond
	minCheckTimeout  = 50 * time.Millisecond
)

// scaledDuration turns a duration configured on a resource (seconds, as GCE
// takes it) into emulated time: as is under realistic, divided by
// fastDivisor under fast, the floor under none; then times the time scale.
func scaledDuration(preset string, scale, sec float64, floor time.Duration) time.Duration {
	switch preset {
	case LatencyNone:
		return floor
	case LatencyFast:
		sec /= fastDivisor
	}
	return max(time.Duration(sec*scale*float64(time.Second)), floor)
}

// want is one listener the inventory calls for.
type want struct {
	kind  string // kindAPIServer, kindHealthCheck or kindForward
	owner string // instance or forwarding rule selfLink
	vm    *vmSnap
	env   *kubeEnv
	rule  *ruleSnap
}

const (
	kindAPIServer   = "apiserver"
	kindHealthCheck = "healthcheck"
	kindForward     = "forward"
	kindDrop        = "drop" // a rule not forwarding yet: SYNs go unanswered (dataplane_drop.go)
)

// reconcile brings listeners, forwarders and probers in line with the
// inventory and publishes the status. It returns when it next needs to run
// (zero: only on change).
func (d *dataPlane) reconcile() time.Time {
	sn := d.snap()
	now := sn.now
	for _, f := range sn.retired {
		f.shutdown()
	}
	var next time.Time
	wake := func(t time.Time) {
		if !t.IsZero() && t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}

	wants := map[netip.AddrPort]*want{}
	add := func(ap netip.AddrPort, w *want) {
		if prev, ok := wants[ap]; ok && prev.owner != w.owner {
			d.log.Warn("two resources want the same address; keeping the first",
				zap.Stringer("address", ap), zap.String("kept", prev.owner), zap.String("dropped", w.owner))
			return
		}
		wants[ap] = w
	}

	vmStatus := make([]DataPlaneInstance, 0, len(sn.vms))
	for _, v := range sn.vms {
		env := v.rt.parse(v.rawEnv, v.rawCerts)
		st := DataPlaneInstance{Instance: v.link, Status: v.status, Master: env.master,
			APIServerPort: env.apiPort, HealthCheckPort: env.hcPort, Error: env.err}
		for _, a := range v.ips() {
			st.IPs = append(st.IPs, a.String())
		}
		if env.master {
			st.Cert = "generated"
			if env.cert != nil {
				st.Cert = "metadata"
			}
		}
		switch {
		case v.status != "RUNNING":
			st.State = "stopped"
		case !env.master:
			st.State = "notMaster"
		case env.err != "":
			st.State = "failed"
		case v.zoneDown:
			st.State = "zoneDown"
		case now.Before(v.rt.readyAt):
			st.State = "booting"
			st.ReadyAt = v.rt.readyAt
			wake(v.rt.readyAt)
		default:
			st.State = "answering"
			if env.cert == nil {
				v.rt.cert.ensure(v.name, v.ips(), d.log)
			}
			for _, a := range v.ips() {
				add(netip.AddrPortFrom(a, uint16(env.apiPort)), &want{kind: kindAPIServer, owner: v.link, vm: v, env: env})
				add(netip.AddrPortFrom(a, uint16(env.hcPort)), &want{kind: kindHealthCheck, owner: v.link, vm: v, env: env})
			}
		}
		vmStatus = append(vmStatus, st)
	}

	ruleStatus := make([]DataPlaneForwardingRule, 0, len(sn.rules))
	for _, r := range sn.rules {
		st := DataPlaneForwardingRule{ForwardingRule: r.link, IP: r.ip.String(), PortRange: r.portRange, Target: r.target}
		pool := sn.pools[poolKey(r.target)]
		r.rt.fwd.setPool(pool)
		ports, err := forwardedPorts(r)
		switch {
		case err != "":
			st.State, st.Error = "unsupported", err
		case r.pending || now.Before(r.rt.readyAt):
			if r.pending {
				st.State = "pending"
			} else {
				st.State = "propagating"
				st.ReadyAt = r.rt.readyAt
				wake(r.rt.readyAt)
			}
			// Not programmed yet: hold the ports and drop (dataplane_drop.go).
			if canDrop() {
				for _, port := range ports {
					add(netip.AddrPortFrom(r.ip, uint16(port)), &want{kind: kindDrop, owner: r.link, rule: r})
				}
			}
		default:
			st.State = "forwarding"
			for _, port := range ports {
				add(netip.AddrPortFrom(r.ip, uint16(port)), &want{kind: kindForward, owner: r.link, rule: r})
			}
		}
		ruleStatus = append(ruleStatus, st)
	}

	sort.Slice(vmStatus, func(i, j int) bool { return vmStatus[i].Instance < vmStatus[j].Instance })
	d.syncListeners(wants, now, wake)
	d.syncProbers(sn)
	d.publish(sn, vmStatus, ruleStatus)
	return next
}

// syncListeners closes listeners nobody wants (or whose owner changed) and
// opens the missing ones, retrying failed binds every bindRetry.
func (d *dataPlane) syncListeners(wants map[netip.AddrPort]*want, now time.Time, wake func(time.Time)) {
	for ap, l := range d.listeners {
		w, ok := wants[ap]
		if ok && l.kind == kindDrop && w.kind == kindForward && l.ln != nil && w.owner == l.owner && l.matches(w) {
			if err := d.promote(l); err == nil {
				d.log.Debug("forwarding on the dropping listener", zap.Stringer("address", ap), zap.String("owner", l.owner))
				continue
			} else {
				d.log.Warn("cannot reuse the dropping listener; reopening", zap.Stringer("address", ap), zap.Error(err))
			}
		}
		if !ok || w.kind != l.kind || w.owner != l.owner || !l.matches(w) {
			l.close()
			delete(d.listeners, ap)
			if l.ln != nil {
				d.log.Debug("listener closed", zap.Stringer("address", ap), zap.String("owner", l.owner))
			}
		}
	}
	for _, ap := range slices.SortedFunc(maps.Keys(wants), netip.AddrPort.Compare) {
		w := wants[ap]
		l := d.listeners[ap]
		if l != nil && l.ln != nil {
			continue
		}
		if l != nil && now.Before(l.failedAt.Add(bindRetry)) {
			wake(l.failedAt.Add(bindRetry))
			continue
		}
		nl, err := d.open(ap, w)
		if err != nil {
			msg := bindErrorMessage(ap, w, err)
			if l == nil || l.err != msg {
				d.log.Error("data plane cannot listen", zap.String("error", msg))
			}
			if l == nil {
				l = listenerFor(ap, w)
				d.listeners[ap] = l
			}
			l.err, l.failedAt = msg, now
			wake(now.Add(bindRetry))
			continue
		}
		if l != nil && l.err != "" {
			d.log.Info("data plane listens after earlier failure", zap.Stringer("address", ap), zap.String("owner", w.owner))
		}
		d.listeners[ap] = nl
		d.log.Debug("listening", zap.Stringer("address", ap), zap.String("kind", w.kind), zap.String("owner", w.owner))
	}
}

// listener is one bound IP:port (or a failed attempt at binding it).
type listener struct {
	ap       netip.AddrPort
	kind     string
	owner    string
	env      *kubeEnv   // the VM configuration an instance listener serves
	fwd      *forwarder // the rule a forwarding or dropping listener serves
	hold     *dropHold  // what keeps a dropping listener's queue full
	ln       net.Listener
	srv      *http.Server // instance listeners
	err      string       // last bind error
	failedAt time.Time
}

// matches reports whether an open listener still serves what w asks for: a
// VM that booted with another kube-env or certificates, or a rule deleted
// and recreated under the same name, gets fresh listeners.
func (l *listener) matches(w *want) bool {
	if w.kind == kindForward || w.kind == kindDrop {
		return l.fwd == w.rule.rt.fwd
	}
	return l.env == w.env
}

// listenerFor is the record of a listener for w, not yet bound.
func listenerFor(ap netip.AddrPort, w *want) *listener {
	l := &listener{ap: ap, kind: w.kind, owner: w.owner}
	if w.kind == kindForward || w.kind == kindDrop {
		l.fwd = w.rule.rt.fwd
	} else {
		l.env = w.env
	}
	return l
}

func (l *listener) close() {
	l.hold.release()
	switch {
	case l.srv != nil:
		_ = l.srv.Close() // closes the listener and every connection
	case l.ln != nil:
		_ = l.ln.Close()
	}
}

// open binds ap and starts serving what w asks for.
func (d *dataPlane) open(ap netip.AddrPort, w *want) (*listener, error) {
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return nil, err
	}
	l := listenerFor(ap, w)
	l.ln = ln
	switch w.kind {
	case kindDrop:
		if l.hold, err = d.holdDropping(ln, ap); err != nil {
			_ = ln.Close()
			return nil, err
		}
	case kindForward:
		d.wg.Add(1)
		go l.fwd.serve(ln, int(ap.Port()), "")
	default:
		l.srv = d.vmServer(w)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if w.kind == kindAPIServer {
				_ = l.srv.ServeTLS(ln, "", "")
			} else {
				_ = l.srv.Serve(ln)
			}
		}()
	}
	return l, nil
}

// healthKey names one member's health under one pool's check.
type healthKey struct{ pool, instance, check string }

// memberState is a member's health as the checker sees it.
type memberState struct {
	healthy          bool
	successes, fails int // consecutive
	lastErr          string
	lastProbe        time.Time
}

func (d *dataPlane) healthOf(k healthKey) (st memberState, known bool) {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if m := d.health[k]; m != nil {
		return *m, true
	}
	return memberState{}, false
}

// memberHealth is a pool member's health as targetPools.getHealth reports
// it: from the data plane's health checker when the pool has a check and the
// data plane runs (UNHEALTHY until healthyThreshold probes pass), else from
// the instance's status. Called under Server.mu; takes only the data
// plane's health lock.
func (s *Server) memberHealth(p *project, poolLink, instanceLink string) string {
	in := p.instanceByLink(instanceLink)
	if s.dp != nil && in != nil {
		if r, ok := parseRef(poolLink, ref{Project: p.name}); ok && r.Coll == "targetPools" {
			if tp, ok := p.targetPools.get(r.Scope, r.Name); ok && len(tp.HealthChecks) > 0 {
				if st, _ := s.dp.healthOf(healthKey{tp.SelfLink, in.SelfLink, tp.HealthChecks[0]}); st.healthy {
					return "HEALTHY"
				}
				return "UNHEALTHY"
			}
		}
	}
	if in == nil || in.Status != "RUNNING" || s.zoneDown[s.zoneOf(in)] {
		return "UNHEALTHY"
	}
	return "HEALTHY"
}

func (s *Server) zoneOf(in *instanceRec) string { return lastSegment(in.Zone) }
