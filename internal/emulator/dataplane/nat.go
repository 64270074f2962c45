package dataplane

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// A VM with Kubernetes guests listens on its internal IP only, as its
// processes do; what reaches one of its external IPs is forwarded to the
// internal IP's same port, as GCE's one-to-one NAT translates an access
// config's address. The data plane forwards the ports the guest names
// (guest.Machine.NATPorts): the apiserver's, the health agent's and the
// SSH server's.

// natListener is one external IP:port forwarded to target.
type natListener struct {
	target netip.AddrPort
	ctx    context.Context // ends with the listener
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

func newNATListener(target netip.AddrPort) *natListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &natListener{target: target, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
}

// shutdown cuts every connection: once the access config or the VM is
// gone its packets are no longer translated.
func (n *natListener) shutdown() {
	n.cancel()
	n.mu.Lock()
	n.done = true
	conns := n.conns
	n.conns = map[net.Conn]struct{}{}
	n.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

func (n *natListener) track(c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done {
		return false
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *natListener) untrack(c net.Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
	_ = c.Close()
}

// serve accepts until the listener closes and splices each connection to
// the target; a target that refuses resets the client at once, as the VM's
// own RST would.
func (n *natListener) serve(d *Plane, ln net.Listener) {
	defer d.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || n.ctx.Err() != nil {
				return
			}
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-n.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		d.wg.Add(1)
		go n.handle(d, c)
	}
}

func (n *natListener) handle(d *Plane, c net.Conn) {
	defer d.wg.Done()
	if !n.track(c) {
		_ = c.Close()
		return
	}
	defer n.untrack(c)
	ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
	b, err := (&net.Dialer{}).DialContext(ctx, "tcp", n.target.String())
	cancel()
	if err != nil {
		d.log.Debug("NAT connection failed", zap.Stringer("target", n.target), zap.Error(err))
		reset(c)
		return
	}
	if !n.track(b) {
		_ = b.Close()
		return
	}
	defer n.untrack(b)
	splice(c, b)
}

// Dial connects from a VM's address to addr as the network would. A
// connection to an external IP's NAT is handed to its listener in process,
// over net.Pipe: a socket pair per connection would cost the emulator two
// of its open files, and with 5,000 kubelets talking to the static IP
// through the master's NAT that exhausts a limit of 20,000. What the
// connection meets is the same: the listener tracks it, cuts it when the
// access config goes, and resets it when the target refuses. Anything
// else is a socket bound to from.
func (d *Plane) Dial(ctx context.Context, from netip.Addr, network, addr string) (net.Conn, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil && (network == "tcp" || network == "tcp4") {
		d.nmu.Lock()
		n := d.nats[ap]
		d.nmu.Unlock()
		if n != nil && n.ctx.Err() == nil {
			client, server := net.Pipe()
			d.wg.Add(1)
			go n.handle(d, server)
			return pipeConn{client, from, ap}, nil
		}
	}
	// The dialer a kubelet stand-in uses without the data plane.
	dl := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if from.IsValid() {
		dl.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
	}
	return dl.DialContext(ctx, network, addr)
}

// pipeConn is the client's end of a NAT connection made by Dial, with the
// addresses a socket would have.
type pipeConn struct {
	net.Conn
	local  netip.Addr
	remote netip.AddrPort
}

func (c pipeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: c.local.AsSlice()} }
func (c pipeConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote) }
