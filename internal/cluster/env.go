package cluster

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/etcdm"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
)

// Env is what a flow runs with: the cloud, logging, and its tunables.
type Env struct {
	Cloud *gce.Cloud
	Log   *zap.Logger
	// Parallelism bounds concurrently running steps.
	Parallelism int
	// Progress receives a human line while a step waits (may be nil).
	Progress func(step, msg string)
	// Holder names this user and host in the cluster lock, PID this
	// process; BreakLock takes over the lock another run was seen holding.
	// HolderAlive says whether a pid of this machine runs (nil: really ask).
	Holder      string
	PID         int
	BreakLock   bool
	HolderAlive func(pid int) bool
	// APIDeadline bounds waiting for the API to serve after a change
	// (kube-up: 30 minutes for the load balancer).
	APIDeadline time.Duration
	// StableTimeout bounds waiting for a node pool to be stable (kube-up: 30 minutes).
	StableTimeout time.Duration
	// PollInterval is the first interval of status polls (grows to 10 s).
	PollInterval time.Duration

	// SSH reaches the masters for etcd's membership (etcdm); its Signer is
	// hakube's key, SSHUser the account it adds to the masters' ssh-keys.
	SSH     etcdm.SSH
	SSHUser string
	// Kubeconfig is the file a fresh up merges the admin's context into
	// ("" writes none).
	Kubeconfig string
	// Force lets a membership change go on that would leave etcd without a
	// healthy quorum (--force).
	Force bool
	// Now is the clock certificates are issued by (nil: time.Now).
	Now func() time.Time
	// KnownHosts is the file the masters' SSH host keys are remembered in
	// across runs ("": for the run only).
	KnownHosts string

	// hostKeys holds the SSH host keys each master published, by its
	// instance id (a VM made again has a new one): one read per master,
	// however many etcd calls a flow makes through it.
	hostKeys sync.Map
	known    knownHosts
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) defaults() {
	if e.Log == nil {
		e.Log = zap.NewNop()
	}
	if e.Parallelism <= 0 {
		e.Parallelism = 8
	}
	if e.Holder == "" {
		e.Holder = gce.DefaultHolder()
	}
	if e.PID == 0 {
		e.PID = os.Getpid()
	}
	if e.APIDeadline == 0 {
		e.APIDeadline = 30 * time.Minute
	}
	if e.StableTimeout == 0 {
		e.StableTimeout = 30 * time.Minute
	}
	if e.PollInterval == 0 {
		e.PollInterval = 500 * time.Millisecond
	}
	e.known.file = e.KnownHosts
	if e.SSHUser == "" {
		e.SSHUser = "hakube"
	}
	if e.SSH.User == "" {
		e.SSH.User = e.SSHUser
	}
}

// progress reports a line under the step whose Run ctx belongs to: the
// CLI's display finds running steps by their id.
func (e *Env) progress(ctx context.Context, format string, args ...any) {
	if e.Progress != nil {
		e.Progress(stepOf(ctx), fmt.Sprintf(format, args...))
	}
}

// poll calls check with growing intervals until it reports done, fails, or
// the timeout passes; every few seconds it reports progress.
func (e *Env) poll(ctx context.Context, what string, timeout time.Duration, check func(ctx context.Context) (bool, string, error)) error {
	return e.pollUpTo(ctx, what, timeout, 10*time.Second, check)
}

// pollUpTo is poll with intervals that grow to at most maxInterval.
func (e *Env) pollUpTo(ctx context.Context, what string, timeout, maxInterval time.Duration, check func(ctx context.Context) (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	interval := e.PollInterval
	lastReport := start
	for {
		done, state, err := check(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Since(lastReport) >= 5*time.Second {
			lastReport = time.Now()
			e.progress(ctx, "%s: %s (%s elapsed of %s)", what, state, time.Since(start).Round(time.Second), timeout)
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("%s: still %s after %s", what, state, timeout)
			}
			return ctx.Err()
		case <-time.After(interval):
		}
		if interval *= 2; interval > maxInterval {
			interval = maxInterval
		}
	}
}

// waitMIGStable waits until a zone's pool has all its VMs running and
// nothing in progress, as `gcloud ... wait-until-stable` does.
func (e *Env) waitMIGStable(ctx context.Context, key gce.Key) error {
	return e.poll(ctx, "node pool "+key.String(), e.StableTimeout, func(ctx context.Context) (bool, string, error) {
		m, err := e.Cloud.GetMIG(ctx, key)
		if err != nil {
			return false, "", fmt.Errorf("read managed instance group %s: %w", key, err)
		}
		if m.Status != nil && m.Status.IsStable {
			return true, "stable", nil
		}
		a := m.CurrentActions
		if a == nil {
			return false, "not stable", nil
		}
		return false, fmt.Sprintf("%d creating, %d deleting, %d running of %d", a.Creating+a.CreatingWithoutRetries, a.Deleting, a.None, m.TargetSize), nil
	})
}

// waitMemberHealthy waits until the target pool sees the instance healthy.
// The polls are at most four first intervals apart (2 s, two of the health
// check's own intervals): a replica turns healthy 3–10 s after its join,
// once its apiserver serves, and polls that kept doubling would see it up
// to as long again late. One that has just joined is not asked at once:
// GCE passes a member only after healthyThreshold checks in a row, a check
// interval apart.
func (e *Env) waitMemberHealthy(ctx context.Context, pool gce.Key, instance string, joined bool) error {
	if joined {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(e.PollInterval):
		}
	}
	return e.pollUpTo(ctx, "health check of "+gce.KeyOf(instance).Name, e.APIDeadline, 4*e.PollInterval, func(ctx context.Context) (bool, string, error) {
		st, err := e.Cloud.TargetPoolHealth(ctx, pool, instance)
		if err != nil {
			return false, "", err
		}
		return st == "HEALTHY", st, nil
	})
}

// prober makes the TLS prober for a cluster whose CA is in a master's metadata.
func (e *Env) prober(cfg *config.Config, ca []byte) *lb.Prober {
	return &lb.Prober{CA: ca, Port: cfg.APIServerPort, Timeout: 2 * time.Second}
}

// lockRequest is what this run asks of the lock; observed is the lock as
// the run saw it before planning (the only one --break-lock may break).
func (e *Env) lockRequest(flow string, observed gce.LockInfo) gce.LockRequest {
	req := gce.LockRequest{Info: gce.LockInfo{Holder: e.Holder, PID: e.PID, Operation: flow, Since: time.Now()}, Alive: e.HolderAlive}
	if e.BreakLock && observed.Held() {
		req.Break = &observed
	}
	return req
}

// suffixFor returns n characters of [a-z0-9] drawn from seed: kube-up's
// replica suffix alphabet (hex there; a wider one here, fewer collisions).
func suffixFor(seed string, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	sum := sha256.Sum256([]byte(seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(b)
}

// running reports whether an instance is up as far as GCE is concerned.
func running(in *compute.Instance) bool { return in.Status == "RUNNING" }
