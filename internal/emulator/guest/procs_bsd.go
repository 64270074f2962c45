//go:build unix && !linux

package guest

import "syscall"

// procAttr puts each component in a process group of its own, which a
// shutdown signals as a whole. Without Linux's death signal, processes of
// an emulator that dies without cleaning up are left running.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
