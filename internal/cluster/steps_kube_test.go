package cluster

import (
	"testing"
	"time"
)

func TestIsVMOf(t *testing.T) {
	for _, tc := range []struct {
		name, group string
		want        bool
	}{
		{"kubernetes-minion-group-72v8", "kubernetes-minion-group", true},
		{"kubernetes-minion-group-1-72v8", "kubernetes-minion-group-1", true},
		// A VM of group -1 is not one of the unsuffixed group's, nor the
		// other way round.
		{"kubernetes-minion-group-1-72v8", "kubernetes-minion-group", false},
		{"kubernetes-minion-group-72v8", "kubernetes-minion-group-1", false},
		{"kubernetes-minion-group-", "kubernetes-minion-group", false},
		{"kubernetes-minion-group", "kubernetes-minion-group", false},
		{"kubernetes-master", "kubernetes-minion-group", false},
	} {
		if got := isVMOf(tc.name, tc.group); got != tc.want {
			t.Errorf("isVMOf(%q, %q) = %v, want %v", tc.name, tc.group, got, tc.want)
		}
	}
}

func TestNodePollCap(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 2 * time.Second, 3: 2 * time.Second, 1999: 2 * time.Second, 2000: 4 * time.Second, 5000: 10 * time.Second} {
		if got := nodePollCap(n); got != want {
			t.Errorf("nodePollCap(%d) = %v, want %v", n, got, want)
		}
	}
}
