package gce

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	gax "github.com/googleapis/gax-go/v2"
	"go.uber.org/zap"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

// group is a Compute API rate-quota group; each has its own limiter.
type group int

const (
	groupRead group = iota
	groupList
	groupMutate
	groupOpRead
)

// retryClass says whether and how long a failed call is worth repeating.
type retryClass int

const (
	// never: the call cannot succeed as made (a 4xx, a protocol mismatch,
	// an untrusted certificate, an unknown host, a malformed URL).
	never retryClass = iota
	// transient: 5xx, 429, rate limits, resourceNotReady, timeouts, resets.
	transient
	// refused: nothing listens at the endpoint. Retried with the full
	// budget once the endpoint has answered (a proxy restarting), only
	// briefly before (see refusedAttempts).
	refused
)

// refusedAttempts caps the attempts of a call refused by an endpoint that
// has never answered: three attempts span at most RetryInitial × 3 (1.5 s
// by default), enough for an emulator or proxy that is still starting, and
// far from the half minute a mistyped --endpoint used to cost.
const refusedAttempts = 3

// classify sorts a failed call: 5xx, 429, 403 rateLimitExceeded and 400
// resourceNotReady are transient; other API errors (400 invalid, 404, 409,
// 412, 403 permission, quota) are final. Transport errors are transient
// unless they show the endpoint is wrong: HTTP spoken to an HTTPS client,
// no TLS, an untrusted certificate, a host DNS does not know, a URL that
// does not parse.
func classify(err error) retryClass {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return never
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code >= 500, ge.Code == http.StatusTooManyRequests:
			return transient
		case ge.Code == http.StatusForbidden && (hasReason(ge, "rateLimitExceeded") || hasReason(ge, "userRateLimitExceeded")):
			return transient
		case ge.Code == http.StatusBadRequest && hasReason(ge, "resourceNotReady"):
			return transient
		}
		return never
	}
	if endpointProblem(err) != "" {
		return never
	}
	if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connection refused") {
		return refused
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return transient
	}
	msg := err.Error()
	if strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF") {
		return transient
	}
	return never
}

// retryable reports whether a failed call can succeed when repeated.
func retryable(err error) bool { return classify(err) != never }

