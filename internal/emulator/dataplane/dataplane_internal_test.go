package dataplane

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator/guest"
	"go.uber.org/zap"
)

func TestBindErrorMessage(t *testing.T) {
	ap := netip.MustParseAddrPort("127.57.0.2:443")
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", errno)}
	}
	owner := "https://x/projects/p/zones/z/instances/m1"
	g := guest.NewVM("m1", zap.NewNop())
	g.Start(guest.Parse(guest.Metadata{KubeEnv: "KUBERNETES_MASTER: 'true'\n"}), []netip.Addr{ap.Addr()})
	svcs := g.Services()
	vm := &want{kind: kindGuest, owner: owner, svc: svcs[0]}
	hc := &want{kind: kindGuest, owner: owner, svc: svcs[1]}
	fr := &want{kind: kindForward, owner: "https://x/projects/p/regions/r/forwardingRules/fr"}
	tests := []struct {
		name string
		w    *want
		err  error
		want []string
	}{
		{"apiserver privileged", vm, opErr(syscall.EACCES), []string{"127.57.0.2:443", "API server of m1", "permission denied", "ports below 1024 need root", "APISERVER_PORT ≥ 1024", "hakube --apiserver-port 6443"}},
		{"healthcheck privileged", hc, opErr(syscall.EACCES), []string{"health-check port of m1", "HEALTHCHECK_PORT ≥ 1024"}},
		{"forwarding privileged", fr, opErr(syscall.EACCES), []string{"forwarding rule fr", "port range ≥ 1024", "--apiserver-port 6443"}},
		{"not local", vm, opErr(syscall.EADDRNOTAVAIL), []string{"not on this machine", "ifconfig lo0 alias 127.57.0.2", "--internal-range"}},
		{"in use", vm, opErr(syscall.EADDRINUSE), []string{"address already in use", "--external-range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := bindErrorMessage(ap, tt.w, tt.err)
			for _, s := range tt.want {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q lacks %q", msg, s)
				}
			}
		})
	}
}

func TestScaledDuration(t *testing.T) {
	tests := []struct {
		factor float64 // realistic 1 and 0.1, fast 1 and 0.1, none
		sec    float64
		want   time.Duration
	}{
		{1, 5, 5 * time.Second},
		{0.1, 5, 500 * time.Millisecond},
		{1.0 / 200, 5, 25 * time.Millisecond},
		{0.1 / 200, 5, 10 * time.Millisecond}, // floor
		{0, 5, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := scaledDuration(tt.factor, tt.sec, 10*time.Millisecond); got != tt.want {
			t.Errorf("scaledDuration(%g, %g) = %v, want %v", tt.factor, tt.sec, got, tt.want)
		}
	}
}

func TestForwardedPorts(t *testing.T) {
	ip := netip.MustParseAddr("127.57.0.9")
	pool := "https://x/projects/p/regions/r/targetPools/tp"
	tests := []struct {
		name  string
		rule  Rule
		ports []int
		err   string
	}{
		{"single", Rule{IP: ip, PortRange: "6443-6443", Target: pool}, []int{6443}, ""},
		{"bare port", Rule{IP: ip, PortRange: "6443", Protocol: "TCP", Target: pool}, []int{6443}, ""},
		{"range", Rule{IP: ip, PortRange: "8000-8002", Target: pool}, []int{8000, 8001, 8002}, ""},
		{"too many", Rule{IP: ip, PortRange: "7000-7016", Target: pool}, nil, "spans 17 ports"},
		{"all ports", Rule{IP: ip, Target: pool}, nil, "without portRange"},
		{"udp", Rule{IP: ip, PortRange: "53-53", Protocol: "UDP", Target: pool}, nil, "IPProtocol UDP"},
		{"target instance", Rule{IP: ip, PortRange: "80-80", Target: "https://x/projects/p/zones/z/targetInstances/ti"}, nil, "not a target pool"},
		{"reversed", Rule{IP: ip, PortRange: "90-80", Target: pool}, nil, "not a port range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ports, err := forwardedPorts(&tt.rule)
			if diff := cmp.Diff(tt.ports, ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if (tt.err == "") != (err == "") || !strings.Contains(err, tt.err) {
				t.Errorf("error = %q, want one containing %q", err, tt.err)
			}
		})
	}
}
