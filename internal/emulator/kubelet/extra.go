package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Config configures the kubelets of every VM.
type Config struct {
	Log *zap.Logger
	// MaxRenewRate caps the fleet's lease renewals per second (0:
	// DefaultMaxRenewRate, negative: no cap): each kubelet's renew interval
	// stretches to (running kubelets) / MaxRenewRate when that is longer
	// than its own, and its lease duration with it. This machine's real
	// control plane cannot take 5,000 kubelets' 500 renewals a second
	// (docs/vm-contract.md has the figures); a stretched interval needs the
	// controller-manager's --node-monitor-grace-period above it.
	MaxRenewRate float64
}

// DefaultMaxRenewRate is what one apiserver and etcd on a 2-core machine
// take beside everything else: up to 1,000 kubelets renew every 10 s as
// real ones do, 5,000 every 50 s.
const DefaultMaxRenewRate = 100

// Extra runs the kubelet of each VM the guest boots and keeps each VM's
// credential for its life.
type Extra struct {
	cfg       Config
	mu        sync.Mutex
	ids       map[vmKey]*identity
	running   int
	stretched bool // the fleet's renewals are stretched (logged once)
}

type vmKey struct {
	project, zone, name string
	id                  uint64
}

// NewExtra returns the kubelet side of the emulator's guests.
func NewExtra(cfg Config) *Extra {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.MaxRenewRate == 0 {
		cfg.MaxRenewRate = DefaultMaxRenewRate
	}
	return &Extra{cfg: cfg, ids: map[vmKey]*identity{}}
}

// Boot starts the VM's kubelet when its kube-env names a bootstrap token
// (a VM that does not join the cluster runs none: stop does nothing); stop
// ends it, as the VM stopping does. A kube-env the kubelet cannot run with
// is an error, also written to the console.
func (x *Extra) Boot(vm VM) (stop func(), err error) {
	set, err := parseSettings(vm.KubeEnv, vm.InternalIP)
	if errors.Is(err, errNoKubelet) {
		return func() {}, nil
	}
	if vm.Region == "" {
		if i := strings.LastIndexByte(vm.Zone, '-'); i > 0 {
			vm.Region = vm.Zone[:i] // europe-west1-b is in europe-west1
		}
	}
	log := x.cfg.Log.With(zap.String("instance", vm.Name))
	if err != nil {
		k := &kubelet{vm: vm, log: log}
		k.console("Failed to start the kubelet: %v", err)
		return nil, err
	}
	id, err := x.identity(vm)
	if err != nil {
		return nil, err
	}
	k := newKubelet(vm, set, id, log)
	own := k.renew
	k.renew = func() time.Duration { return x.renewInterval(own()) }
	x.mu.Lock()
	x.running++
	x.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.run(ctx)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			x.mu.Lock()
			x.running--
			x.mu.Unlock()
		})
	}, nil
}

// identity is the VM's credential, made at its first boot.
func (x *Extra) identity(vm VM) (*identity, error) {
	k := vmKey{vm.Project, vm.Zone, vm.Name, vm.ID}
	x.mu.Lock()
	defer x.mu.Unlock()
	if id := x.ids[k]; id != nil {
		return id, nil
	}
	id, err := newIdentity()
	if err != nil {
		return nil, err
	}
	x.ids[k] = id
	return id, nil
}

// Forget drops a deleted VM's credential.
func (x *Extra) Forget(project, zone, name string, id uint64) {
	x.mu.Lock()
	delete(x.ids, vmKey{project, zone, name, id})
	x.mu.Unlock()
}

// ClientCertificate is the credential the VM's kubelet authenticates with
// (its kubelet-client-current.pem); false before its first bootstrap.
func (x *Extra) ClientCertificate(project, zone, name string, id uint64) (tls.Certificate, bool) {
	x.mu.Lock()
	i := x.ids[vmKey{project, zone, name, id}]
	x.mu.Unlock()
	if i == nil {
		return tls.Certificate{}, false
	}
	c, err := i.tlsCertificate()
	if err != nil || c == nil {
		return tls.Certificate{}, false
	}
	return *c, true
}

func (x *Extra) renewInterval(own time.Duration) time.Duration {
	if x.cfg.MaxRenewRate <= 0 {
		return own
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	d := time.Duration(float64(x.running) / x.cfg.MaxRenewRate * float64(time.Second))
	if d <= own {
		return own
	}
	if !x.stretched {
		x.stretched = true
		x.cfg.Log.Info("kubelets' lease renewals stretched to keep the control plane's load bearable; the controller-manager's --node-monitor-grace-period must exceed the interval",
			zap.Int("kubelets", x.running), zap.Float64("maxRenewRate", x.cfg.MaxRenewRate), zap.Duration("interval", d))
	}
	return d
}