// endpointProblem names what about the endpoint makes a transport error
// final, or returns "" when it may be passing.
func endpointProblem(err error) string {
	var (
		ue       *url.Error
		addr     *net.AddrError
		dns      *net.DNSError
		header   tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	msg := err.Error()
	switch {
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "answers plain HTTP, not HTTPS: write the endpoint with http://"
	case errors.As(err, &header):
		return "does not speak TLS: check the scheme and port of the endpoint"
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return "presents a TLS certificate this machine does not trust: check the endpoint's host, or add its CA to the system's trust store"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "is a host DNS does not know: check the endpoint's spelling"
	case errors.As(err, &ue) && ue.Op == "parse", errors.As(err, &addr), strings.Contains(msg, "unsupported protocol scheme"):
		return "is not a valid URL: write it as http(s)://host[:port]/compute/v1/"
	}
	return ""
}

func hasReason(ge *googleapi.Error, reason string) bool {
	for _, e := range ge.Errors {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

// IsNotFound reports a 404 (synchronous or inside an operation).
func IsNotFound(err error) bool { return code(err) == http.StatusNotFound }

// IsAlreadyExists reports a 409.
func IsAlreadyExists(err error) bool { return code(err) == http.StatusConflict }

// IsBadRequest reports a 400: GCE refused the request as made.
func IsBadRequest(err error) bool { return code(err) == http.StatusBadRequest }

// IsPrecondition reports a 412: a stale fingerprint.
func IsPrecondition(err error) bool { return code(err) == http.StatusPreconditionFailed }

// IsForbidden reports a 403 that is not rate limiting: no permission, or
// a project that does not exist (GCE does not tell them apart).
func IsForbidden(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusForbidden && !retryable(err)
}

func code(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

// opReasons maps operation error codes to the synchronous reasons, so
// callers handle both channels with one set of predicates.
var opReasons = map[string]string{
	"RESOURCE_NOT_FOUND":                  "notFound",
	"RESOURCE_ALREADY_EXISTS":             "alreadyExists",
	"RESOURCE_IN_USE_BY_ANOTHER_RESOURCE": "resourceInUseByAnotherResource",
	"RESOURCE_NOT_READY":                  "resourceNotReady",
	"CONDITION_NOT_MET":                   "conditionNotMet",
	"QUOTA_EXCEEDED":                      "quotaExceeded",
	"INVALID_FIELD_VALUE":                 "invalid",
	"RATE_LIMIT_EXCEEDED":                 "rateLimitExceeded",
}

// opError turns a DONE operation's error into a *googleapi.Error.
func opError(op *compute.Operation) error {
	if op.Error == nil || len(op.Error.Errors) == 0 {
		return nil
	}
	first := op.Error.Errors[0]
	ge := &googleapi.Error{Code: int(op.HttpErrorStatusCode), Message: first.Code + " - " + first.Message}
	if ge.Code == 0 {
		ge.Code = http.StatusInternalServerError
	}
	for _, e := range op.Error.Errors {
		reason := opReasons[e.Code]
		if reason == "" {
			reason = e.Code
		}
		ge.Errors = append(ge.Errors, googleapi.ErrorItem{Reason: reason, Message: e.Message})
	}
	return ge
}

// do runs one API call with the group's rate limit and classified retries.
// From the third attempt on it warns (a user waiting on a silent retry loop
// cannot tell it from a hang); a call that cannot succeed fails at once with
// what to check.
func (c *Cloud) do(ctx context.Context, g group, method string, call func(ctx context.Context) error) error {
	bo := gax.Backoff{Initial: c.opts.RetryInitial, Max: c.opts.RetryMax, Multiplier: 2}
	for attempt := 1; ; attempt++ {
		if err := c.limiters[g].Wait(ctx); err != nil {
			return err
		}
		c.stats.add(method)
		start := time.Now()
		err := call(ctx)
		if ce := c.log.Check(zap.DebugLevel, "call"); ce != nil {
			ce.Write(zap.String("method", method), zap.Int("attempt", attempt),
				zap.Duration("took", time.Since(start)), zap.Error(err))
		}
		var ge *googleapi.Error
		if err == nil || errors.As(err, &ge) {
			c.answered.Store(true) // an HTTP answer: the endpoint is right
		}
		if err == nil {
			return nil
		}
		class := classify(err)
		budget := c.opts.RetryAttempts
		if class == refused && !c.answered.Load() {
			budget = min(budget, refusedAttempts)
		}
		if class == never || attempt >= budget {
			return c.explain(err, attempt)
		}
		pause := bo.Pause()
		c.log.Debug("retrying", zap.String("method", method), zap.Int("attempt", attempt),
			zap.Duration("pause", pause), zap.Error(err))
		if attempt >= 2 {
			c.warnOnce(retryWarning(c.host(err), method, err, attempt+1, budget))
		}
		if err := sleep(ctx, pause); err != nil {
			return err
		}
	}
}

// warnRepeat is how long a warning is not repeated: calls made in parallel
// (observing a cluster reads eight things at once) fail alike, and one line
// says it for all of them.
const warnRepeat = 5 * time.Second

// warnOnce logs msg at warning level unless it was logged within warnRepeat.
func (c *Cloud) warnOnce(msg string) {
	now := time.Now()
	c.warnMu.Lock()
	for m, at := range c.warned {
		if now.Sub(at) >= warnRepeat {
			delete(c.warned, m)
		}
	}
	_, dup := c.warned[msg]
	if !dup {
		c.warned[msg] = now
	}
	c.warnMu.Unlock()
	if !dup {
		c.log.Warn(msg)
	}
}

// retryWarning says what is retried, against which host, and how far along.
func retryWarning(host, method string, err error, next, budget int) string {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return fmt.Sprintf("Compute API %s at %s failed: %v; retrying (attempt %d of %d)", method, host, err, next, budget)
	}
	return fmt.Sprintf("Compute API unreachable at %s: %v; retrying (attempt %d of %d)", host, transportCause(err), next, budget)
}

// explain wraps a final transport error with the endpoint and what to do;
// API errors pass unchanged (callers and predicates read them as they are).
func (c *Cloud) explain(err error, attempts int) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	host := c.host(err)
	const where = "check --endpoint (CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE)"
	if problem := endpointProblem(err); problem != "" {
		return fmt.Errorf("the Compute API endpoint %s %s; %s: %w", host, problem, where, err)
	}
	if classify(err) == refused {
		return fmt.Errorf("nothing accepts connections at %s (refused %d times): %s, or start the server it names (gce-emulator?): %w", host, attempts, where, err)
	}
	return fmt.Errorf("the Compute API at %s is unreachable after %d attempts: %w; check the network, or %s", host, attempts, err, where)
}

// host names the endpoint a call went to, for messages.
func (c *Cloud) host(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			return u.Host
		}
	}
	if u, perr := url.Parse(c.opts.Endpoint); perr == nil && u.Host != "" {
		return u.Host
	}
	if c.opts.Endpoint != "" {
		return c.opts.Endpoint
	}
	return "compute.googleapis.com"
}

