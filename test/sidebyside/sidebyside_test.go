package main

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChainsAreOrdered(t *testing.T) {
	for name, c := range chains {
		if err := c.check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := (chain{{id: "b", after: []string{"a"}}, {id: "a"}}).check(); err == nil {
		t.Error("a chain listing an op before what it follows passed the check")
	}
}

func TestFloor(t *testing.T) {
	// Fixed-duration kinds (the emulator's setLabels are DONE at once, 0 s)
	// are not useful here; use ranges and check against their means.
	// addresses.insert: 2–5 s (mean 3.5); instances.insert 15–35 (25);
	// firewalls.insert 4–10 (7) beside them.
	c := chain{
		{id: "address", kind: "compute.addresses.insert"},
		{id: "vm", kind: "compute.instances.insert", after: []string{"address"}},
		{id: "firewall", kind: "compute.firewalls.insert"},
	}
	got, path := c.floor(20000, rand.New(rand.NewPCG(1, 2)))
	if math.Abs(got-28.5) > 0.3 {
		t.Errorf("floor = %.2f s, want about 28.5 (3.5 + 25)", got)
	}
	if diff := cmp.Diff("address → vm", path); diff != "" {
		t.Errorf("longest path (-want +got):\n%s", diff)
	}
}

// A group's three VMs made at once end with the slowest: the mean of the
// largest of three uniform draws on 15–35 s is 15 + 20·3/4 = 30 s.
func TestFloorOfParallelOperations(t *testing.T) {
	c := chain{{id: "vms", kind: "compute.instances.insert", n: 3}}
	if got, _ := c.floor(20000, rand.New(rand.NewPCG(1, 2))); math.Abs(got-30) > 0.3 {
		t.Errorf("floor = %.2f s, want about 30", got)
	}
}

// Each VM boots after its own insert: the group ends with the largest of
// three sums of an insert (15–35 s) and a boot (10–25 s), not with the
// slowest insert plus the slowest boot. The sum's distribution is a
// trapezoid on 25–60 s; E[max of 3] = 25 + ∫(1 − F³).
func TestFloorOfVMsThatBoot(t *testing.T) {
	cdf := func(x float64) float64 { // of U(0,20) + U(0,15)
		switch {
		case x <= 15:
			return x * x / 600
		case x <= 20:
			return (x - 7.5) / 20
		default:
			return 1 - (35-x)*(35-x)/600
		}
	}
	want, dx := 25.0, 0.001
	for x := dx / 2; x < 35; x += dx {
		f := cdf(x)
		want += (1 - f*f*f) * dx
	}
	c := chain{{id: "vms", kind: "compute.instances.insert", n: 3, then: "boot"}}
	if got, _ := c.floor(50000, rand.New(rand.NewPCG(1, 2))); math.Abs(got-want) > 0.3 {
		t.Errorf("floor = %.2f s, want about %.2f", got, want)
	}
	slowest := chain{{id: "vms", kind: "compute.instances.insert", n: 3}, {id: "boots", kind: "boot", n: 3, after: []string{"vms"}}}
	if got, _ := slowest.floor(50000, rand.New(rand.NewPCG(1, 2))); got < want+2 {
		t.Errorf("the slowest insert then the slowest boot = %.2f s, want well above %.2f", got, want)
	}
}

func TestTablesJoinRepetitions(t *testing.T) {
	ms := func(walls ...float64) []measured {
		var out []measured
		for _, w := range walls {
			out = append(out, measured{wall: time.Duration(w * float64(time.Second)), requests: 10, mutations: 2, ops: 1, invocations: 4, cpu: 2 * time.Second})
		}
		return out
	}
	r := row{flow: flow{name: "node pool"}, m: [2][]measured{ms(40, 60), ms(20, 30)}, floor: 25}
	var b strings.Builder
	printTables(&b, options{latency: "realistic", timeScale: 1}, []row{r})
	got := b.String()
	for _, want := range []string{"|40.0 / 60.0 |20.0 / 30.0 |2.00× |25.0 ", "|1.00 ", "|10/2/1 / 10/2/1 ", "|4 ", "|0.50 s "} {
		if !strings.Contains(got, want) {
			t.Errorf("tables lack %q:\n%s", want, got)
		}
	}
}
