package dataplane

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestDialThroughNAT: a VM's connection to an external IP's NAT goes to
// the NAT's target in process, carries the addresses a socket would,
// is cut when the NAT goes, and a Dial after that meets the network (here:
// nothing listens, so it is refused).
func TestDialThroughNAT(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &Plane{log: zap.NewNop(), ctx: ctx, nats: map[netip.AddrPort]*natListener{}}
	external := netip.MustParseAddrPort("127.0.0.1:1") // nothing listens on port 1
	n := newNATListener(netip.MustParseAddrPort(echo.Addr().String()))
	d.nats[external] = n
	from := netip.MustParseAddr("127.0.0.1")

	c, err := d.Dial(ctx, from, "tcp", external.String())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RemoteAddr().String(); got != external.String() {
		t.Errorf("RemoteAddr = %s, want %s", got, external)
	}
	if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != from.String() {
		t.Errorf("LocalAddr = %s, want %s", got, from)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("echo through the NAT = %q, %v", line, err)
	}

	n.shutdown()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a connection read after its NAT went")
	}
	d.nats = map[netip.AddrPort]*natListener{} // as closeListener does
	if c2, err := d.Dial(ctx, from, "tcp", external.String()); err == nil {
		c2.Close()
		t.Error("a Dial to an address without a NAT or a listener connected")
	}
	cancel()
	d.wg.Wait()
}
