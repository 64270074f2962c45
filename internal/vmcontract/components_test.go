package vmcontract

import (
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRehearsalDiffersOnlyWhereDocumented compares a real master's command
// lines with the rehearsal's (docs/vm-contract.md, "The rehearsal's VMs
// share one machine"): what stands for 127.0.0.1 and 0.0.0.0 is the VM's
// internal IP, the apiserver reconciles no endpoints, and etcd does not
// match peers' certificates to their source address. Nothing else may
// differ.
func TestRehearsalDiffersOnlyWhereDocumented(t *testing.T) {
	env := NewKubeEnv()
	env.Set(EnvKubernetesMaster, "true")
	env.Set(EnvClusterName, "kubernetes")
	env.Set(EnvAPIServerPort, "6443")
	env.Set(EnvEtcdInitialCluster, "m=https://10.0.0.5:2380")
	env.Set(EnvControllerManagerTest, "--node-monitor-period=1s")
	real := Master{Env: env, Host: RealHost("m", "10.0.0.5")}
	// Placeholders where the rehearsal puts the internal IP, so that the
	// comparison sees which address stands for which.
	host := real.Host
	host.Loopback, host.Listen, host.LoopbackNetwork = "LOOPBACK", "LISTEN", true
	rehearsal := Master{Env: env, Host: host}
	a, err := real.Components()
	if err != nil {
		t.Fatal(err)
	}
	b, err := rehearsal.Components()
	if err != nil {
		t.Fatal(err)
	}
	onlyRehearsal := []string{"--endpoint-reconciler-type=none", "--peer-skip-client-san-verification=true"}
	onlyReal := []string{"--endpoint-reconciler-type=lease"}
	for i := range a {
		var ra, rb []string
		for _, arg := range a[i].Args {
			if !slices.Contains(onlyReal, arg) {
				ra = append(ra, listenRE.ReplaceAllString(loopbackRE.ReplaceAllString(arg, "LOOPBACK"), "LISTEN"))
			}
		}
		for _, arg := range b[i].Args {
			if !slices.Contains(onlyRehearsal, arg) {
				rb = append(rb, arg)
			}
		}
		if diff := cmp.Diff(ra, rb); diff != "" {
			t.Errorf("%s: real (-) and rehearsal (+) differ beyond the documented flags:\n%s", a[i].Name, diff)
		}
	}
	for _, want := range []struct{ comp, flag string }{{"etcd", onlyRehearsal[1]}, {"kube-apiserver", onlyRehearsal[0]}} {
		if !hasArg(b, want.comp, want.flag) || hasArg(a, want.comp, want.flag) {
			t.Errorf("%s %s: only the rehearsal's should have it", want.comp, want.flag)
		}
	}
}

var (
	loopbackRE = regexp.MustCompile(`\b127\.0\.0\.1\b`)
	listenRE   = regexp.MustCompile(`\b0\.0\.0\.0\b`)
)

func hasArg(comps []Component, name, flag string) bool {
	for _, c := range comps {
		if c.Name == name && slices.Contains(c.Args, flag) {
			return true
		}
	}
	return false
}
