package gce

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
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

// retryable reports whether a failed call can succeed when repeated:
// transport errors, 5xx, 429, 403 rateLimitExceeded and 400
// resourceNotReady. Everything else (400 invalid, 404, 409, 412, 403
// permission, quota) fails at once.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch {
		case ge.Code >= 500, ge.Code == http.StatusTooManyRequests:
			return true
		case ge.Code == http.StatusForbidden:
			return hasReason(ge, "rateLimitExceeded") || hasReason(ge, "userRateLimitExceeded")
		case ge.Code == http.StatusBadRequest:
			return hasReason(ge, "resourceNotReady")
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "EOF")
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

// IsPrecondition reports a 412: a stale fingerprint.
func IsPrecondition(err error) bool { return code(err) == http.StatusPreconditionFailed }

// IsForbidden reports a 403 that is not rate limiting: no permission, or
// a project that does not exist (GCE does not tell them apart).
func IsForbidden(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == http.StatusForbidden && !retryable(err)
}

// IsInUse reports "resource in use by another resource".
func IsInUse(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && hasReason(ge, "resourceInUseByAnotherResource")
}

// IsQuota reports a resource quota failure.
func IsQuota(err error) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && hasReason(ge, "quotaExceeded")
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
func (c *Cloud) do(ctx context.Context, g group, method string, call func(ctx context.Context) error) error {
	bo := gax.Backoff{Initial: c.opts.RetryInitial, Max: c.opts.RetryMax, Multiplier: 2}
	for attempt := 1; ; attempt++ {
		if err := c.limiters[g].Wait(ctx); err != nil {
			return err
		}
		c.stats.add(method)
		err := call(ctx)
		if err == nil {
			return nil
		}
		if !retryable(err) || attempt >= c.opts.RetryAttempts {
			return err
		}
		pause := bo.Pause()
		c.log.Debug("retrying", zap.String("method", method), zap.Int("attempt", attempt),
			zap.Duration("pause", pause), zap.Error(err))
		if err := sleep(ctx, pause); err != nil {
			return err
		}
	}
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
// operation.
func (c *Cloud) mutate(ctx context.Context, method string, call func(ctx context.Context, requestID string) (*compute.Operation, error)) error {
	bo := gax.Backoff{Initial: c.opts.RetryInitial, Max: c.opts.RetryMax, Multiplier: 2}
	for attempt := 1; ; attempt++ {
		rid := uuid.NewString()
		var op *compute.Operation
		err := c.do(ctx, groupMutate, method, func(ctx context.Context) error {
			var err error
			op, err = call(ctx, rid)
			return err
		})
		if err == nil {
			err = c.wait(ctx, op)
		}
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

// wait blocks until op is DONE using the operations' wait method (a long
// poll), looping because wait may return early, under OpTimeout.
func (c *Cloud) wait(ctx context.Context, op *compute.Operation) error {
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
				return fmt.Errorf("operation %s on %s not done after %s: %w", op.OperationType, op.TargetLink, c.opts.OpTimeout, err)
			}
			return fmt.Errorf("wait for operation %s: %w", op.Name, err)
		}
		op = next
	}
	return opError(op)
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

// LastSegment returns the name at the end of a resource URL.
func LastSegment(s string) string { return lastSegment(s) }
