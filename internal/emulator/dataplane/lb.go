package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxForwardedPorts caps how many ports one forwarding rule binds: a rule
// for 1-65535 would otherwise open 65,535 listeners.
const maxForwardedPorts = 16

// dialTimeout bounds a forwarded connection's dial to a member. On loopback
// a halted member refuses at once; this only guards against a stuck stack.
const dialTimeout = 3 * time.Second

// poolView is what a forwarder spreads connections over; replaced as a
// whole on every reconcile so membership changes apply to new connections.
type poolView struct {
	link    string
	check   string // health check link; "" when the pool has none
	members []Member
}

// forwardedPorts checks what the data plane can serve for a rule and lists
// its ports; the string is why it cannot.
func forwardedPorts(r *Rule) ([]int, string) {
	proto := strings.ToUpper(r.Protocol)
	if proto == "" {
		proto = "TCP"
	}
	if proto != "TCP" {
		return nil, fmt.Sprintf("IPProtocol %s is not forwarded by the emulator's data plane (TCP only)", proto)
	}
	if !r.IP.IsValid() {
		return nil, fmt.Sprintf("IPAddress %q is not an IP", r.IP)
	}
	if !strings.Contains(r.Target, "/targetPools/") {
		return nil, fmt.Sprintf("target %q is not a target pool; the emulator's data plane forwards only to target pools", r.Target)
	}
	if r.PortRange == "" {
		return nil, "a rule without portRange (all ports) is not forwarded by the emulator's data plane; set a port range"
	}
	lo, hi, ok := strings.Cut(r.PortRange, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return nil, fmt.Sprintf("portRange %q is not a port range", r.PortRange)
	}
	if n := b - a + 1; n > maxForwardedPorts {
		return nil, fmt.Sprintf("portRange %s spans %d ports; the emulator's data plane binds at most %d ports per rule", r.PortRange, n, maxForwardedPorts)
	}
	ports := make([]int, 0, b-a+1)
	for p := a; p <= b; p++ {
		ports = append(ports, p)
	}
	return ports, ""
}

// forwarder is the data plane of one forwarding rule: it accepts on the
// rule's IP and ports and splices each connection to a pool member.
type forwarder struct {
	d      *Plane
	link   string
	ctx    context.Context // ends when the rule goes away
	cancel context.CancelFunc
	pool   atomic.Pointer[poolView]
	next   atomic.Uint64 // round robin

	mu    sync.Mutex
	conns map[net.Conn]struct{} // both ends of every spliced connection
	done  bool
}

func newForwarder(d *Plane, link string) *forwarder {
	ctx, cancel := context.WithCancel(d.ctx)
	f := &forwarder{d: d, link: link, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	f.pool.Store(&poolView{})
	return f
}

func (f *forwarder) setPool(pp *poolPass) {
	pv := &poolView{}
	if pp != nil {
		pv.link, pv.members = pp.Link, pp.Members
		if pp.check != nil {
			pv.check = pp.check.Link
		}
	}
	f.pool.Store(pv)
}

// shutdown cuts every connection the rule carries: once a rule is deleted
// GCE stops routing its packets, established flows included.
func (f *forwarder) shutdown() {
	f.cancel()
	f.mu.Lock()
	f.done = true
	conns := f.conns
	f.conns = map[net.Conn]struct{}{}
	f.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	_ = c.Close()
}

// serve accepts on one port of the rule until its listener closes. skip is
// the address of the connection that filled the queue while the listener
// dropped (see drop.go): it is closed, not forwarded.
func (f *forwarder) serve(ln net.Listener, port int, skip string) {
	defer f.d.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.ctx.Err() != nil {
				return
			}
			// Out of file descriptors or similar: back off, do not spin.
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-f.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		if skip != "" && c.RemoteAddr().String() == skip {
			skip = ""
			_ = c.Close()
			continue
		}
		f.d.wg.Add(1)
		go f.handle(c, port)
	}
}

func (f *forwarder) handle(c net.Conn, port int) {
	defer f.d.wg.Done()
	if !f.track(c) {
		_ = c.Close()
		return
	}
	defer f.untrack(c)
	m, ok := f.pick(c.RemoteAddr())
	if !ok {
		reset(c)
		return
	}
	ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
	b, err := (&net.Dialer{}).DialContext(ctx, "tcp", netip.AddrPortFrom(m.Dial, uint16(port)).String())
	cancel()
	if err != nil {
		// A halted member: the client's connection fails, as its packets
		// would go unanswered on GCE.
		f.d.log.Debug("forwarded connection failed", zap.String("forwardingRule", f.link),
			zap.String("member", m.Link), zap.Error(err))
		reset(c)
		return
	}
	if !f.track(b) {
		_ = b.Close()
		return
	}
	defer f.untrack(b)
	splice(c, b)
}

