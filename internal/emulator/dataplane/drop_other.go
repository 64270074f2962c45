//go:build !unix

package dataplane

import (
	"errors"
	"net"
)

// canDrop is false where listen(2) cannot be called again: a rule that is
// not forwarding yet refuses connections there instead of dropping them.
func canDrop() bool { return false }

func setBacklog(net.Listener, int) error { return errors.ErrUnsupported }
