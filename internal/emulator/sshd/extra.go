package sshd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
)

// VM is what the SSH server needs of one booted VM: what the emulator's
// guest seam hands each boot, in the server's own terms.
type VM struct {
	Project, Zone, Name string
	ID                  uint64 // a new ID under the same name is a new VM, with new host keys
	// Listen are the IPs sshd listens on; Local is the internal IP that
	// stands for the VM's 127.0.0.1 (docs/vm-contract.md).
	Listen []netip.Addr
	Local  netip.Addr
	// Metadata reads the instance's and the project's metadata as they are
	// now (GCE's guest agent follows ssh-keys changes).
	Metadata func(ctx context.Context) (Metadata, error)
	// PublishHostKey writes guest attribute hostkeys/<keyType> (the guest
	// agent's PUT to the metadata server); an error (guest attributes
	// disabled) only means gcloud and hakube cannot verify the key.
	PublishHostKey func(keyType, value string) error
	Halt, Reboot   func()
	// Dial reaches the VM's own ports (nil: a net.Dialer).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Console is the VM's serial console (nil: none).
	Console io.Writer
}

// ExtraConfig configures the SSH servers of every VM.
type ExtraConfig struct {
	Port     int    // 0: 22
	PortFlag string // the setting that moves Port ("--ssh-port")
	Log      *zap.Logger
}

// Extra runs the SSH server of each VM the guest boots and keeps each VM's
// host key for its life, as a real VM keeps /etc/ssh/ssh_host_*_key on its
// boot disk.
type Extra struct {
	cfg  ExtraConfig
	mu   sync.Mutex
	keys map[vmKey]ssh.Signer
}

type vmKey struct {
	project, zone, name string
	id                  uint64
}

// NewExtra returns the SSH side of the emulator's guests.
func NewExtra(cfg ExtraConfig) *Extra {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Extra{cfg: cfg, keys: map[vmKey]ssh.Signer{}}
}

// HostKey is the VM's ed25519 host key, made on its first boot.
func (e *Extra) HostKey(vm VM) (ssh.Signer, error) {
	k := vmKey{vm.Project, vm.Zone, vm.Name, vm.ID}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.keys[k]; ok {
		return s, nil
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	e.keys[k] = s
	return s, nil
}

// Forget drops a deleted VM's host key.
func (e *Extra) Forget(project, zone, name string, id uint64) {
	e.mu.Lock()
	delete(e.keys, vmKey{project, zone, name, id})
	e.mu.Unlock()
}

// Boot starts the VM's SSH server: it publishes the host key as guest
// attributes (as the guest agent does at boot) and listens, retrying every
// second while the port cannot be bound. stop ends it (the VM stops).
func (e *Extra) Boot(vm VM) (stop func(), err error) {
	hk, err := e.HostKey(vm)
	if err != nil {
		return nil, err
	}
	console := vm.Console
	if console == nil {
		console = io.Discard
	}
	pub := hk.PublicKey()
	if vm.PublishHostKey != nil {
		// The guest agent writes the key's base64 alone (gcloud prefixes
		// the guest attribute's key, the type, itself).
		if err := vm.PublishHostKey(pub.Type(), base64.StdEncoding.EncodeToString(pub.Marshal())); err != nil {
			fmt.Fprintf(console, "google_guest_agent: Unable to write %s host key to guest attributes: %v\n", pub.Type(), err)
		}
	}
	cfg := Config{
		Hostname: vm.Name, InstanceID: vm.ID, Addrs: vm.Listen, Port: e.cfg.Port, PortFlag: e.cfg.PortFlag,
		HostKeys: []ssh.Signer{hk}, Local: vm.Local, Dial: vm.Dial, Halt: vm.Halt, Reboot: vm.Reboot,
		Log: e.cfg.Log.With(zap.String("instance", vm.Name)),
		Metadata: func(ctx context.Context) (Metadata, error) {
			if vm.Metadata == nil {
				return Metadata{}, nil
			}
			return vm.Metadata(ctx)
		},
	}
	// The first attempt is made before Boot returns, so that a VM whose
	// port is free answers as soon as it is booted.
	srv, startErr := Start(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.serve(ctx, cfg, console, srv, startErr)
	}()
	return func() {
		cancel()
		<-done
	}, nil
}

// serve runs the server until ctx ends, binding again every second after a
// failure (a port another process held may be freed).
func (e *Extra) serve(ctx context.Context, cfg Config, console io.Writer, srv *Server, err error) {
	var lastErr string
	for {
		if err == nil {
			for _, a := range srv.Addrs() {
				fmt.Fprintf(console, "sshd: Server listening on %s.\n", a)
			}
			<-ctx.Done()
			srv.Close()
			return
		}
		if err.Error() != lastErr {
			lastErr = err.Error()
			fmt.Fprintf(console, "sshd: %v\n", err)
			e.cfg.Log.Error("ssh server cannot listen", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		srv, err = Start(cfg)
	}
}