// pick chooses the member for a new connection: the member itself when the
// connection comes from one of its IPs (GCE routes a backend's traffic to
// the rule's IP back to that backend, whatever its health), else round
// robin over healthy members, over all members when the pool has no check
// or no member is healthy.
func (f *forwarder) pick(from net.Addr) (Member, bool) {
	pv := f.pool.Load()
	var src netip.Addr
	if ta, ok := from.(*net.TCPAddr); ok {
		src = ta.AddrPort().Addr().Unmap()
	}
	var all []Member
	for _, m := range pv.members {
		if !m.Dial.IsValid() {
			continue
		}
		for _, a := range m.IPs {
			if a == src {
				return m, true
			}
		}
		all = append(all, m)
	}
	cands := all
	if pv.check != "" {
		var healthy []Member
		for _, m := range all {
			if f.d.healthOf(healthKey{pv.link, m.Link, pv.check}).Healthy {
				healthy = append(healthy, m)
			}
		}
		if len(healthy) > 0 {
			cands = healthy
		}
	}
	if len(cands) == 0 {
		return Member{}, false
	}
	return cands[(f.next.Add(1)-1)%uint64(len(cands))], true
}

// reset closes c with a RST so the client sees the failure at once.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// splice copies both ways until both directions end, passing half-closes
// on; an error in either direction ends both.
func splice(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(b, a)
	}()
	pipe(a, b)
	<-done
}

func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// prober is one member's health checker under one pool's check.
type prober struct {
	cfg    probeCfg
	cancel context.CancelFunc
}

type probeCfg struct {
	url, host          string // url empty: the member has no internal IP
	interval, timeout  time.Duration
	healthy, unhealthy int
}

// syncProbers runs one prober per (pool, member) of every checked pool and
// forgets the health of members that left.
func (d *Plane) syncProbers(ps *pass) {
	wants := map[healthKey]probeCfg{}
	for _, pp := range ps.pools {
		c := pp.check
		if c == nil {
			continue
		}
		path := c.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		for _, m := range pp.Members {
			cfg := probeCfg{host: c.Host, interval: c.interval, timeout: c.timeout, healthy: c.Healthy, unhealthy: c.Unhealthy}
			if m.Dial.IsValid() && c.Port > 0 && c.Port < 65536 {
				cfg.url = "http://" + netip.AddrPortFrom(m.Dial, uint16(c.Port)).String() + path
			}
			wants[healthKey{pp.Link, m.Link, c.Link}] = cfg
		}
	}
	for k, p := range d.probers {
		cfg, ok := wants[k]
		if ok && cfg == p.cfg {
			continue
		}
		p.cancel()
		delete(d.probers, k)
		if !ok {
			d.hmu.Lock()
			delete(d.health, k)
			d.hmu.Unlock()
		}
	}
	for k, cfg := range wants {
		if _, ok := d.probers[k]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(d.ctx)
		d.probers[k] = &prober{cfg: cfg, cancel: cancel}
		d.hmu.Lock()
		if d.health[k] == nil {
			d.health[k] = &memberState{} // UNHEALTHY until healthyThreshold probes pass
		}
		d.hmu.Unlock()
		d.wg.Add(1)
		go d.probe(ctx, k, cfg)
	}
}

// probe checks one member every interval, as GCE's legacy HTTP checks do:
// healthy after `healthy` consecutive 200s, unhealthy after `unhealthy`
// consecutive failures.
func (d *Plane) probe(ctx context.Context, k healthKey, cfg probeCfg) {
	defer d.wg.Done()
	t := time.NewTimer(cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		err := d.probeOnce(ctx, cfg)
		d.record(ctx, k, cfg, err)
		t.Reset(max(cfg.interval-time.Since(start), 0))
	}
}

func (d *Plane) probeOnce(ctx context.Context, cfg probeCfg) error {
	if cfg.url == "" {
		return errors.New("member has no internal IP")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.url, nil)
	if err != nil {
		return err
	}
	if cfg.host != "" {
		req.Host = cfg.host
	}
	req.Header.Set("User-Agent", "GoogleHC/1.0")
	resp, err := d.probes.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

func (d *Plane) record(ctx context.Context, k healthKey, cfg probeCfg, err error) {
	d.hmu.Lock()
	if ctx.Err() != nil { // the prober was replaced or removed meanwhile
		d.hmu.Unlock()
		return
	}
	st := d.health[k]
	if st == nil {
		st = &memberState{}
		d.health[k] = st
	}
	st.lastProbe = time.Now()
	was := st.healthy
	if err == nil {
		st.successes++
		st.fails = 0
		st.lastErr = ""
		if st.successes >= cfg.healthy {
			st.healthy = true
		}
	} else {
		st.fails++
		st.successes = 0
		st.lastErr = err.Error()
		if st.fails >= cfg.unhealthy {
			st.healthy = false
		}
	}
	now, lastErr := st.healthy, st.lastErr
	d.hmu.Unlock()
	if now != was {
		d.log.Info("member health changed", zap.String("targetPool", k.pool), zap.String("instance", k.instance),
			zap.Bool("healthy", now), zap.String("lastError", lastErr))
	}
}
