//go:build unix

package dataplane

import (
	"errors"
	"net"
	"syscall"
)

// canDrop reports whether listeners can drop SYNs (see drop.go).
func canDrop() bool { return true }

// setBacklog calls listen(2) again on a listening socket, which changes its
// accept queue's length.
func setBacklog(ln net.Listener, n int) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return errors.New("not a TCP listener")
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), n) }); err != nil {
		return err
	}
	return lerr
}
