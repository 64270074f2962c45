package gce

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// The cluster lock lives in GCE itself, as labels on the cluster's static
// IP address, written with the label fingerprint so that of two concurrent
// runs exactly one wins. It refuses a second mutating run, names the holder
// and since when, and can be broken explicitly when a run died holding it.
//
// The holder is an identity (user and host) plus the process id: a run on
// the same machine as a dead holder can tell that the holder is gone and
// take the lock over, while a holder elsewhere can only be broken by hand.
const (
	LabelLockHolder = "hakube-lock-holder"
	LabelLockPID    = "hakube-lock-pid"
	LabelLockOp     = "hakube-lock-op"
	LabelLockSince  = "hakube-lock-since"
)

// LockInfo describes a lock holder.
type LockInfo struct {
	Holder    string    `json:"holder"` // user and host, in label syntax
	PID       int       `json:"pid,omitempty"`
	Operation string    `json:"operation"`
	Since     time.Time `json:"since"`
}

// Held reports whether anyone holds the lock.
func (i LockInfo) Held() bool { return i.Holder != "" }

func (i LockInfo) same(o LockInfo) bool {
	return i.Holder == o.Holder && i.PID == o.PID && i.Since.Equal(o.Since)
}

func (i LockInfo) String() string {
	if i.PID > 0 {
		return fmt.Sprintf("%s (pid %d, running %q since %s)", i.Holder, i.PID, i.Operation, i.Since.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s (running %q since %s)", i.Holder, i.Operation, i.Since.UTC().Format(time.RFC3339))
}

// LockedError is returned when another run holds the lock.
type LockedError struct {
	Address string
	Info    LockInfo
	// Alive is true when the holder is a process on this machine that still
	// runs; then breaking the lock would race a live run.
	Alive bool
}

func (e *LockedError) Error() string {
	ago := time.Since(e.Info.Since).Round(time.Second)
	if e.Alive {
		return fmt.Sprintf("cluster is locked by %s, %s ago, and that process still runs on this machine; wait for it to finish", e.Info, ago)
	}
	return fmt.Sprintf("cluster is locked by %s, %s ago; if that run is gone, re-run with --break-lock", e.Info, ago)
}

// DefaultHolder names this user on this host, in label syntax.
func DefaultHolder() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return LabelValue(name + "-" + host)
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

// ProcessAlive reports whether a process with the pid runs on this machine.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// LockRequest is what a run asks of the lock.
type LockRequest struct {
	Info LockInfo // this run: Holder, PID, Operation, Since
	// Break is the lock the user asked to break (--break-lock), as the run
	// observed it before planning: only that exact holder is displaced, so of
	// two runs breaking the same stale lock, one wins and the other is
	// refused by the winner's lock.
	Break *LockInfo
	// Alive tells whether a pid of this machine still runs (nil: ProcessAlive).
	Alive func(pid int) bool
	// Seen is the address as the run just read it (nil: read it). The first
	// attempt writes the lock against its label fingerprint, which GCE
	// refuses if the labels changed since; a lock it shows held is read
	// again before the run is refused.
	Seen *compute.Address
}

// Gone reports whether the holder is a process of this run's identity (same
// user and host) that no longer runs: its lock can be taken over safely.
func (r LockRequest) Gone(held LockInfo) bool {
	return held.Held() && held.Holder == LabelValue(r.Info.Holder) && held.PID > 0 && held.PID != r.Info.PID && !r.alive(held.PID)
}

func (r LockRequest) alive(pid int) bool {
	if r.Alive != nil {
		return r.Alive(pid)
	}
	return ProcessAlive(pid)
}

// Lock is a held cluster lock.
type Lock struct {
	c       *Cloud
	address Key
	holder  string
	pid     int
	// Replaced is the earlier holder this run took the lock from: a dead
	// process of the same identity, or the one --break-lock broke.
	Replaced *LockInfo
}

// AcquireLock takes the lock on the address: when free, when this process
// holds it, when its holder is a dead process of the same identity, or when
// it is exactly the lock the request breaks.
func (c *Cloud) AcquireLock(ctx context.Context, address Key, req LockRequest) (*Lock, error) {
	holder := LabelValue(req.Info.Holder)
	seen := req.Seen
	for attempt := 0; attempt < 5; attempt++ {
		a := seen
		if a == nil {
			var err error
			if a, err = c.GetAddress(ctx, address); err != nil {
				return nil, fmt.Errorf("read lock on address %s: %w", address, err)
			}
		}
		fresh := seen == nil
		seen = nil
		held := LockInfoOf(a.Labels)
		var replaced *LockInfo
		switch {
		case !held.Held(), held.Holder == holder && held.PID == req.Info.PID:
		case req.Gone(held), req.Break != nil && held.same(*req.Break):
			replaced = &held
		case !fresh:
			continue // the holder may have released it since: look again
		default:
			return nil, &LockedError{Address: address.Name, Info: held, Alive: held.Holder == holder && req.alive(held.PID)}
		}
		labels := map[string]string{}
		for k, v := range a.Labels {
			labels[k] = v
		}
		labels[LabelLockHolder] = holder
		labels[LabelLockPID] = strconv.Itoa(req.Info.PID)
		labels[LabelLockOp] = LabelValue(req.Info.Operation)
		labels[LabelLockSince] = strconv.FormatInt(req.Info.Since.Unix(), 10)
		err := c.SetAddressLabels(ctx, address, labels, a.LabelFingerprint)
		if IsPrecondition(err) {
			continue // someone changed the labels since we read them: look again
		}
		if err != nil {
			return nil, fmt.Errorf("take lock on address %s: %w", address, err)
		}
		return &Lock{c: c, address: address, holder: holder, pid: req.Info.PID, Replaced: replaced}, nil
	}
	return nil, fmt.Errorf("take lock on address %s: labels keep changing under us; another run is racing for the lock", address)
}

// LockInfoOf reads the lock labels of an address.
func LockInfoOf(labels map[string]string) LockInfo {
	info := LockInfo{Holder: labels[LabelLockHolder], Operation: labels[LabelLockOp]}
	if n, err := strconv.Atoi(labels[LabelLockPID]); err == nil {
		info.PID = n
	}
	if n, err := strconv.ParseInt(labels[LabelLockSince], 10, 64); err == nil {
		info.Since = time.Unix(n, 0)
	}
	return info
}

// Release drops the lock if this run still holds it. A deleted address
// (the cluster was torn down) releases it too.
func (l *Lock) Release(ctx context.Context) error {
	return l.ReleaseSeen(ctx, nil)
}

// ReleaseSeen is Release starting from the address as read since the lock
// was taken (nil: read it): its label fingerprint guards the write, and a
// stale one means one more read.
func (l *Lock) ReleaseSeen(ctx context.Context, seen *compute.Address) error {
	return l.c.clearLock(ctx, l.address, seen, l.Holds)
}

// Holds reports whether held is this lock.
func (l *Lock) Holds(held LockInfo) bool { return held.Holder == l.holder && held.PID == l.pid }

// ClearStaleLock removes a lock whose holder is gone, exactly that holder's:
// a run that finds nothing to do still leaves the cluster unlocked.
func (c *Cloud) ClearStaleLock(ctx context.Context, address Key, stale LockInfo) error {
	return c.clearLock(ctx, address, nil, func(held LockInfo) bool { return held.same(stale) })
}

// clearLock removes the lock labels while mine says the holder is the one
// to remove, re-reading after a concurrent change.
func (c *Cloud) clearLock(ctx context.Context, address Key, seen *compute.Address, mine func(LockInfo) bool) error {
	for attempt := 0; attempt < 5; attempt++ {
		a := seen
		seen = nil
		if a == nil {
			var err error
			a, err = c.GetAddress(ctx, address)
			if IsNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("release lock on address %s: %w", address, err)
			}
		}
		if !mine(LockInfoOf(a.Labels)) {
			return nil
		}
		labels := map[string]string{}
		for k, v := range a.Labels {
			switch k {
			case LabelLockHolder, LabelLockPID, LabelLockOp, LabelLockSince:
			default:
				labels[k] = v
			}
		}
		err := c.SetAddressLabels(ctx, address, labels, a.LabelFingerprint)
		if IsPrecondition(err) {
			continue
		}
		if IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release lock on address %s: %w", address, err)
		}
		return nil
	}
	return fmt.Errorf("release lock on address %s: labels keep changing", address)
}
