package guest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
)

// TestMasterBootstrap: a master is up once every component runs and the
// apiserver is ready; a component that exits is its failure, in its own
// words, and stays the one reported until the master is up.
func TestMasterBootstrap(t *testing.T) {
	running := func(name string) ComponentStatus { return ComponentStatus{Name: name, State: "running"} }
	exited := func(name, state string) ComponentStatus {
		return ComponentStatus{Name: name, State: state, Restarts: 2, LastExit: "exit status 1", LastLine: "E0101 it broke"}
	}
	tests := []struct {
		name              string
		comps             []ComponentStatus
		ready             bool
		failing           string
		want, wantFailing string
		wantFinal         bool
	}{
		{name: "starting", comps: []ComponentStatus{running("etcd"), {Name: "kube-apiserver", State: "starting"}}},
		{name: "running, not ready", comps: []ComponentStatus{running("etcd"), running("kube-apiserver")}},
		{name: "ready, a component still starting", comps: []ComponentStatus{running("etcd"), {Name: "kube-scheduler", State: "starting"}}, ready: true},
		{name: "up", comps: []ComponentStatus{running("etcd"), running("kube-apiserver")}, ready: true, want: "ok", wantFinal: true},
		{name: "a component exits", comps: []ComponentStatus{running("etcd"), exited("kube-apiserver", "restarting"), exited("kube-scheduler", "restarting")},
			want: "failed at kube-apiserver: kube-apiserver exited (exit status 1, 2 restarts): E0101 it broke", wantFailing: "kube-apiserver"},
		{name: "the first to fail stays, running again between restarts", comps: []ComponentStatus{running("etcd"), exited("kube-apiserver", "running"),
			exited("kube-scheduler", "restarting")}, failing: "kube-apiserver",
			want: "failed at kube-apiserver: kube-apiserver exited (exit status 1, 2 restarts): E0101 it broke", wantFailing: "kube-apiserver"},
		{name: "recovered", comps: []ComponentStatus{running("etcd"), exited("kube-apiserver", "running")}, ready: true, failing: "kube-apiserver",
			want: "ok", wantFinal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, final, failing := masterBootstrap(tt.comps, tt.ready, tt.failing)
			if got != tt.want || final != tt.wantFinal || failing != tt.wantFailing {
				t.Errorf("masterBootstrap = %q, %v, %q; want %q, %v, %q", got, final, failing, tt.want, tt.wantFinal, tt.wantFailing)
			}
		})
	}
}

// TestReporter: each value is written once, nothing after a final one,
// a refused write warns once on the console, and a boot that is over
// writes nothing.
func TestReporter(t *testing.T) {
	var written []string
	refuse := false
	h := &Host{log: zap.NewNop(), opts: Options{GuestAttribute: func(_ context.Context, link string, id uint64, ns, key, value string) error {
		if link != "link" || id != 7 || ns != "hakube" || key != "bootstrap" {
			t.Errorf("write of %s/%s to %s (%d)", ns, key, link, id)
		}
		if refuse {
			return errors.New("guest attributes are disabled")
		}
		written = append(written, value)
		return nil
	}}}
	m := &Machine{h: h, link: "link", id: 7, name: "vm", console: NewConsole(0)}
	ctx, cancel := context.WithCancel(context.Background())
	b := &boot{m: m, ctx: ctx}
	b.report = &reporter{b: b}

	b.step("metadata")
	b.step("metadata")
	b.step("etcd")
	b.report.set("failed at etcd: etcd exited", false)
	b.bootstrapped()
	b.failedAt("etcd", strings.Repeat("x", 300))
	b.step("etcd")
	if want := []string{"running metadata", "running etcd", "failed at etcd: etcd exited", "ok"}; !cmp.Equal(written, want) {
		t.Errorf("written %q, want %q", written, want)
	}

	b = &boot{m: m, ctx: ctx}
	b.report = &reporter{b: b}
	refuse = true
	b.step("metadata")
	b.step("certs")
	refuse = false
	b.failedAt("certs", strings.Repeat("x", 300))
	if got := written[len(written)-1]; got != "failed at certs: "+strings.Repeat("x", 200) {
		t.Errorf("a long reason written as %q", got)
	}
	out, _, _ := m.console.Read(0)
	if n := strings.Count(string(out), "hakube-guest: warning: cannot set guest attribute hakube/bootstrap: guest attributes are disabled\n"); n != 1 {
		t.Errorf("%d warnings on the console:\n%s", n, out)
	}

	n := len(written)
	b = &boot{m: m, ctx: ctx}
	b.report = &reporter{b: b}
	cancel()
	b.step("metadata")
	if len(written) != n {
		t.Errorf("a boot that is over wrote %q", written[n:])
	}
}
