package sshd

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
)

// directTCPIPMsg is RFC 4254 §7.2's channel-open payload.
type directTCPIPMsg struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}

// localTarget reports whether host names the VM itself: its loopback or
// its internal IP, which stands for that loopback in the rehearsal.
func (s *Server) localTarget(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	return a.IsLoopback() && (a == netip.MustParseAddr("127.0.0.1") || a == netip.IPv6Loopback()) || a == s.cfg.Local
}

// directTCPIP forwards one connection to a port of the VM itself; any other
// destination is refused, as sshd's PermitOpen limited to the VM would.
func (s *Server) directTCPIP(nc ssh.NewChannel) {
	var m directTCPIPMsg
	if err := ssh.Unmarshal(nc.ExtraData(), &m); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	if !s.localTarget(m.Host) || m.Port == 0 || m.Port > 65535 || !s.cfg.Local.IsValid() {
		_ = nc.Reject(ssh.Prohibited, "administratively prohibited: open failed")
		return
	}
	target := net.JoinHostPort(s.cfg.Local.String(), strconv.Itoa(int(m.Port)))
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	conn, err := s.cfg.Dial(ctx, "tcp", target)
	cancel()
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "connect failed: "+err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = conn.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	s.cfg.Log.Debug("ssh forwarding", zap.String("instance", s.cfg.Hostname), zap.String("to", target))
	splice(s.ctx, ch, conn)
}

// splice copies both ways until both sides are done or ctx ends; each
// side's end of input half-closes the other.
func splice(ctx context.Context, ch ssh.Channel, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() {
		_ = ch.Close()
		_ = conn.Close()
	})
	defer stop()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(conn, ch)
		if tc, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(ch, conn)
		_ = ch.CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
	_ = ch.Close()
	_ = conn.Close()
}
