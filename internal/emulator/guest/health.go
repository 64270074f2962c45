package guest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The health agent is what a master runs for the load balancer's legacy
// HTTP health check (kube-apiserver has had no plain-HTTP port since 1.20):
// GET /healthz on HEALTHCHECK_PORT answers 200 "ok" while the apiserver's
// own https://<loopback>:APISERVER_PORT/readyz answers 200, and 503 with
// what /readyz said otherwise. A master whose etcd lost quorum fails
// /readyz and so leaves the target pool.
//
// It asks /readyz in the background every healthPoll and answers probes
// from the last answer: the emulator's scaled health checks probe every
// 10 ms with a 50 ms timeout at their fastest, which a busy apiserver
// could not meet, and which would otherwise multiply /readyz calls.
const (
	healthPoll    = 500 * time.Millisecond
	healthTimeout = 5 * time.Second
)

type healthAgent struct {
	url    string
	client *http.Client // nil: no CA to verify the apiserver with

	mu     sync.Mutex
	ok     bool
	answer string // /readyz's body, or why it could not be read
	at     time.Time
}

// newHealthAgent checks readyzURL, verified against the cluster CA's
// PEM (none: every probe fails, saying so).
func newHealthAgent(readyzURL string, caPEM []byte) *healthAgent {
	h := &healthAgent{url: readyzURL, answer: "the apiserver's /readyz has not been asked yet"}
	pool := x509.NewCertPool()
	if len(caPEM) == 0 || !pool.AppendCertsFromPEM(caPEM) {
		h.answer = "no cluster CA certificate (CA_CERT) to verify the apiserver with"
		return h
	}
	h.client = &http.Client{
		Timeout: healthTimeout,
		Transport: &http.Transport{
			Proxy:             nil,
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true, // a restarted apiserver is a new server
		},
	}
	return h
}

// run asks /readyz until ctx ends.
func (h *healthAgent) run(ctx context.Context) {
	if h.client == nil {
		return
	}
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	for {
		ok, answer := h.check(ctx)
		h.mu.Lock()
		h.ok, h.answer, h.at = ok, answer, time.Now()
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *healthAgent) check(ctx context.Context) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return false, fmt.Sprintf("GET %s: %v", h.url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		body := strings.TrimSpace(string(b))
		if body == "" {
			body = resp.Status
		}
		return false, body
	}
	return true, "ok"
}

// ready reports whether the apiserver's last /readyz answered 200.
func (h *healthAgent) ready() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ok
}

func (h *healthAgent) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/healthz" {
		http.NotFound(rw, r)
		return
	}
	h.mu.Lock()
	ok, answer := h.ok, h.answer
	h.mu.Unlock()
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	if ok {
		_, _ = io.WriteString(rw, "ok")
		return
	}
	rw.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(rw, answer+"\n")
}
