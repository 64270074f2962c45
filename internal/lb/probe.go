package lb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Prober checks that the API answers on an IP: a real TLS handshake
// verified against the cluster CA, then GET /healthz. It is how hakube knows
// the static IP serves again after a move.
type Prober struct {
	CA      []byte // PEM; nil skips verification (never for real clusters)
	Port    int
	Timeout time.Duration // one attempt
	// ServerName is the name verified in the certificate (default: the IP
	// dialled). Probing a replica on its own IP sets it to the static IP,
	// which is what its certificate is for.
	ServerName string
}

// Probe makes one attempt.
func (p *Prober) Probe(ctx context.Context, ip string) error {
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	name := p.ServerName
	if name == "" {
		name = ip
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: name}
	if p.CA != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(p.CA) {
			return errors.New("cluster CA is not valid PEM")
		}
		cfg.RootCAs = pool
	} else {
		cfg.InsecureSkipVerify = true
	}
	tr := &http.Transport{
		TLSClientConfig:   cfg,
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}
	url := "https://" + net.JoinHostPort(ip, strconv.Itoa(p.Port)) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// WaitServing probes until the IP serves or the deadline passes, reporting
// elapsed time against the deadline through progress. It returns how long
// it waited.
func (p *Prober) WaitServing(ctx context.Context, ip string, deadline time.Duration, progress func(elapsed time.Duration)) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	interval := 100 * time.Millisecond
	lastReport := start
	for {
		err := p.Probe(ctx, ip)
		if err == nil {
			return time.Since(start), nil
		}
		if progress != nil && time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			progress(time.Since(start))
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return time.Since(start), fmt.Errorf("%s:%d not serving after %s (last error: %v)", ip, p.Port, deadline, err)
			}
			return time.Since(start), ctx.Err()
		case <-time.After(interval):
		}
	}
}
