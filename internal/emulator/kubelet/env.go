package kubelet

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/hakube/hakube/internal/vmcontract"
)

// settings is what one kubelet runs with: its VM's kube-env, and the
// kubelet flags of KUBELET_TEST_ARGS this stand-in models.
type settings struct {
	server string // https://KUBERNETES_MASTER_NAME:APISERVER_PORT; a master's own apiserver
	caPEM  []byte
	token  string
	master bool

	statusUpdate  time.Duration // --node-status-update-frequency
	statusReport  time.Duration // --node-status-report-frequency
	leaseDuration time.Duration // --node-lease-duration-seconds
	maxPods       int           // --max-pods
	labels        map[string]string
	taints        []corev1.Taint
	// ignored are the flags given that this stand-in does not model.
	ignored []string
}

// Kubelet 1.35's defaults.
const (
	defaultStatusUpdate  = 10 * time.Second
	defaultStatusReport  = 5 * time.Minute
	defaultLeaseDuration = 40 * time.Second
	defaultMaxPods       = 110
	// leaseRenewFraction is the kubelet's renew interval as a fraction of
	// the lease duration (10 s of 40 s).
	leaseRenewFraction = 0.25
)

// errNoKubelet is a VM whose kube-env names no bootstrap token: it does
// not join the cluster, so it runs no kubelet.
var errNoKubelet = errors.New("no " + vmcontract.EnvBootstrapToken + " in kube-env: no kubelet")

// parseSettings reads a kube-env as a kubelet's unit would.
func parseSettings(kubeEnv string, internalIP netip.Addr) (*settings, error) {
	env, err := vmcontract.ParseKubeEnv(kubeEnv)
	if err != nil {
		return nil, err
	}
	s := &settings{token: env.Get(vmcontract.EnvBootstrapToken), master: env.IsMaster(),
		statusUpdate: defaultStatusUpdate, statusReport: defaultStatusReport, leaseDuration: defaultLeaseDuration,
		maxPods: defaultMaxPods, labels: map[string]string{}}
	if s.token == "" {
		return nil, errNoKubelet
	}
	if env.Get(vmcontract.EnvMasterAddress) == "" {
		return nil, &vmcontract.InvalidError{Key: vmcontract.EnvMasterAddress, Why: "missing: the kubelet has no API to join"}
	}
	// A master's kubelet reaches its own apiserver, on the VM's internal
	// IP, which stands for its loopback in the rehearsal.
	if s.master && !internalIP.IsValid() {
		return nil, errors.New("a master's kubelet needs the VM's internal IP: its own apiserver listens there")
	}
	if s.server, err = env.KubeletAPIServer(internalIP.String()); err != nil {
		return nil, err
	}
	if s.caPEM, err = base64.StdEncoding.DecodeString(env.Get(vmcontract.EnvCACert)); err != nil || len(s.caPEM) == 0 {
		return nil, &vmcontract.InvalidError{Key: vmcontract.EnvCACert, Why: "want base64 of the cluster CA's PEM certificate"}
	}
	if s.master {
		s.taints = append(s.taints, corev1.Taint{Key: vmcontract.ControlPlaneRole, Effect: corev1.TaintEffectNoSchedule})
	}
	if err := s.flags(env.TestArgs(vmcontract.EnvKubeletTestArgs)); err != nil {
		return nil, err
	}
	return s, nil
}

// flags applies the kubelet flags this stand-in models; the others are
// recorded as ignored (a real kubelet would apply them).
func (s *settings) flags(args []string) error {
	for i := 0; i < len(args); i++ {
		name, value, ok := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !ok && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value, i = args[i+1], i+1
		}
		var err error
		switch name {
		case "node-status-update-frequency":
			s.statusUpdate, err = positiveDuration(value)
		case "node-status-report-frequency":
			s.statusReport, err = positiveDuration(value)
		case "node-lease-duration-seconds":
			var n int
			if n, err = strconv.Atoi(value); err == nil && n <= 0 {
				err = errors.New("must be positive")
			}
			s.leaseDuration = time.Duration(n) * time.Second
		case "max-pods":
			s.maxPods, err = strconv.Atoi(value)
		case "node-labels":
			err = s.nodeLabels(value)
		case "register-with-taints":
			err = s.registerTaints(value)
		default:
			s.ignored = append(s.ignored, "--"+name)
		}
		if err != nil {
			return fmt.Errorf("%s --%s=%q: %w", vmcontract.EnvKubeletTestArgs, name, value, err)
		}
	}
	return nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = errors.New("must be positive")
	}
	return d, err
}

func (s *settings) nodeLabels(v string) error {
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want key=value, got %q", kv)
		}
		s.labels[k] = val
	}
	return nil
}

// registerTaints reads key[=value]:Effect,...
func (s *settings) registerTaints(v string) error {
	for _, spec := range strings.Split(v, ",") {
		kv, effect, ok := strings.Cut(spec, ":")
		if !ok {
			return fmt.Errorf("want key[=value]:Effect, got %q", spec)
		}
		k, val, _ := strings.Cut(kv, "=")
		switch e := corev1.TaintEffect(effect); e {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
			if !hasTaint(s.taints, k, e) {
				s.taints = append(s.taints, corev1.Taint{Key: k, Value: val, Effect: e})
			}
		default:
			return fmt.Errorf("unknown taint effect %q", effect)
		}
	}
	return nil
}

func hasTaint(ts []corev1.Taint, key string, e corev1.TaintEffect) bool {
	for _, t := range ts {
		if t.Key == key && t.Effect == e {
			return true
		}
	}
	return false
}

// leaseRenew is how often the lease is renewed.
func (s *settings) leaseRenew() time.Duration {
	return time.Duration(float64(s.leaseDuration) * leaseRenewFraction)
}
