package emulator

import "testing"

// The data plane scales its events as the latency model scales operations.
func TestLatencyFactor(t *testing.T) {
	for _, tt := range []struct {
		preset string
		scale  float64
		want   float64
	}{
		{LatencyRealistic, 1, 1},
		{LatencyRealistic, 0.1, 0.1},
		{LatencyFast, 1, 1.0 / fastDivisor},
		{LatencyFast, 0.1, 0.1 / fastDivisor},
		{LatencyNone, 1, 0},
	} {
		m := latencyModel{preset: tt.preset, scale: tt.scale}
		if got := m.factor(); got != tt.want {
			t.Errorf("factor(%s, %g) = %g, want %g", tt.preset, tt.scale, got, tt.want)
		}
	}
}
