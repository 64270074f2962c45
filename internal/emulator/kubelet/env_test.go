package kubelet

import (
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestParseSettings(t *testing.T) {
	ca := base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\n"))
	env := func(extra string) string {
		return "KUBERNETES_MASTER: 'false'\nKUBERNETES_MASTER_NAME: '127.64.0.2'\nAPISERVER_PORT: '6443'\nCA_CERT: '" + ca +
			"'\nKUBELET_BOOTSTRAP_TOKEN: 'abcdef.0123456789abcdef'\n" + extra
	}
	vmIP := netip.MustParseAddr("127.128.0.5")
	s, err := parseSettings(env(""), vmIP)
	if err != nil {
		t.Fatal(err)
	}
	if s.server != "https://127.64.0.2:6443" || s.master || len(s.taints) != 0 || s.leaseDuration != 40*time.Second ||
		s.leaseRenew() != 10*time.Second || s.statusUpdate != 10*time.Second || s.statusReport != 5*time.Minute || s.maxPods != 110 {
		t.Errorf("defaults: %+v (renew %v)", s, s.leaseRenew())
	}
	master := env("KUBERNETES_MASTER: 'true'\nKUBELET_TEST_ARGS: '--node-lease-duration-seconds=8 --node-status-update-frequency 2s --v=4 --node-labels=example.com/pool=a --register-with-taints=dedicated=infra:NoExecute'\n")
	s, err = parseSettings(master, vmIP)
	if err != nil {
		t.Fatal(err)
	}
	if !s.master || s.leaseRenew() != 2*time.Second || s.statusUpdate != 2*time.Second || s.labels["example.com/pool"] != "a" ||
		len(s.taints) != 2 || s.taints[0].Key != "node-role.kubernetes.io/control-plane" || s.taints[1].Effect != corev1.TaintEffectNoExecute ||
		strings.Join(s.ignored, " ") != "--v" {
		t.Errorf("master with test args: %+v", s)
	}
	// A master's kubelet reaches its own apiserver, not the static IP.
	if s.server != "https://127.128.0.5:6443" {
		t.Errorf("master's server = %s, want its own internal IP's", s.server)
	}
	if _, err := parseSettings(master, netip.Addr{}); err == nil {
		t.Error("a master without an internal IP accepted")
	}
	if _, err := parseSettings("KUBERNETES_MASTER: 'false'\n", vmIP); !errors.Is(err, errNoKubelet) {
		t.Errorf("no bootstrap token: %v, want errNoKubelet", err)
	}
	for _, bad := range []string{"KUBELET_TEST_ARGS: '--node-lease-duration-seconds=0'\n", "KUBELET_TEST_ARGS: '--register-with-taints=a:Sometimes'\n", "APISERVER_PORT: '0'\n"} {
		if _, err := parseSettings(env(bad), vmIP); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parseSettings(strings.Replace(env(""), "KUBERNETES_MASTER_NAME: '127.64.0.2'\n", "", 1), vmIP); err == nil {
		t.Error("no KUBERNETES_MASTER_NAME accepted")
	}
}
