// Package dataplane makes the emulated network real on loopback: the
// guests of VMs (package guest) answer on their IPs, forwarding rules
// forward TCP to their pool's healthy members, and legacy HTTP health checks
// probe those members (lb.go). Report says what answers where.
//
// It sees the emulator's inventory only as a Snapshot, plain data the
// emulator copies under its own lock. One reconcile goroutine owns every
// listener, forwarder and prober: it wakes on Changed and on its own
// deadline timer (boot and propagation delays, bind retries), takes a
// snapshot, and only then opens and closes listeners, so no network I/O
// ever happens under the emulator's lock.
//
// Lock order: the emulator may hold its lock while calling HealthOf (which
// takes hmu) and Changed (which takes nothing); the data plane calls the
// snapshot function holding none of its own locks, so nothing here waits
// for the emulator's lock while holding hmu or mu.
package dataplane

import (
	"context"
	"crypto/tls"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hakube/hakube/internal/emulator/guest"
	"go.uber.org/zap"
)

// Plane is a running data plane.
type Plane struct {
	snapshot func() Snapshot
	log      *zap.Logger
	host     *guest.Host // runs the VMs' guests
	// ctx ends at Close: it stops the reconcile loop, probes and dials.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the data plane starts
	// changed wakes the reconcile loop; syncReq asks it for a pass now and
	// it closes the channel it receives once the status is published.
	changed chan struct{}
	syncReq chan chan struct{}

	// probes is the health checker's HTTP transport: no proxy from the
	// environment, a fresh connection per probe as GCE's checkers make.
	probes *http.Transport

	// Owned by the reconcile goroutine; nothing else touches these.
	rng       *rand.Rand              // boot and propagation delays
	vms       map[string]*vmRuntime   // instance selfLink → runtime
	rules     map[string]*ruleRuntime // forwarding rule selfLink → runtime
	listeners map[netip.AddrPort]*listener
	probers   map[healthKey]*prober
	gen       uint64 // pass counter

	hmu    sync.Mutex // guards health
	health map[healthKey]*memberState

	mu     sync.Mutex // guards status
	status Report

	nmu  sync.Mutex                      // guards nats
	nats map[netip.AddrPort]*natListener // the open NAT listeners, for Dial
}

// bindRetry is how long a listener that failed to bind waits before the
// next attempt (a port held by another process may be freed).
const bindRetry = time.Second

// New starts a data plane that reads the inventory through snapshot and
// runs the VMs' guests on host (nil: the static guests, without extras).
// seed fixes its boot and propagation draws (0: random).
func New(snapshot func() Snapshot, log *zap.Logger, seed uint64, host *guest.Host) (*Plane, error) {
	if seed == 0 {
		seed = rand.Uint64()
	}
	if host == nil {
		var err error
		if host, err = guest.NewHost(guest.Options{Log: log}); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Plane{
		snapshot: snapshot,
		log:      log,
		host:     host,
		ctx:      ctx,
		cancel:   cancel,
		changed:  make(chan struct{}, 1),
		syncReq:  make(chan chan struct{}),
		probes: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			DisableKeepAlives: true,
		},
		rng:       rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d)),
		vms:       map[string]*vmRuntime{},
		rules:     map[string]*ruleRuntime{},
		listeners: map[netip.AddrPort]*listener{}, nats: map[netip.AddrPort]*natListener{},
		probers: map[healthKey]*prober{},
		health:  map[healthKey]*memberState{},
		status:  emptyReport(true),
	}
	d.wg.Add(1)
	go d.run()
	return d, nil
}

// Changed tells the data plane that the inventory moved. It never blocks.
func (d *Plane) Changed() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// Close stops the reconcile loop, closes every listener and connection and
// waits for every goroutine the data plane started.
func (d *Plane) Close() {
	d.cancel()
	d.wg.Wait()
	d.probes.CloseIdleConnections()
}

