package sshd_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hakube/hakube/internal/emulator/emulatortest"
	"github.com/hakube/hakube/internal/emulator/sshd"
	"golang.org/x/crypto/ssh"
)

// vmIP hands out loopback IPs from a range this test process holds, so
// that no other test process binds them.
type vmIP struct {
	mu   sync.Mutex
	next netip.Addr
}

func newVMIPs(t *testing.T) *vmIP {
	_, internal := emulatortest.ClaimRanges(t)
	// The upper half of the claimed /15: the emulators of this package's
	// tests hand out IPs from the lower one.
	b := internal.Addr().As4()
	b[1]++
	b[3] = 10
	return &vmIP{next: netip.AddrFrom4(b)}
}

func (v *vmIP) take() netip.Addr {
	v.mu.Lock()
	defer v.mu.Unlock()
	a := v.next
	v.next = v.next.Next()
	return a
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keyLine(user string, s ssh.Signer) string {
	return user + ":" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " " + user
}

// vm is one SSH server under test, with the metadata it reads.
type vm struct {
	srv               *sshd.Server
	addr              string
	local             netip.Addr
	hostKey           ssh.Signer
	mu                sync.Mutex
	md                sshd.Metadata
	reads             atomic.Int32
	halted, rebooted  chan struct{}
	haltOnce, rebootO sync.Once
}

func startVM(t *testing.T, ips *vmIP, name string) *vm {
	t.Helper()
	v := &vm{local: ips.take(), hostKey: newSigner(t), halted: make(chan struct{}), rebooted: make(chan struct{})}
	srv, err := sshd.Start(sshd.Config{
		Hostname: name, InstanceID: 4242, Addrs: []netip.Addr{v.local}, Port: 2222, HostKeys: []ssh.Signer{v.hostKey}, Local: v.local,
		Metadata: func(context.Context) (sshd.Metadata, error) {
			v.reads.Add(1)
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.md, nil
		},
		Halt:   func() { v.haltOnce.Do(func() { close(v.halted) }) },
		Reboot: func() { v.rebootO.Do(func() { close(v.rebooted) }) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	v.srv, v.addr = srv, net.JoinHostPort(v.local.String(), "2222")
	return v
}

func (v *vm) setMetadata(md sshd.Metadata) {
	v.mu.Lock()
	v.md = md
	v.mu.Unlock()
}

func (v *vm) dial(user string, key ssh.Signer) (*ssh.Client, error) {
	return ssh.Dial("tcp", v.addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(v.hostKey.PublicKey()), Timeout: 10 * time.Second})
}

func (v *vm) mustDial(t *testing.T, user string, key ssh.Signer) *ssh.Client {
	t.Helper()
	c, err := v.dial(user, key)
	if err != nil {
		t.Fatalf("ssh %s@%s: %v", user, v.addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLogin(t *testing.T) {
	t.Parallel()
	v := startVM(t, newVMIPs(t), "master-1")
	alice, hakube, carol := newSigner(t), newSigner(t), newSigner(t)
	expired := "carol:" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(carol.PublicKey()))) + ` google-ssh {"userName":"carol@example.com","expireOn":"` +
		time.Now().Add(-time.Minute).UTC().Format("2006-01-02T15:04:05+0000") + `"}`
	v.setMetadata(sshd.Metadata{
		Instance: map[string]string{"ssh-keys": keyLine("alice", alice)},
		Project:  map[string]string{"ssh-keys": keyLine("hakube", hakube) + "\n" + expired},
	})
	for _, tt := range []struct {
		name, user string
		key        ssh.Signer
		ok         bool
	}{
		{"instance key", "alice", alice, true},
		{"project key", "hakube", hakube, true},
		{"key of another user", "hakube", alice, false},
		{"expired google-ssh key", "carol", carol, false},
		{"unknown key", "alice", newSigner(t), false},
	} {
		c, err := v.dial(tt.user, tt.key)
		if c != nil {
			c.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: login error %v, want success %v", tt.name, err, tt.ok)
		}
	}
	// The metadata is read at each connection: blocking project keys takes
	// effect at the next login.
	v.setMetadata(sshd.Metadata{
		Instance: map[string]string{"ssh-keys": keyLine("alice", alice), "block-project-ssh-keys": "TRUE"},
		Project:  map[string]string{"ssh-keys": keyLine("hakube", hakube)},
	})
	if c, err := v.dial("hakube", hakube); err == nil {
		c.Close()
		t.Error("a project key logged in with block-project-ssh-keys TRUE")
	}
	v.mustDial(t, "alice", alice)
	if n := v.reads.Load(); n < 7 {
		t.Errorf("metadata read %d times for 7 connections", n)
	}
}

func runCmd(t *testing.T, c *ssh.Client, cmd string) (stdout, stderr string, status int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb strings.Builder
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	var ee *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		status = ee.ExitStatus()
	default:
		t.Fatalf("%s: %v", cmd, err)
	}
	return out.String(), errb.String(), status
}

func TestCommands(t *testing.T) {
	t.Parallel()
	v := startVM(t, newVMIPs(t), "node-abcd")
	key := newSigner(t)
	v.setMetadata(sshd.Metadata{Project: map[string]string{"ssh-keys": keyLine("hakube", key)}})
	c := v.mustDial(t, "hakube", key)
	for _, tt := range []struct {
		cmd, stdout, stderr string
		status              int
	}{
		{"hostname", "node-abcd\n", "", 0},
		{"true", "", "", 0},
		{"sudo true", "", "", 0},
		{"ls -l /", "", "bash: ls: command not found\n", 127},
		{"sudo systemctl stop kubelet", "", "sudo: systemctl: command not found\n", 1},
		// gcloud compute ssh --internal-ip's identity check.
		{"[ `curl \"http://metadata.google.internal/computeMetadata/v1/instance/id\" -H \"Metadata-Flavor: Google\" -q` = 4242 ] || exit 23", "", "", 0},
		{"[ `curl \"http://metadata.google.internal/computeMetadata/v1/instance/id\" -H \"Metadata-Flavor: Google\" -q` = 4243 ] || exit 23", "", "", 23},
	} {
		out, errs, st := runCmd(t, c, tt.cmd)
		if out != tt.stdout || errs != tt.stderr || st != tt.status {
			t.Errorf("%q: stdout %q stderr %q status %d; want %q %q %d", tt.cmd, out, errs, st, tt.stdout, tt.stderr, tt.status)
		}
	}
	select {
	case <-v.halted:
		t.Fatal("halted before asked")
	case <-v.rebooted:
		t.Fatal("rebooted before asked")
	default:
	}
	if _, _, st := runCmd(t, c, "sudo reboot"); st != 0 {
		t.Errorf("sudo reboot: status %d", st)
	}
	waitClosed(t, v.rebooted, "the reboot callback")
	if _, _, st := runCmd(t, c, "sudo halt"); st != 0 {
		t.Errorf("sudo halt: status %d", st)
	}
	waitClosed(t, v.halted, "the halt callback")
}

func waitClosed(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not called", what)
	}
}

func TestShell(t *testing.T) {
	t.Parallel()
	v := startVM(t, newVMIPs(t), "master-2")
	key := newSigner(t)
	v.setMetadata(sshd.Metadata{Instance: map[string]string{"ssh-keys": keyLine("alice", key)}})
	c := v.mustDial(t, "alice", key)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	outPipe, _ := s.StdoutPipe()
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(outPipe)
	readUntil := func(want string) string {
		t.Helper()
		var got strings.Builder
		deadline := time.AfterFunc(10*time.Second, func() { s.Close() })
		defer deadline.Stop()
		for !strings.Contains(got.String(), want) {
			b, err := out.ReadByte()
			if err != nil {
				t.Fatalf("shell output %q lacks %q: %v", got.String(), want, err)
			}
			got.WriteByte(b)
		}
		return got.String()
	}
	readUntil("alice@master-2:~$ ")
	fmt.Fprint(in, "hostname\r")
	readUntil("master-2\r\n")
	fmt.Fprint(in, "kubectl get nodes\r")
	readUntil("bash: kubectl: command not found")
	fmt.Fprint(in, "exit\r")
	err = s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 127 {
		t.Errorf("shell ended with %v, want the last command's status 127", err)
	}
}

// echoServer answers each connection with what it reads, prefixed.
func echoServer(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
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
				defer c.Close()
				l, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "echo %s", l)
			}()
		}
	}()
}

