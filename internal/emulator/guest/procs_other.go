//go:build !unix

package guest

import "syscall"

// The real processes need a Unix system: elsewhere a component cannot be
// given a process group, and the Kubernetes guests refuse to start
// (Host.Check).

func procAttr() *syscall.SysProcAttr { return nil }

func killGroup(pid int, sig syscall.Signal) {}

const processesSupported = false
