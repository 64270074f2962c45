package dataplane

import (
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"
)

// A forwarding rule whose insert runs, or that is still propagating, is not
// programmed in GCE's network yet: packets to its IP go nowhere, so a
// client's SYN is never answered and its connect times out. Refusing (RST),
// which is what loopback does for an IP nothing listens on, tells a client
// at once and makes a `curl -m1` poll loop spin instead of wait.
//
// Without raw sockets the emulator drops SYNs with the kernel's own rule: a
// listener whose accept queue is full does not answer new SYNs (Linux drops
// them). It binds the rule's ports with a backlog of 0, fills the one queue
// slot with a connection of its own and never accepts, so every client's
// connect hangs until its timeout. When the rule starts forwarding the same
// socket gets a full backlog and the forwarder accepts on it, so a client
// retransmitting its SYN connects without ever being refused. Measured on
// Linux 6.x: a Go dial with a 1 s timeout fails with "i/o timeout" after
// 1 s, `curl -m1` exits 28 "Connection timed out after 1001 milliseconds",
// and a dial still waiting at the switch connects on its next retransmit.
//
// Simply accepting and never answering was not chosen: the handshake would
// complete, so a connect with a timeout would succeed, and only reads would
// hang (curl -m1 says "Operation timed out ... with 0 bytes received").

// fillerDialTimeout bounds the dial that fills the queue; on loopback it
// takes microseconds.
const fillerDialTimeout = 200 * time.Millisecond

// fullBacklog is the backlog a listener gets when it starts forwarding; the
// kernel caps it at its own maximum (net.core.somaxconn).
const fullBacklog = 1 << 16

// dropHold is what keeps a dropping listener's queue full.
type dropHold struct {
	filler net.Conn
}

// holdDropping shrinks ln's queue to one connection and fills it. Without
// the filler (it could not connect) the first client takes the slot: its
// connect succeeds and then hangs, and everyone after it is dropped.
func (d *Plane) holdDropping(ln net.Listener, ap netip.AddrPort) (*dropHold, error) {
	if err := setBacklog(ln, 0); err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", ap.String(), fillerDialTimeout)
	if err != nil {
		d.log.Debug("could not fill a dropping listener's queue", zap.Stringer("address", ap), zap.Error(err))
		return &dropHold{}, nil
	}
	return &dropHold{filler: c}, nil
}

// release closes the filler's end.
func (h *dropHold) release() {
	if h != nil && h.filler != nil {
		_ = h.filler.Close()
	}
}

// skip is the address the listener sees the filler come from, so that the
// forwarder drops it instead of forwarding it.
func (h *dropHold) skip() string {
	if h == nil || h.filler == nil {
		return ""
	}
	return h.filler.LocalAddr().String()
}

// promote turns a dropping listener into the rule's forwarder on the same
// socket, so there is no moment when the port refuses.
func (d *Plane) promote(l *listener) error {
	if err := setBacklog(l.ln, fullBacklog); err != nil {
		return err
	}
	l.kind = kindForward
	skip := l.hold.skip()
	l.hold.release()
	l.hold = nil
	d.wg.Add(1)
	go l.fwd.serve(l.ln, int(l.ap.Port()), skip)
	return nil
}