func TestDirectTCPIP(t *testing.T) {
	t.Parallel()
	ips := newVMIPs(t)
	v := startVM(t, ips, "master-3")
	elsewhere := ips.take()
	echoServer(t, net.JoinHostPort(v.local.String(), "2379"))
	echoServer(t, net.JoinHostPort(elsewhere.String(), "2379"))
	key := newSigner(t)
	v.setMetadata(sshd.Metadata{Instance: map[string]string{"ssh-keys": keyLine("hakube", key)}})
	c := v.mustDial(t, "hakube", key)
	for _, dest := range []string{"127.0.0.1:2379", "localhost:2379", net.JoinHostPort(v.local.String(), "2379")} {
		conn, err := c.Dial("tcp", dest)
		if err != nil {
			t.Errorf("forward to %s: %v", dest, err)
			continue
		}
		fmt.Fprintf(conn, "%s\n", dest)
		got, _ := io.ReadAll(conn)
		conn.Close()
		if string(got) != "echo "+dest+"\n" {
			t.Errorf("through %s: %q", dest, got)
		}
	}
	// Another VM's IP, even one that answers, is not the VM's own port.
	for _, dest := range []string{net.JoinHostPort(elsewhere.String(), "2379"), "10.0.0.1:443", "127.0.0.2:2379"} {
		if conn, err := c.Dial("tcp", dest); err == nil {
			conn.Close()
			t.Errorf("forward to %s was allowed", dest)
		} else if !strings.Contains(err.Error(), "administratively prohibited") {
			t.Errorf("forward to %s refused with %v, want administratively prohibited", dest, err)
		}
	}
	// A refused port of the VM itself is a failed connect, not a refusal.
	if _, err := c.Dial("tcp", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "connect failed") {
		t.Errorf("forward to a closed port: %v", err)
	}
}

func TestBindFailureNamesTheFlag(t *testing.T) {
	t.Parallel()
	ips := newVMIPs(t)
	a := ips.take()
	held, err := net.Listen("tcp", net.JoinHostPort(a.String(), "2222"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, err = sshd.Start(sshd.Config{Hostname: "vm", Addrs: []netip.Addr{a}, Port: 2222, PortFlag: "--ssh-port",
		HostKeys: []ssh.Signer{newSigner(t)}, Metadata: func(context.Context) (sshd.Metadata, error) { return sshd.Metadata{}, nil }})
	if err == nil || !strings.Contains(err.Error(), "--ssh-port") || !strings.Contains(err.Error(), a.String()) {
		t.Errorf("bind failure: %v; want the address and --ssh-port named", err)
	}
}
