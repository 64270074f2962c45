package main

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuestOptions(t *testing.T) {
	internal := netip.MustParsePrefix("127.250.0.0/16")
	// The probe binds the range's first usable IP; hold it to see the
	// flag named.
	busy, err := net.Listen("tcp", "127.250.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name string
		o    options
		want string // error substring; "" for none
		kube bool
	}{
		{"no data plane, no Kubernetes", options{dataPlane: false, kubernetes: true, sshPort: 22}, "", false},
		{"Kubernetes asked without data plane", options{dataPlane: false, kubernetes: true, kubernetesSet: true}, "--kubernetes needs the data plane", false},
		{"static masters", options{dataPlane: true, kubernetes: false, sshPort: 2222}, "", false},
		{"missing binary", options{dataPlane: true, kubernetes: true, kubeBinary: "/nonexistent/kube-rehearsal", sshPort: 2222},
			"--kube-binary: no executable at /nonexistent/kube-rehearsal: build it with `make rehearsal`", false},
		{"binary", options{dataPlane: true, kubernetes: true, kubeBinary: "/bin/true", sshPort: 2222}, "", true},
		{"SSH port taken", options{dataPlane: true, kubernetes: false, sshPort: busyPort}, "--ssh-port", false},
		{"SSH port out of range", options{dataPlane: true, sshPort: 70000}, "--ssh-port 70000 is not a port", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := tt.o.guestOptions(internal)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one with %q", err, tt.want)
			}
			if g.kubernetes != tt.kube {
				t.Errorf("kubernetes %v, want %v", g.kubernetes, tt.kube)
			}
		})
	}
}

// A relative --kube-binary is made absolute: the VMs' processes run in
// their own state directories, where it would name nothing.
func TestKubeBinaryMadeAbsolute(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kube-rehearsal"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	o := options{dataPlane: true, kubernetes: true, kubeBinary: "kube-rehearsal", sshPort: 2222}
	g, err := o.guestOptions(netip.MustParsePrefix("127.251.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "kube-rehearsal"); g.binary != want {
		t.Errorf("binary %q, want %q", g.binary, want)
	}
}