// transportCause drops the request URL a *url.Error repeats (long, and the
// host is named already).
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// sleep pauses for d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// mutate runs one logical mutation: one requestId reused across transport
// retries (so GCE never applies it twice), then waits for the operation.
// An operation that fails with a retryable error is a new logical attempt
// with a new requestId: GCE would answer a reused id with the same failed
// operation. Failures of the calls themselves are not repeated here: do has
// spent their retry budget already.
func (c *Cloud) mutate(ctx context.Context, method string, call func(ctx context.Context, requestID string) (*compute.Operation, error)) error {
	return c.mutateNotify(ctx, method, call, nil)
}

// mutateNotify is mutate, calling accepted (when not nil) once GCE has
// first accepted the request, before its operation is waited on.
func (c *Cloud) mutateNotify(ctx context.Context, method string, call func(ctx context.Context, requestID string) (*compute.Operation, error), accepted func()) error {
	bo := gax.Backoff{Initial: c.opts.RetryInitial, Max: c.opts.RetryMax, Multiplier: 2}
	for attempt := 1; ; attempt++ {
		rid := uuid.NewString()
		var op *compute.Operation
		err := c.do(ctx, groupMutate, method, func(ctx context.Context) error {
			var err error
			op, err = call(ctx, rid)
			return err
		})
		if err != nil {
			return err
		}
		if accepted != nil {
			accepted()
			accepted = nil
		}
		if op, err = c.waitDone(ctx, op); err != nil {
			return err
		}
		err = opError(op)
		if err == nil || !retryable(err) || attempt >= c.opts.RetryAttempts || ctx.Err() != nil {
			return err
		}
		c.log.Debug("operation failed; retrying with a new requestId", zap.String("method", method),
			zap.Int("attempt", attempt), zap.Error(err))
		if err := sleep(ctx, bo.Pause()); err != nil {
			return err
		}
	}
}

// waitDone blocks until op is DONE using the operations' wait method (a
// long poll), looping because wait may return early, under OpTimeout. The
// caller reads the DONE operation's error (opError).
func (c *Cloud) waitDone(ctx context.Context, op *compute.Operation) (*compute.Operation, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	for op.Status != "DONE" {
		var next *compute.Operation
		err := c.do(ctx, groupOpRead, opMethod(op), func(ctx context.Context) error {
			cctx, ccancel := context.WithTimeout(ctx, c.opts.WaitCallTimeout)
			defer ccancel()
			var err error
			switch {
			case op.Zone != "":
				next, err = c.svc.ZoneOperations.Wait(c.project, lastSegment(op.Zone), op.Name).Context(cctx).Do()
			case op.Region != "":
				next, err = c.svc.RegionOperations.Wait(c.project, lastSegment(op.Region), op.Name).Context(cctx).Do()
			default:
				next, err = c.svc.GlobalOperations.Wait(c.project, op.Name).Context(cctx).Do()
			}
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				// Our per-call cap fired before the server's: ask again.
				next, err = op, nil
			}
			return err
		})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("operation %s on %s not done after %s: %w", op.OperationType, op.TargetLink, c.opts.OpTimeout, err)
			}
			return nil, fmt.Errorf("wait for operation %s: %w", op.Name, err)
		}
		op = next
	}
	return op, nil
}

func opMethod(op *compute.Operation) string {
	switch {
	case op.Zone != "":
		return "zoneOperations.wait"
	case op.Region != "":
		return "regionOperations.wait"
	}
	return "globalOperations.wait"
}

func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}
