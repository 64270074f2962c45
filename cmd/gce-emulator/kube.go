package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
)

// guests is what the VMs run, from the flags.
type guests struct {
	kubernetes bool
	binary     string
}

// guestOptions checks --kubernetes, --kube-binary and --ssh-port before
// anything is served, so that a missing binary or a port the emulator
// cannot bind fails at start, naming the flag, and not at a VM's boot.
func (o *options) guestOptions(internal netip.Prefix) (guests, error) {
	if !o.dataPlane {
		if o.kubernetesSet && o.kubernetes {
			return guests{}, errors.New("--kubernetes needs the data plane: drop --dataplane=false")
		}
		return guests{}, nil
	}
	if err := checkSSHPort(internal, o.sshPort); err != nil {
		return guests{}, err
	}
	if !o.kubernetes {
		return guests{}, nil
	}
	bin := o.kubeBinary
	if bin == "" {
		bin = defaultKubeBinary()
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return guests{}, fmt.Errorf("--kube-binary: no executable at %s: build it with `make rehearsal`, pass --kube-binary, or run with --kubernetes=false (static masters, enough for network tests only)", bin)
	}
	// The VMs' processes run in their own directories: a relative path
	// would name nothing there.
	abs, err := filepath.Abs(bin)
	if err != nil {
		return guests{}, fmt.Errorf("--kube-binary %s: %w", bin, err)
	}
	return guests{kubernetes: true, binary: abs}, nil
}

// defaultKubeBinary is kube-rehearsal next to this executable (make build
// puts both in bin/), else ./bin/kube-rehearsal.
func defaultKubeBinary() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "kube-rehearsal")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join("bin", "kube-rehearsal")
}

// checkSSHPort binds the SSH port on an internal IP once: every VM's SSH
// server listens there.
func checkSSHPort(internal netip.Prefix, port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("--ssh-port %d is not a port", port)
	}
	ip := internal.Masked().Addr().Next().Next()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, uint16(port)).String())
	if err != nil {
		msg := fmt.Sprintf("--ssh-port %d: every VM's SSH server listens on this port, and the emulator cannot: %v", port, err)
		if errors.Is(err, syscall.EACCES) {
			msg += "; ports below 1024 need root (or CAP_NET_BIND_SERVICE): pass --ssh-port 2222"
		}
		return errors.New(msg)
	}
	return ln.Close()
}
