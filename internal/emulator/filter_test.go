package emulator_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// labelled creates an address and applies labels with setLabels (insert
// ignores them, as on GCE).
func (e *env) labelled(t *testing.T, reg, name string, labels map[string]string) {
	t.Helper()
	a := e.address(t, reg, name)
	if labels != nil {
		e.do(t, e.svc.Addresses.SetLabels(proj, reg, name, &compute.RegionSetLabelsRequest{Labels: labels, LabelFingerprint: a.LabelFingerprint}))
	}
}

func filterEnv(t *testing.T) *env {
	e := newEnv(t, emulator.Options{})
	e.labelled(t, region, "web-1", map[string]string{"env": "prod", "tier": "web"})
	e.labelled(t, region, "web-2", map[string]string{"env": "dev", "tier": "web"})
	e.labelled(t, region, "db-1", map[string]string{"env": "prod"})
	e.labelled(t, region, "plain", nil)
	return e
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	e := filterEnv(t)
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		// AIP-160 style.
		{`name = "web-1"`, []string{"web-1"}},
		{`name = web-1`, []string{"web-1"}},
		{`name != web-1`, []string{"db-1", "plain", "web-2"}},
		{`labels.env = prod`, []string{"db-1", "web-1"}},
		{`labels.env:*`, []string{"db-1", "web-1", "web-2"}},
		{`NOT labels.env:*`, []string{"plain"}},
		{`(labels.env = prod) (labels.tier = web)`, []string{"web-1"}},
		{`labels.env = prod AND labels.tier = web`, []string{"web-1"}},
		{`name = db-1 OR name = plain`, []string{"db-1", "plain"}},
		{`(name = db-1) OR (name = web-2)`, []string{"db-1", "web-2"}},
		{`name = web-*`, []string{"web-1", "web-2"}},
		{`status = RESERVED`, []string{"db-1", "plain", "web-1", "web-2"}},
		{`region = "` + link("regions/us-central1") + `"`, []string{"db-1", "plain", "web-1", "web-2"}},
		{`labels.tier = db`, nil},
		// Legacy regex style: the literal must match the whole field.
		{`name eq 'web-.*'`, []string{"web-1", "web-2"}},
		{`name eq web`, nil},
		{`name eq "web-1|db-1"`, []string{"db-1", "web-1"}},
		{`name ne web-.*`, []string{"db-1", "plain"}},
		{`(name eq web-.*) (labels.env eq prod)`, []string{"web-1"}},
		{`labels.env eq prod`, []string{"db-1", "web-1"}},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			l, err := e.svc.Addresses.List(proj, region).Filter(tc.filter).Do()
			if err != nil {
				t.Fatal(err)
			}
			if got := itemNames(l.Items); !cmp.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGcloudRegionFilter uses the filter gcloud sends for
// `gcloud compute addresses list --regions europe-west1`.
func TestGcloudRegionFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.labelled(t, region, "here", nil)
	e.labelled(t, other, "there", nil)
	e.labelled(t, "europe-west2", "near", nil)
	agg, err := e.svc.Addresses.AggregatedList(proj).Filter(`region eq ".*\beurope\-west1\b.*"`).Do()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for sc, l := range agg.Items {
		if len(l.Addresses) > 0 {
			got[sc] = itemNames(l.Addresses)
		}
	}
	if d := cmp.Diff(map[string][]string{"regions/europe-west1": {"there"}}, got); d != "" {
		t.Errorf("aggregated with region filter (-want +got):\n%s", d)
	}
}

func TestBadFiltersAreRejected(t *testing.T) {
	t.Parallel()
	e := filterEnv(t)
	for _, f := range []string{
		`name =`,
		`(name = a`,
		`name = a)`,
		`= a`,
		`name`,
		`name eq '[unclosed'`,
		`name = "unterminated`,
		// The two syntaxes cannot be mixed.
		`(name eq web-.*) (status = RESERVED)`,
		`name eq a AND labels.env != prod`,
	} {
		t.Run(f, func(t *testing.T) {
			_, err := e.svc.Addresses.List(proj, region).Filter(f).Do()
			apiErr(t, err, 400, "invalid")
			_, err = e.svc.Addresses.AggregatedList(proj).Filter(f).Do()
			apiErr(t, err, 400, "invalid")
		})
	}
}

// TestInstanceLabelFilters: label filters on instances, as a user sweep
// sent them through the official client, match the labelled instance in
// both syntaxes, in a zone's list and in the aggregated one.
func TestInstanceLabelFilters(t *testing.T) {
	t.Parallel()
	e := newVMEnv(t, emulator.LatencyNone)
	probe := vmBasic("probe")
	probe.Labels = map[string]string{"env": "probe", "hakube-cluster": "ha"}
	e.insert(t, probe)
	other := vmBasic("other")
	other.Labels = map[string]string{"env": "prod"}
	e.insert(t, other)
	e.insert(t, vmBasic("plain"))
	// Labels set later with setLabels count the same.
	late := e.insert(t, vmBasic("late"))
	e.ok(t, e.svc.Instances.SetLabels(vmProj, vmZone, "late", &compute.InstancesSetLabelsRequest{
		Labels: map[string]string{"env": "probe"}, LabelFingerprint: late.LabelFingerprint}))
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`labels.env = "probe"`, []string{"late", "probe"}},
		{`labels.env=probe`, []string{"late", "probe"}},
		{`labels.env="probe"`, []string{"late", "probe"}},
		{`labels.env eq probe`, []string{"late", "probe"}},
		{`labels.env eq "probe"`, []string{"late", "probe"}},
		{`labels.env:*`, []string{"late", "other", "probe"}},
		{`labels.hakube-cluster = "ha"`, []string{"probe"}},
		{`(labels.env = probe) (name = probe)`, []string{"probe"}},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			l, err := e.svc.Instances.List(vmProj, vmZone).Filter(tc.filter).Do()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, in := range l.Items {
				got = append(got, in.Name)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("instances.list (-want +got):\n%s", d)
			}
			agg, err := e.svc.Instances.AggregatedList(vmProj).Filter(tc.filter).Do()
			if err != nil {
				t.Fatal(err)
			}
			got = nil
			for _, sc := range agg.Items {
				for _, in := range sc.Instances {
					got = append(got, in.Name)
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("instances.aggregatedList (-want +got):\n%s", d)
			}
		})
	}
}