func (d *Plane) run() {
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
		case <-d.changed:
			// With thousands of VMs a pass costs milliseconds, part of them
			// under the emulator's lock; a stream of API mutations must not
			// keep the data plane reconciling back to back.
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

// sync runs a reconcile pass and waits for it, so that a report reflects
// every change made before it was asked for.
func (d *Plane) sync(ctx context.Context) {
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
func (d *Plane) teardown() {
	for ap, l := range d.listeners {
		d.closeListener(ap, l)
	}
	for _, r := range d.rules {
		r.fwd.shutdown()
	}
	for k, p := range d.probers {
		p.cancel()
		delete(d.probers, k)
	}
}

// want is one listener the inventory calls for.
type want struct {
	kind  string // kindGuest, kindNAT, kindForward or kindDrop
	owner string // instance or forwarding rule selfLink
	vm    *vmPass
	cfg   *guest.Config // the configuration the guest booted with
	svc   guest.Service // what a guest listener serves
	rule  *rulePass
	// target is where a NAT listener forwards: the VM's internal IP.
	target netip.AddrPort
}

const (
	kindGuest   = "guest"
	kindNAT     = "nat" // an external IP's port, forwarded to the VM's internal IP (nat.go)
	kindForward = "forward"
	kindDrop    = "drop" // a rule not forwarding yet: SYNs go unanswered (drop.go)
)

// reconcile brings listeners, forwarders and probers in line with the
// inventory and publishes the status. It returns when it next needs to run
// (zero: only on change).
func (d *Plane) reconcile() time.Time {
	now := time.Now()
	ps := d.match(d.snapshot(), now)
	for _, f := range ps.retired {
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
	vms := d.reconcileVMs(ps, add, wake)
	rules := d.reconcileRules(ps, add, wake)
	d.syncListeners(wants, now, wake)
	d.syncProbers(ps)
	d.publish(ps, vms, rules)
	return next
}

// reconcileRules points every rule's forwarder at its pool and asks for its
// ports: dropping while the rule is pending or propagating, forwarding after.
func (d *Plane) reconcileRules(ps *pass, add func(netip.AddrPort, *want), wake func(time.Time)) []RuleStatus {
	out := make([]RuleStatus, 0, len(ps.rules))
	for _, r := range ps.rules {
		st := RuleStatus{ForwardingRule: r.Link, IP: r.IP.String(), PortRange: r.PortRange, Target: r.Target}
		r.rt.fwd.setPool(ps.pools[poolKey(r.Target)])
		ports, err := forwardedPorts(&r.Rule)
		switch {
		case err != "":
			st.State, st.Error = "unsupported", err
		case r.Pending || ps.now.Before(r.rt.readyAt):
			if r.Pending {
				st.State = "pending"
			} else {
				st.State = "propagating"
				st.ReadyAt = r.rt.readyAt
				wake(r.rt.readyAt)
			}
			// Not programmed yet: hold the ports and drop (drop.go).
			if canDrop() {
				for _, port := range ports {
					add(netip.AddrPortFrom(r.IP, uint16(port)), &want{kind: kindDrop, owner: r.Link, rule: r})
				}
			}
		default:
			st.State = "forwarding"
			for _, port := range ports {
				add(netip.AddrPortFrom(r.IP, uint16(port)), &want{kind: kindForward, owner: r.Link, rule: r})
			}
		}
		out = append(out, st)
	}
	return out
}

// syncListeners closes listeners nobody wants (or whose owner changed) and
// opens the missing ones, retrying failed binds every bindRetry.
func (d *Plane) syncListeners(wants map[netip.AddrPort]*want, now time.Time, wake func(time.Time)) {
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
			d.closeListener(ap, l)
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
	cfg      *guest.Config // the configuration a guest listener serves
	svc      string        // the guest service it serves
	boot     int           // the boot whose service it serves
	nat      *natListener  // a NAT listener's target and connections
	protocol string        // https, http or tcp, as the report names it
	fwd      *forwarder    // the rule a forwarding or dropping listener serves
	hold     *dropHold     // what keeps a dropping listener's queue full
	ln       net.Listener
	srv      *http.Server // guest listeners
	err      string       // last bind error
	failedAt time.Time
}

// matches reports whether an open listener still serves what w asks for: a
// VM that booted with another kube-env or certificates, or a rule deleted
// and recreated under the same name, gets fresh listeners.
func (l *listener) matches(w *want) bool {
	switch w.kind {
	case kindForward, kindDrop:
		return l.fwd == w.rule.rt.fwd
	case kindNAT:
		return l.nat != nil && l.nat.target == w.target
	}
	return l.cfg == w.cfg && l.svc == w.svc.Name && l.boot == w.svc.Boot
}

// listenerFor is the record of a listener for w, not yet bound.
func listenerFor(ap netip.AddrPort, w *want) *listener {
	l := &listener{ap: ap, kind: w.kind, owner: w.owner, protocol: "tcp"}
	switch w.kind {
	case kindForward, kindDrop:
		l.fwd = w.rule.rt.fwd
	case kindNAT:
		l.nat = newNATListener(w.target)
	default:
		l.cfg, l.svc, l.boot, l.protocol = w.cfg, w.svc.Name, w.svc.Boot, w.svc.Protocol
	}
	return l
}

// closeListener closes l and forgets it.
func (d *Plane) closeListener(ap netip.AddrPort, l *listener) {
	if l.nat != nil {
		d.nmu.Lock()
		if d.nats[ap] == l.nat {
			delete(d.nats, ap)
		}
		d.nmu.Unlock()
	}
	l.close()
	delete(d.listeners, ap)
}

func (l *listener) close() {
	l.hold.release()
	if l.nat != nil {
		defer l.nat.shutdown()
	}
	switch {
	case l.srv != nil:
		_ = l.srv.Close() // closes the listener and every connection
	case l.ln != nil:
		_ = l.ln.Close()
	}
}

// open binds ap and starts serving what w asks for.
func (d *Plane) open(ap netip.AddrPort, w *want) (*listener, error) {
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
	case kindNAT:
		d.wg.Add(1)
		go l.nat.serve(d, ln)
		d.nmu.Lock()
		d.nats[ap] = l.nat
		d.nmu.Unlock()
	default:
		l.srv = d.guestServer(w)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if l.srv.TLSConfig != nil {
				_ = l.srv.ServeTLS(ln, "", "")
			} else {
				_ = l.srv.Serve(ln)
			}
		}()
	}
	return l, nil
}

// guestServer serves one guest service on one listener.
func (d *Plane) guestServer(w *want) *http.Server {
	errLog, _ := zap.NewStdLogAt(d.log.With(zap.String("instance", w.vm.Name)), zap.DebugLevel)
	var tlsConfig *tls.Config
	if w.svc.TLS != nil {
		// Each server gets its own: ServeTLS adds HTTP/2 to the config it
		// is given, and a service listens on several IPs at once.
		tlsConfig = w.svc.TLS.Clone()
	}
	return &http.Server{
		Handler:           w.svc.Handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          errLog, // TLS handshake noise from probes and cut connections
	}
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

// Health is a pool member's health under the pool's check.
type Health struct {
	Healthy   bool // UNHEALTHY until healthyThreshold probes pass
	LastProbe time.Time
	LastError string
}

// HealthOf is the health of instance in pool under check, as the checker
// last saw it. It takes only the health lock: the emulator may call it
// holding its own.
func (d *Plane) HealthOf(pool, instance, check string) Health {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if m := d.health[healthKey{pool, instance, check}]; m != nil {
		return Health{Healthy: m.healthy, LastProbe: m.lastProbe, LastError: m.lastErr}
	}
	return Health{}
}

func (d *Plane) healthOf(k healthKey) Health { return d.HealthOf(k.pool, k.instance, k.check) }
