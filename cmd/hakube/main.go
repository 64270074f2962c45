// Command hakube creates, grows, shrinks and tears down highly available
// Kubernetes clusters on Google Compute Engine: master replicas in several
// zones of a region, a node pool per zone, and a load balancer in front of
// the masters. It replaces kube-up.sh and kube-down.sh for this job and
// honours their environment variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hakube/hakube/internal/cluster"
	"github.com/hakube/hakube/internal/cluster/config"
	"github.com/hakube/hakube/internal/gce"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// Exit codes: 0 ok, 1 failure, 2 degraded or invalid input.
const (
	exitOK       = 0
	exitFailure  = 1
	exitDegraded = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code; errors are shown
// once, here.
func run(ctx context.Context, args []string, s streams) int {
	root := newRootCmd(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return reportError(s.err, err)
}

func reportError(w io.Writer, err error) int {
	var degraded *degradedError
	switch {
	case errors.As(err, &degraded):
		fmt.Fprintf(w, "Degraded: %v\n", degraded.msg)
		return exitDegraded
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(w, "Interrupted: stopped cleanly. Re-run the same command to finish; it resumes where this run stopped.")
		return exitFailure
	case errors.Is(err, config.ErrInvalidConfig), errors.Is(err, cluster.ErrRefused), isUsageError(err), isLocked(err):
		fmt.Fprintf(w, "Error: %v\n", err)
		return exitDegraded
	}
	fmt.Fprintf(w, "Error: %v\n", err)
	return exitFailure
}

// degradedError is a run that worked but found the cluster not healthy.
type degradedError struct{ msg string }

func (e *degradedError) Error() string { return e.msg }

// usageError is a command-line mistake cobra or pflag caught.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// isLocked is a request refused because another run holds the lock.
func isLocked(err error) bool {
	var l *gce.LockedError
	return errors.As(err, &l)
}

func isUsageError(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}
