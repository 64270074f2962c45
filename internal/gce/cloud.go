// Package gce is hakube's Compute Engine layer: narrow methods for the
// resources the flows touch, each mutation waited on until its operation is
// DONE, classified retries with one requestId per logical mutation,
// client-side rate limits per quota group, pagination, ownership labels and
// the cluster lock. Callers never see an Operation.
package gce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2/google"
	"golang.org/x/time/rate"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
)

// Options configure a Cloud.
type Options struct {
	Project string
	// Endpoint is the Compute base URL ending in /compute/v1/; empty means
	// real GCE. An endpoint that is not Google's (e.g. the emulator) is used
	// without credentials, so no token ever leaves for a foreign host.
	Endpoint string
	// HTTPClient overrides the transport (tests); credentials are then the
	// caller's business.
	HTTPClient *http.Client
	Logger     *zap.Logger
	// RequestsPerSecond bounds each quota group (read, list, mutate,
	// operation read); GCE's default is 1,500 a minute per group.
	RequestsPerSecond float64
	// Backoff bounds retries of retryable failures.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// RetryAttempts caps attempts of one call (0: 8).
	RetryAttempts int
	// OpTimeout bounds the wait for one operation (0: 30 minutes, kube-up's
	// longest wait).
	OpTimeout time.Duration
	// WaitCallTimeout bounds one operations.wait long poll (GCE returns
	// after about 2 minutes; 0: 150 s).
	WaitCallTimeout time.Duration
}

// Cloud talks to one project's Compute API. Safe for concurrent use.
type Cloud struct {
	project  string
	svc      *compute.Service
	log      *zap.Logger
	limiters map[group]*rate.Limiter
	opts     Options
	stats    *Stats
	// answered is set by the first HTTP answer from the endpoint (any
	// status): from then on a refused connection is a passing blip.
	answered atomic.Bool
	warnMu   sync.Mutex
	warned   map[string]time.Time // retry warnings logged lately (warnOnce)
}

// ErrNoCredentials means Application Default Credentials were not found.
var ErrNoCredentials = errors.New("no Google credentials found")

// New builds a Cloud from options.
func New(ctx context.Context, opts Options) (*Cloud, error) {
	if opts.Project == "" {
		return nil, errors.New("gce: project is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.RequestsPerSecond == 0 {
		opts.RequestsPerSecond = 20
	}
	if opts.RetryInitial == 0 {
		opts.RetryInitial = 500 * time.Millisecond
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = 30 * time.Second
	}
	if opts.RetryAttempts == 0 {
		opts.RetryAttempts = 8
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = 30 * time.Minute
	}
	if opts.WaitCallTimeout == 0 {
		opts.WaitCallTimeout = 150 * time.Second
	}
	if opts.Endpoint != "" {
		// The client library panics on a base URL it cannot parse.
		if u, err := url.Parse(opts.Endpoint); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("gce: endpoint %q is not an absolute http(s) URL; write it as http(s)://host[:port]/compute/v1/", opts.Endpoint)
		}
	}
	var copts []option.ClientOption
	switch {
	case opts.HTTPClient != nil:
		copts = append(copts, option.WithHTTPClient(opts.HTTPClient))
		if opts.Endpoint != "" {
			copts = append(copts, option.WithEndpoint(opts.Endpoint))
		}
	case opts.Endpoint != "" && !isGoogleEndpoint(opts.Endpoint):
		copts = append(copts, option.WithEndpoint(opts.Endpoint), option.WithoutAuthentication())
	default:
		hc, err := google.DefaultClient(ctx, compute.ComputeScope)
		if err != nil {
			return nil, fmt.Errorf("%w: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or point --endpoint at a GCE emulator (%v)", ErrNoCredentials, err)
		}
		copts = append(copts, option.WithHTTPClient(hc))
		if opts.Endpoint != "" {
			copts = append(copts, option.WithEndpoint(opts.Endpoint))
		}
	}
	svc, err := compute.NewService(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("compute client: %w", err)
	}
	burst := int(opts.RequestsPerSecond)
	if burst < 1 {
		burst = 1
	}
	lim := map[group]*rate.Limiter{}
	for _, g := range []group{groupRead, groupList, groupMutate, groupOpRead} {
		lim[g] = rate.NewLimiter(rate.Limit(opts.RequestsPerSecond), burst)
	}
	return &Cloud{project: opts.Project, svc: svc, log: opts.Logger, limiters: lim, opts: opts, stats: newStats(), warned: map[string]time.Time{}}, nil
}

func isGoogleEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	return u.Scheme == "https" && (u.Host == "compute.googleapis.com" || strings.HasSuffix(u.Host, ".googleapis.com"))
}

// Project is the project this Cloud acts on.
func (c *Cloud) Project() string { return c.project }

// Stats counts API requests by method, including retries and operation
// waits: the number hakube reports per flow and benchmarks compare with
// kube-up's.
type Stats struct {
	mu     sync.Mutex
	counts map[string]int
}

func newStats() *Stats { return &Stats{counts: map[string]int{}} }

func (s *Stats) add(method string) {
	s.mu.Lock()
	s.counts[method]++
	s.mu.Unlock()
}

// Snapshot returns a copy of the counters.
func (s *Stats) Snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Total is the number of requests so far.
func (s *Stats) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.counts {
		n += v
	}
	return n
}

// Stats returns the request counters of this Cloud.
func (c *Cloud) Stats() *Stats { return c.stats }

// Diff returns counts in after that exceed before, sorted by method.
func Diff(before, after map[string]int) []MethodCount {
	var out []MethodCount
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out = append(out, MethodCount{k, d})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Method < out[j].Method })
	return out
}

// MethodCount is a number of requests to one method.
type MethodCount struct {
	Method string `json:"method"`
	Count  int    `json:"count"`
}
