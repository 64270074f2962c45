package kubelet

import (
	"testing"
	"time"
)

func TestRenewIntervalStretchesWithTheFleet(t *testing.T) {
	x := NewExtra(Config{})
	for _, tt := range []struct {
		running int
		want    time.Duration
	}{{1, 10 * time.Second}, {1000, 10 * time.Second}, {2500, 25 * time.Second}, {5000, 50 * time.Second}} {
		x.running = tt.running
		if got := x.renewInterval(10 * time.Second); got != tt.want {
			t.Errorf("%d kubelets at the default %v/s: renew every %v, want %v", tt.running, DefaultMaxRenewRate, got, tt.want)
		}
	}
	k := &kubelet{set: &settings{leaseDuration: 40 * time.Second}, renew: func() time.Duration { return 50 * time.Second }}
	if d := k.leaseDuration(); d != 200*time.Second {
		t.Errorf("a 50 s renew interval holds the lease %v, want four intervals", d)
	}
	unlimited := NewExtra(Config{MaxRenewRate: -1})
	unlimited.running = 5000
	if got := unlimited.renewInterval(10 * time.Second); got != 10*time.Second {
		t.Errorf("no cap: %v", got)
	}
}
