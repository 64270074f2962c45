// Package etcdm changes and reads a cluster's etcd membership as etcd
// documents it (go.etcd.io/etcd/client/v3), through a channel that keeps
// etcd's client port on each master's localhost: an SSH tunnel
// (golang.org/x/crypto/ssh, direct-tcpip) to the master, and a client
// certificate minted from the etcd CA for the run.
package etcdm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Tunnel is an SSH connection to one master, through which hakube reaches
// that master's own localhost ports.
type Tunnel struct {
	Host   string // the master
	client *ssh.Client
	closed chan struct{} // closed once the SSH connection is gone
}

// ErrTunnelClosed is an etcd call cut short because its SSH connection
// went away: the master stopped, or its external IP moved (the static
// IP's move). Dialling the master again is the remedy.
var ErrTunnelClosed = errors.New("the SSH connection to the master closed")

// bound is ctx, also cancelled with ErrTunnelClosed once the tunnel goes;
// the caller cancels it when done.
func (t *Tunnel) bound(ctx context.Context) (context.Context, context.CancelCauseFunc) {
	cctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-t.closed:
			cancel(ErrTunnelClosed)
		case <-cctx.Done():
		}
	}()
	return cctx, cancel
}

// SSH says how to reach masters over SSH.
type SSH struct {
	User   string
	Signer ssh.Signer
	// HostKey verifies a master's host key: the keys its guest published
	// (GCE guest attributes hostkeys/), never trust on first use.
	HostKey func(host string) ssh.HostKeyCallback
	Port    int           // 22
	Timeout time.Duration // connect and handshake (0: 15 s)
}

// Dial opens a tunnel to a master at addr (its external IP).
func (s SSH) Dial(ctx context.Context, host, addr string) (*Tunnel, error) {
	port, timeout := s.Port, s.Timeout
	if port == 0 {
		port = 22
	}
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	if s.HostKey == nil {
		return nil, errors.New("no host key verification for SSH")
	}
	cfg := &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.Signer)},
		HostKeyCallback: s.HostKey(host),
		Timeout:         timeout,
	}
	target := net.JoinHostPort(addr, fmt.Sprint(port))
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("ssh to %s (%s): %w", host, target, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(timeout))
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, target, cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh to %s (%s): %w%s", host, target, err, sshHint(err))
	}
	_ = conn.SetDeadline(time.Time{})
	t := &Tunnel{Host: host, client: ssh.NewClient(c, chans, reqs), closed: make(chan struct{})}
	go func() {
		_ = t.client.Wait()
		close(t.closed)
	}()
	return t, nil
}

func sshHint(err error) string {
	if strings.Contains(err.Error(), "unable to authenticate") {
		return "; the master does not accept hakube's key (is it in the instance's ssh-keys metadata? OS Login replaces metadata keys)"
	}
	return ""
}

// DialContext opens a connection to addr as the master sees it (its
// localhost), through the tunnel.
func (t *Tunnel) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := t.client.Dial(network, addr)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("through %s to %s: %w", t.Host, addr, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Close ends the tunnel.
func (t *Tunnel) Close() error { return t.client.Close() }
