package cluster

import (
	"testing"
	"time"
)

func TestNodePollCap(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 2 * time.Second, 3: 2 * time.Second, 1999: 2 * time.Second, 2000: 4 * time.Second, 5000: 10 * time.Second} {
		if got := nodePollCap(n); got != want {
			t.Errorf("nodePollCap(%d) = %v, want %v", n, got, want)
		}
	}
}
