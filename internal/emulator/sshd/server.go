// Package sshd is the SSH server of an emulated VM (golang.org/x/crypto/ssh),
// standing for a real VM's OpenSSH server and GCE's guest agent together:
// it accepts the keys the VM's metadata lists (ssh-keys of the instance and,
// unless it blocks them, of the project: read at every connection, as the
// agent keeps authorized_keys up to date), authenticates itself with the
// VM's host key, forwards direct-tcpip connections to the VM's own ports,
// and runs the few commands an emulated VM can honestly run: `sudo halt` and
// `sudo poweroff` (the VM goes TERMINATED), `sudo reboot`, `hostname`, `true`.
//
// Extra (extra.go) runs one Server per booted VM for the emulator's guest.
package sshd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
)

// DefaultPort is where a VM's sshd listens.
const DefaultPort = 22

// Config is one VM's SSH server.
type Config struct {
	// Hostname is the VM's name: what `hostname` prints.
	Hostname string
	// InstanceID is the VM's id, what its metadata server's instance/id
	// answers (gcloud compute ssh --internal-ip checks it).
	InstanceID uint64
	// Addrs are the VM's IPs the server listens on, at Port (0: 22).
	Addrs []netip.Addr
	Port  int
	// PortFlag names the setting that moves Port, for a bind error
	// (default "--ssh-port").
	PortFlag string
	// HostKeys authenticate the server (the VM's host keys, kept for its
	// life by the caller).
	HostKeys []ssh.Signer
	// Metadata returns the VM's metadata as it is now; it is called once
	// per connection.
	Metadata func(ctx context.Context) (Metadata, error)
	// Local is the VM's internal IP, which stands for its 127.0.0.1 and
	// localhost: direct-tcpip to any of them dials Local.
	Local netip.Addr
	// Dial opens a forwarded connection (default: a net.Dialer).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Halt and Reboot are what `sudo halt`/`sudo poweroff` and `sudo
	// reboot` ask the machine for. They are called after the command's
	// exit status is sent, on their own goroutine.
	Halt, Reboot func()
	Log          *zap.Logger
	// Now is the clock key expiry is read against (default time.Now).
	Now func() time.Time
}

// Server is a running SSH server.
type Server struct {
	cfg       Config
	ctx       context.Context
	cancel    context.CancelFunc
	listeners []net.Listener
	wg        sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Start binds every address and serves until Close. A bind failure closes
// what was bound and names PortFlag.
func Start(cfg Config) (*Server, error) {
	if len(cfg.HostKeys) == 0 {
		return nil, errors.New("sshd: no host key")
	}
	if cfg.Metadata == nil {
		return nil, errors.New("sshd: no metadata source")
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.PortFlag == "" {
		cfg.PortFlag = "--ssh-port"
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: 10 * time.Second}
		cfg.Dial = d.DialContext
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	for _, a := range cfg.Addrs {
		addr := net.JoinHostPort(a.String(), strconv.Itoa(cfg.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("the SSH server of %s cannot listen on %s: %w; %s", cfg.Hostname, addr, err, portHint(cfg))
		}
		s.listeners = append(s.listeners, ln)
	}
	for _, ln := range s.listeners {
		s.wg.Add(1)
		go s.accept(ln)
	}
	return s, nil
}

func portHint(cfg Config) string {
	if cfg.Port < 1024 {
		return fmt.Sprintf("ports below 1024 need root: set %s to a port from 1024 up (e.g. %s 2222)", cfg.PortFlag, cfg.PortFlag)
	}
	return fmt.Sprintf("another process holds the port: free it or set %s", cfg.PortFlag)
}

// Addrs are the addresses the server listens on.
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, 0, len(s.listeners))
	for _, ln := range s.listeners {
		out = append(out, ln.Addr())
	}
	return out
}

// Close stops listening, cuts every connection and waits for the server's
// goroutines. It is safe to call more than once.
func (s *Server) Close() {
	s.cancel()
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.serveConn(c)
		}()
	}
}

// serverConfig is one connection's configuration: the metadata is read once,
// when the client first offers a key, and only for this connection.
func (s *Server) serverConfig() *ssh.ServerConfig {
	var (
		once sync.Once
		keys AuthorizedKeys
	)
	cfg := &ssh.ServerConfig{
		ServerVersion: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
				defer cancel()
				md, err := s.cfg.Metadata(ctx)
				if err != nil {
					s.cfg.Log.Warn("cannot read the metadata's SSH keys", zap.String("instance", s.cfg.Hostname), zap.Error(err))
					return
				}
				keys = ParseMetadata(md, s.cfg.Now())
			})
			if keys.Allows(meta.User(), key) {
				return &ssh.Permissions{}, nil
			}
			return nil, fmt.Errorf("%s: key %s is not in the metadata's ssh-keys for %q", s.cfg.Hostname, ssh.FingerprintSHA256(key), meta.User())
		},
	}
	for _, k := range s.cfg.HostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

func (s *Server) serveConn(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // the handshake
	sc, chans, reqs, err := ssh.NewServerConn(c, s.serverConfig())
	if err != nil {
		s.cfg.Log.Debug("ssh handshake failed", zap.String("instance", s.cfg.Hostname), zap.Stringer("from", c.RemoteAddr()), zap.Error(err))
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	s.cfg.Log.Debug("ssh login", zap.String("instance", s.cfg.Hostname), zap.String("user", sc.User()), zap.Stringer("from", c.RemoteAddr()))
	// Global requests (keepalives, remote forwarding) are refused, as an
	// sshd with AllowTcpForwarding=local does.
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.session(sc, nc)
			}()
		case "direct-tcpip":
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.directTCPIP(nc)
			}()
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "unknown channel type: "+nc.ChannelType())
		}
	}
}
