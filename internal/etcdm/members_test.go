package etcdm

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hakube/hakube/internal/pki"
)

// cuttingSSHServer accepts SSH connections and drops each one as soon as
// its client opens a forwarding channel, as the emulator's NAT (and GCE's)
// drops connections to an external IP that moved away.
func cuttingSSHServer(t *testing.T) (addr string, hostKey ssh.PublicKey) {
	t.Helper()
	signer := newSigner(t)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					c.Close()
					return
				}
				go ssh.DiscardRequests(reqs)
				for range chans {
					sc.Close()
				}
			}()
		}
	}()
	return ln.Addr().String(), signer.PublicKey()
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

func TestConnectFailsFastWhenTheTunnelCloses(t *testing.T) {
	addr, hostKey := cuttingSSHServer(t)
	host, port, _ := net.SplitHostPort(addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	cfg := SSH{User: "hakube", Signer: newSigner(t), Port: p,
		HostKey: func(string) ssh.HostKeyCallback { return ssh.FixedHostKey(hostKey) }}
	tun, err := cfg.Dial(context.Background(), "master", host)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	ca, err := pki.NewCA("etcd-ca", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err = Connect(ctx, tun, tls.Certificate{}, ca.CertPEM)
	if !errors.Is(err, ErrTunnelClosed) {
		t.Fatalf("Connect through a tunnel that closed: err = %v, want ErrTunnelClosed", err)
	}
	// Well under the 15 s dial timeout: the caller can dial again at once.
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("Connect took %s to notice the tunnel closed", el)
	}
}
