package emulator_test

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// listEnv holds at least three items in every collection the pagination
// tests walk (zone operations excepted: nothing zonal is created here).
func listEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, emulator.Options{})
	for _, n := range []string{"net-a", "net-b"} {
		e.do(t, e.svc.Networks.Insert(proj, &compute.Network{Name: n, ForceSendFields: []string{"AutoCreateSubnetworks"}}))
	}
	e.do(t, e.svc.Subnetworks.Insert(proj, region, &compute.Subnetwork{Name: "sub-a", Network: "global/networks/net-a", IpCidrRange: "10.1.0.0/16"}))
	e.do(t, e.svc.Subnetworks.Insert(proj, region, &compute.Subnetwork{Name: "sub-b", Network: "global/networks/net-b", IpCidrRange: "10.2.0.0/16"}))
	e.do(t, e.svc.Routes.Insert(proj, &compute.Route{Name: "r", DestRange: "10.9.0.0/16", NextHopIp: "10.128.0.9", Priority: 100}))
	for i, reg := range []string{region, region, region, other} {
		n := fmt.Sprintf("x%d", i)
		e.do(t, e.svc.Addresses.Insert(proj, reg, &compute.Address{Name: n}))
		e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: n}))
		e.do(t, e.svc.TargetPools.Insert(proj, reg, &compute.TargetPool{Name: n}))
		e.do(t, e.svc.ForwardingRules.Insert(proj, reg, &compute.ForwardingRule{Name: n, Target: n}))
	}
	return e
}

// page is one decoded list page.
type page struct {
	names []string
	token string
	raw   map[string]any
}

func (e *env) page(t *testing.T, path string, q url.Values) page {
	t.Helper()
	full := path
	if len(q) > 0 {
		full += "?" + q.Encode()
	}
	code, body := e.raw(t, "GET", full, nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %v", full, code, body)
	}
	p := page{raw: body}
	p.token, _ = body["nextPageToken"].(string)
	if _, present := body["nextPageToken"]; present && p.token == "" {
		t.Errorf("GET %s: empty nextPageToken present", full)
	}
	switch items := body["items"].(type) {
	case []any:
		for _, it := range items {
			p.names = append(p.names, it.(map[string]any)["name"].(string))
		}
	case map[string]any: // aggregated: scope → {<coll>: [...]} or {warning}
		for sc, v := range items {
			for k, list := range v.(map[string]any) {
				if k == "warning" {
					continue
				}
				for _, it := range list.([]any) {
					p.names = append(p.names, sc+"/"+it.(map[string]any)["name"].(string))
				}
			}
		}
	}
	sort.Strings(p.names)
	return p
}

// walk follows nextPageToken with pages of size and returns every name.
func (e *env) walk(t *testing.T, path string, size int) ([]string, int) {
	t.Helper()
	var all []string
	token := ""
	for pages := 1; ; pages++ {
		q := url.Values{"maxResults": {fmt.Sprint(size)}}
		if token != "" {
			q.Set("pageToken", token)
		}
		p := e.page(t, path, q)
		if len(p.names) > size || (p.token != "" && len(p.names) != size) {
			t.Errorf("%s page %d: %d items with size %d (token %q)", path, pages, len(p.names), size, p.token)
		}
		all = append(all, p.names...)
		if p.token == "" {
			sort.Strings(all)
			return all, pages
		}
		if pages > 100 {
			t.Fatalf("%s: no last page", path)
		}
		token = p.token
	}
}

