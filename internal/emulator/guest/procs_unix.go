//go:build unix

package guest

import (
	"errors"
	"syscall"
)

// killGroup signals the process group the component leads (Setpgid), so
// that nothing it started outlives it.
func killGroup(pid int, sig syscall.Signal) {
	if pid <= 0 {
		return
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}

// processesSupported: the Kubernetes guests can run here.
const processesSupported = true
