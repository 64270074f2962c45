package gce

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// The cluster lock lives in GCE itself, as labels on the cluster's static
// IP address, written with the label fingerprint so that of two concurrent
// runs exactly one wins. It refuses a second mutating run, names the holder
// and since when, and can be broken explicitly when a run died holding it.
const (
	LabelLockHolder = "hakube-lock-holder"
	LabelLockOp     = "hakube-lock-op"
	LabelLockSince  = "hakube-lock-since"
)

// LockInfo describes a lock holder.
type LockInfo struct {
	Holder    string
	Operation string
	Since     time.Time
}

// LockedError is returned when another run holds the lock.
type LockedError struct {
	Address string
	Info    LockInfo
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("cluster is locked by %s (running %q since %s, %s ago); if that run is gone, re-run with --break-lock",
		e.Info.Holder, e.Info.Operation, e.Info.Since.UTC().Format(time.RFC3339), time.Since(e.Info.Since).Round(time.Second))
}

// DefaultHolder names this process: user, host and pid, in label syntax.
func DefaultHolder() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return LabelValue(fmt.Sprintf("%s-%s-%d", name, host, os.Getpid()))
}

// LabelValue coerces s into a valid label value.
func LabelValue(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > 63 {
		out = out[:63]
	}
	return out
}

// Lock is a held cluster lock.
type Lock struct {
	c       *Cloud
	region  string
	address string
	holder  string
}

// AcquireLock takes the lock on the address. With force it takes over a
// lock someone else holds (a stale one).
func (c *Cloud) AcquireLock(ctx context.Context, region, address string, info LockInfo, force bool) (*Lock, error) {
	for attempt := 0; attempt < 5; attempt++ {
		a, err := c.GetAddress(ctx, region, address)
		if err != nil {
			return nil, fmt.Errorf("read lock on address %s: %w", address, err)
		}
		if held := lockInfo(a.Labels); held.Holder != "" && held.Holder != info.Holder && !force {
			return nil, &LockedError{Address: address, Info: held}
		}
		labels := map[string]string{}
		for k, v := range a.Labels {
			labels[k] = v
		}
		labels[LabelLockHolder] = LabelValue(info.Holder)
		labels[LabelLockOp] = LabelValue(info.Operation)
		labels[LabelLockSince] = strconv.FormatInt(info.Since.Unix(), 10)
		err = c.SetAddressLabels(ctx, region, address, labels, a.LabelFingerprint)
		if IsPrecondition(err) {
			continue // someone changed the labels since we read them: look again
		}
		if err != nil {
			return nil, fmt.Errorf("take lock on address %s: %w", address, err)
		}
		return &Lock{c: c, region: region, address: address, holder: LabelValue(info.Holder)}, nil
	}
	return nil, fmt.Errorf("take lock on address %s: labels keep changing under us; another run is racing for the lock", address)
}

func lockInfo(labels map[string]string) LockInfo {
	info := LockInfo{Holder: labels[LabelLockHolder], Operation: labels[LabelLockOp]}
	if n, err := strconv.ParseInt(labels[LabelLockSince], 10, 64); err == nil {
		info.Since = time.Unix(n, 0)
	}
	return info
}

// LockHolder reports who holds the lock on the address, if anyone.
func (c *Cloud) LockHolder(ctx context.Context, region, address string) (LockInfo, error) {
	a, err := c.GetAddress(ctx, region, address)
	if err != nil {
		return LockInfo{}, err
	}
	return lockInfo(a.Labels), nil
}

// Release drops the lock if this run still holds it. A deleted address
// (the cluster was torn down) releases it too.
func (l *Lock) Release(ctx context.Context) error {
	for attempt := 0; attempt < 5; attempt++ {
		a, err := l.c.GetAddress(ctx, l.region, l.address)
		if IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release lock on address %s: %w", l.address, err)
		}
		if a.Labels[LabelLockHolder] != l.holder {
			return nil
		}
		labels := map[string]string{}
		for k, v := range a.Labels {
			if k != LabelLockHolder && k != LabelLockOp && k != LabelLockSince {
				labels[k] = v
			}
		}
		err = l.c.SetAddressLabels(ctx, l.region, l.address, labels, a.LabelFingerprint)
		if IsPrecondition(err) {
			continue
		}
		if IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release lock on address %s: %w", l.address, err)
		}
		return nil
	}
	return fmt.Errorf("release lock on address %s: labels keep changing", l.address)
}