func TestEveryListPaginates(t *testing.T) {
	t.Parallel()
	e := listEnv(t)
	for _, path := range []string{
		"zones", "regions", "zones/us-central1-a/machineTypes", "zones/us-central1-a/diskTypes",
		"/compute/v1/projects/debian-cloud/global/images",
		"global/networks", "regions/us-central1/subnetworks", "global/firewalls", "global/routes",
		"regions/us-central1/addresses", "regions/us-central1/targetPools", "global/httpHealthChecks",
		"regions/us-central1/forwardingRules",
		"global/operations", "regions/us-central1/operations", "zones/us-central1-a/operations",
		"aggregated/addresses", "aggregated/subnetworks", "aggregated/targetPools", "aggregated/forwardingRules",
		"aggregated/operations",
	} {
		t.Run(path, func(t *testing.T) {
			// The default page is the maximum, 500.
			first := e.page(t, path, nil)
			whole, _ := e.walk(t, path, 500)
			if (len(whole) > 500) != (first.token != "") || len(first.names) != min(len(whole), 500) {
				t.Fatalf("default page: %d items, token %q, of %d", len(first.names), first.token, len(whole))
			}
			if path != "zones/us-central1-a/operations" && len(whole) < 3 {
				t.Fatalf("only %d items: the walk would prove nothing", len(whole))
			}
			size := 2
			if len(whole) > 100 {
				size = 23
			}
			got, pages := e.walk(t, path, size)
			if d := cmp.Diff(whole, got); d != "" {
				t.Errorf("pages of %d (-whole +walked):\n%s", size, d)
			}
			if want := (len(whole) + size - 1) / size; pages != max(want, 1) {
				t.Errorf("%d pages of %d for %d items", pages, size, len(whole))
			}
		})
	}
}

func TestMaxResultsBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	// Without maxResults a page holds 500 items, the maximum.
	if p := e.page(t, "aggregated/machineTypes", nil); len(p.names) != 500 || p.token == "" {
		t.Errorf("default page: %d items, token %q; want 500 and a token", len(p.names), p.token)
	}
	for _, path := range []string{"global/firewalls", "zones", "aggregated/addresses", "global/operations"} {
		for _, tc := range []struct {
			q    string
			code int
		}{
			{"maxResults=500", 200},
			{"maxResults=0", 200},
			{"maxResults=501", 400},
			{"maxResults=-1", 400},
			{"maxResults=ten", 400},
			{"pageToken=garbage!", 400},
		} {
			code, body := e.raw(t, "GET", path+"?"+tc.q, nil)
			if code != tc.code {
				t.Errorf("%s?%s: %d, want %d", path, tc.q, code, tc.code)
			}
			if code == 400 {
				item := body["error"].(map[string]any)["errors"].([]any)[0].(map[string]any)
				if item["reason"] != "invalid" {
					t.Errorf("%s?%s: reason %v", path, tc.q, item["reason"])
				}
			}
		}
	}
	_, err := e.svc.Zones.List(proj).MaxResults(501).Do()
	apiErr(t, err, 400, "invalid")
}

// TestOfficialClientPages: the generated Pages helper must terminate and see
// every item.
func TestOfficialClientPages(t *testing.T) {
	t.Parallel()
	e := listEnv(t)
	var fws []string
	pages := 0
	err := e.svc.Firewalls.List(proj).MaxResults(1).Pages(e.ctx, func(l *compute.FirewallList) error {
		pages++
		fws = append(fws, itemNames(l.Items)...)
		return nil
	})
	if err != nil || pages != 4 || len(fws) != 4 {
		t.Errorf("firewall pages: %v, %d pages, %v", err, pages, fws)
	}

	zones, err := e.svc.Zones.List(proj).Do()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = e.svc.Zones.List(proj).MaxResults(7).Pages(e.ctx, func(l *compute.ZoneList) error {
		n += len(l.Items)
		return nil
	})
	if err != nil || n != len(zones.Items) {
		t.Errorf("zone pages: %v, %d of %d", err, n, len(zones.Items))
	}

	var agg []string
	err = e.svc.ForwardingRules.AggregatedList(proj).MaxResults(3).Pages(e.ctx, func(l *compute.ForwardingRuleAggregatedList) error {
		for sc, sl := range l.Items {
			for _, fr := range sl.ForwardingRules {
				agg = append(agg, sc+"/"+fr.Name)
			}
		}
		return nil
	})
	sort.Strings(agg)
	want := []string{"regions/europe-west1/x3", "regions/us-central1/x0", "regions/us-central1/x1", "regions/us-central1/x2"}
	if err != nil || !cmp.Equal(agg, want) {
		t.Errorf("aggregated pages: %v %v", err, agg)
	}
}

func TestListShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	_, body := e.raw(t, "GET", "regions/us-east1/forwardingRules", nil)
	want := map[string]any{
		"kind":     "compute#forwardingRuleList",
		"id":       "projects/test-project/regions/us-east1/forwardingRules",
		"selfLink": link("regions/us-east1/forwardingRules"),
	}
	// An empty list has no items key at all.
	if d := cmp.Diff(want, body); d != "" {
		t.Errorf("empty list (-want +got):\n%s", d)
	}
	_, err := e.svc.Firewalls.List(proj).OrderBy("priority").Do()
	apiErr(t, err, 400, "invalid")
}

func TestListOrderBy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for _, n := range []string{"b", "c", "a"} {
		e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: n}))
		time.Sleep(2 * time.Millisecond) // creationTimestamp has millisecond precision
	}
	for order, want := range map[string][]string{
		"":                       {"a", "b", "c"},
		"name":                   {"a", "b", "c"},
		"creationTimestamp desc": {"a", "c", "b"},
	} {
		l, err := e.svc.HttpHealthChecks.List(proj).OrderBy(order).Do()
		if err != nil {
			t.Fatal(err)
		}
		if got := itemNames(l.Items); !cmp.Equal(got, want) {
			t.Errorf("orderBy %q: %v, want %v", order, got, want)
		}
	}
}

// TestAggregatedListShape: every scope is present; those with nothing on
// the page carry a NO_RESULTS_ON_PAGE warning; maxResults counts items
// across scopes.
func TestAggregatedListShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for _, a := range []struct{ reg, name string }{{region, "a"}, {region, "b"}, {other, "c"}} {
		e.do(t, e.svc.Addresses.Insert(proj, a.reg, &compute.Address{Name: a.name}))
	}
	regions, err := e.svc.Regions.List(proj).Do()
	if err != nil {
		t.Fatal(err)
	}
	p1 := e.page(t, "aggregated/addresses", url.Values{"maxResults": {"2"}})
	if p1.raw["kind"] != "compute#addressAggregatedList" || p1.raw["id"] != "projects/test-project/aggregated/addresses" ||
		p1.raw["selfLink"] != link("aggregated/addresses") {
		t.Errorf("header: kind %v id %v selfLink %v", p1.raw["kind"], p1.raw["id"], p1.raw["selfLink"])
	}
	items := p1.raw["items"].(map[string]any)
	if len(items) != len(regions.Items) {
		t.Errorf("%d scopes, want one per region (%d)", len(items), len(regions.Items))
	}
	if len(p1.names) != 2 || p1.token == "" {
		t.Fatalf("first page %v token %q, want 2 items and a token", p1.names, p1.token)
	}
	for sc, v := range items {
		entry := v.(map[string]any)
		if _, has := entry["addresses"]; has {
			continue
		}
		want := map[string]any{"warning": map[string]any{
			"code":    "NO_RESULTS_ON_PAGE",
			"message": "There are no results for scope '" + sc + "' on this page.",
			"data":    []any{map[string]any{"key": "scope", "value": sc}},
		}}
		if d := cmp.Diff(want, entry); d != "" {
			t.Errorf("scope %s (-want +got):\n%s", sc, d)
		}
	}
	if !strings.HasPrefix(strings.Join(p1.names, ","), "regions/") {
		t.Errorf("names %v", p1.names)
	}
	p2 := e.page(t, "aggregated/addresses", url.Values{"maxResults": {"2"}, "pageToken": {p1.token}})
	if len(p2.names) != 1 || p2.token != "" {
		t.Errorf("second page %v token %q, want the last item and no token", p2.names, p2.token)
	}
	all := append(append([]string{}, p1.names...), p2.names...)
	sort.Strings(all)
	if want := []string{"regions/europe-west1/c", "regions/us-central1/a", "regions/us-central1/b"}; !cmp.Equal(all, want) {
		t.Errorf("all pages %v", all)
	}
}
