package etcdm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// ClientAddr is etcd's client address on a master, as the master sees it:
// kube-up's masters (and hakube's) serve it on localhost only.
const ClientAddr = "127.0.0.1:2379"

// Member is one etcd member as hakube shows it.
type Member struct {
	Name     string   `json:"name"`
	ID       uint64   `json:"id"`
	IDHex    string   `json:"idHex"`
	PeerURLs []string `json:"peerURLs"`
	Learner  bool     `json:"learner"`
	// Healthy and Leader come from the member itself (Status through its
	// own master's tunnel); false when it could not be asked.
	Healthy bool `json:"healthy"`
	Leader  bool `json:"leader"`
}

// Client is etcd through one master.
type Client struct {
	cli    *clientv3.Client
	tunnel *Tunnel
	end    context.CancelCauseFunc // ends the client's life
}

// call runs one etcd call, cut short with ErrTunnelClosed when the tunnel
// goes (gRPC would otherwise wait for a connection that never comes).
func (c *Client) call(ctx context.Context, f func(ctx context.Context) error) error {
	cctx, cancel := c.tunnel.bound(ctx)
	defer cancel(nil)
	err := f(cctx)
	if err != nil && errors.Is(context.Cause(cctx), ErrTunnelClosed) {
		return fmt.Errorf("%w: %v", ErrTunnelClosed, err)
	}
	return err
}

// Connect opens an etcd client on the master behind the tunnel, with the
// run's client certificate, trusting only the etcd CA. ctx bounds the dial
// only; the client lives until Close or until the tunnel goes. A tunnel
// that goes during the dial (the master's external IP moved) fails it at
// once with ErrTunnelClosed: gRPC would otherwise redial the dead tunnel
// until its timeout and report only "context deadline exceeded".
func Connect(ctx context.Context, t *Tunnel, cert tls.Certificate, etcdCA []byte) (*Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(etcdCA) {
		return nil, errors.New("the etcd CA is not PEM")
	}
	life, end := t.bound(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { end(context.Cause(ctx)) })
	host, _, _ := net.SplitHostPort(ClientAddr)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"https://" + ClientAddr},
		TLS:         &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12},
		DialTimeout: 15 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return t.DialContext(ctx, "tcp", addr)
		})},
		Logger:               zap.NewNop(),
		Context:              life,
		RejectOldCluster:     true,
		PermitWithoutStream:  true,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	})
	stop()
	if err != nil {
		cause := context.Cause(life)
		end(nil)
		if errors.Is(cause, ErrTunnelClosed) {
			return nil, fmt.Errorf("etcd on %s: %w (%v)", t.Host, ErrTunnelClosed, err)
		}
		return nil, fmt.Errorf("etcd on %s: %w", t.Host, err)
	}
	return &Client{cli: cli, tunnel: t, end: end}, nil
}

// MemberOn finds the member with the peer URL in ms (nil when none has it):
// a learner has no name until it starts, so members are known by URL.
func MemberOn(ms []Member, peerURL string) *Member {
	for i := range ms {
		if slices.Contains(ms[i].PeerURLs, peerURL) {
			return &ms[i]
		}
	}
	return nil
}

// Close closes the client (not the tunnel).
func (c *Client) Close() error {
	err := c.cli.Close()
	c.end(nil)
	return err
}

// List lists the members (a linearizable read: it needs quorum).
func (c *Client) List(ctx context.Context) ([]Member, error) {
	var r *clientv3.MemberListResponse
	err := c.call(ctx, func(ctx context.Context) (err error) {
		r, err = c.cli.MemberList(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list etcd members: %w", err)
	}
	out := make([]Member, 0, len(r.Members))
	for _, m := range r.Members {
		out = append(out, Member{Name: m.Name, ID: m.ID, IDHex: fmt.Sprintf("%x", m.ID), PeerURLs: m.PeerURLs, Learner: m.IsLearner})
	}
	return out, nil
}

// Status asks the member behind this tunnel for its health and the leader.
func (c *Client) Status(ctx context.Context) (id, leader uint64, err error) {
	var s *clientv3.StatusResponse
	err = c.call(ctx, func(ctx context.Context) (err error) {
		s, err = c.cli.Status(ctx, "https://"+ClientAddr)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	if len(s.Errors) > 0 {
		return s.Header.MemberId, s.Leader, fmt.Errorf("member reports: %s", strings.Join(s.Errors, "; "))
	}
	return s.Header.MemberId, s.Leader, nil
}

// retry calls f until it succeeds, fails with what retrying cannot mend,
// or ctx ends, waiting every between tries.
func retry(ctx context.Context, every time.Duration, transient func(error) bool, f func() error) error {
	for {
		err := f()
		if err == nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(every):
		}
	}
}

// AddLearner adds a non-voting member with the peer URL. Right after a
// cluster forms etcd refuses reconfiguration ("unhealthy cluster") until
// its members have been connected for a while: that is retried.
func (c *Client) AddLearner(ctx context.Context, peerURL string) (uint64, error) {
	var id uint64
	err := retry(ctx, 500*time.Millisecond, unhealthyOrTimeout, func() error {
		return c.call(ctx, func(ctx context.Context) error {
			r, err := c.cli.MemberAddAsLearner(ctx, []string{peerURL})
			if err == nil {
				id = r.Member.ID
			}
			return err
		})
	})
	if errors.Is(err, rpctypes.ErrPeerURLExist) {
		// An attempt that timed out had been applied: that member is ours.
		ms, lerr := c.List(ctx)
		if m := MemberOn(ms, peerURL); lerr == nil && m != nil && m.Learner {
			return m.ID, nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("add etcd learner %s: %w", peerURL, err)
	}
	return id, nil
}

// Promote makes a learner a voter once it has caught up with the leader
// (etcd refuses before: "can only promote a learner member which is in
// sync with leader"), retrying until then.
func (c *Client) Promote(ctx context.Context, id uint64) error {
	err := retry(ctx, 500*time.Millisecond, func(err error) bool {
		return errors.Is(err, rpctypes.ErrMemberLearnerNotReady) || strings.Contains(err.Error(), "in sync with leader") || isTimeout(err)
	}, func() error {
		err := c.call(ctx, func(ctx context.Context) error {
			_, err := c.cli.MemberPromote(ctx, id)
			return err
		})
		if errors.Is(err, rpctypes.ErrMemberNotLearner) {
			return nil // promoted already, by an earlier attempt
		}
		return err
	})
	return wrapf(err, "promote etcd member %x", id)
}

// Remove removes a member; one already gone is fine.
func (c *Client) Remove(ctx context.Context, id uint64) error {
	// "unhealthy cluster": the member asked has not heard from every peer
	// in the last 5 s (a loaded machine, a peer booting), and etcd will not
	// risk the quorum on it; it passes once they are connected again.
	err := retry(ctx, 500*time.Millisecond, unhealthyOrTimeout, func() error {
		err := c.call(ctx, func(ctx context.Context) error {
			_, err := c.cli.MemberRemove(ctx, id)
			return err
		})
		if errors.Is(err, rpctypes.ErrMemberNotFound) {
			return nil
		}
		return err
	})
	return wrapf(err, "remove etcd member %x", id)
}

// unhealthyOrTimeout is a reconfiguration etcd refused for now.
func unhealthyOrTimeout(err error) bool {
	return errors.Is(err, rpctypes.ErrUnhealthy) || strings.Contains(err.Error(), "unhealthy cluster") || isTimeout(err)
}

// isTimeout is etcd's "request timed out": a leader change under way.
func isTimeout(err error) bool {
	return errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost)
}

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
