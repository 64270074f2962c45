package emulator_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

func TestHTTPHealthCheckDefaultsAndShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	op := e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "hc"}))
	if op.OperationType != "insert" || op.Region != "" || op.Zone != "" || op.TargetLink != link("global/httpHealthChecks/hc") {
		t.Errorf("insert op: type %s region %q zone %q target %s", op.OperationType, op.Region, op.Zone, op.TargetLink)
	}
	_, got := e.raw(t, "GET", "global/httpHealthChecks/hc", nil)
	for _, k := range []string{"id", "creationTimestamp"} {
		if got[k] == nil {
			t.Errorf("missing %s", k)
		}
		delete(got, k)
	}
	want := map[string]any{
		"kind": "compute#httpHealthCheck", "name": "hc", "description": "", "host": "",
		"port": float64(80), "requestPath": "/", "checkIntervalSec": float64(5), "timeoutSec": float64(5),
		"healthyThreshold": float64(2), "unhealthyThreshold": float64(2),
		"selfLink": link("global/httpHealthChecks/hc"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("health check (-want +got):\n%s", d)
	}

	e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "custom", Host: "api.example", Port: 6443,
		RequestPath: "/healthz", CheckIntervalSec: 10, TimeoutSec: 10, HealthyThreshold: 3, UnhealthyThreshold: 4, Description: "d"}))
	hc, err := e.svc.HttpHealthChecks.Get(proj, "custom").Do()
	if err != nil {
		t.Fatal(err)
	}
	if hc.Host != "api.example" || hc.Port != 6443 || hc.RequestPath != "/healthz" || hc.CheckIntervalSec != 10 ||
		hc.TimeoutSec != 10 || hc.HealthyThreshold != 3 || hc.UnhealthyThreshold != 4 || hc.Description != "d" {
		t.Errorf("custom health check not echoed: %+v", hc)
	}
}

func TestHTTPHealthCheckValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for name, hc := range map[string]*compute.HttpHealthCheck{
		"timeout-above-interval": {TimeoutSec: 6},
		"interval-too-long":      {CheckIntervalSec: 301},
		"port-too-high":          {Port: 70000},
		"relative-path":          {RequestPath: "healthz"},
		"threshold-too-high":     {HealthyThreshold: 11},
	} {
		t.Run(name, func(t *testing.T) {
			hc.Name = name
			_, err := e.svc.HttpHealthChecks.Insert(proj, hc).Do()
			apiErr(t, err, 400, "invalid")
		})
	}
}

func TestHTTPHealthCheckUpdateAndPatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "hc", Host: "h", Port: 8080, CheckIntervalSec: 10}))

	op := e.do(t, e.svc.HttpHealthChecks.Patch(proj, "hc", &compute.HttpHealthCheck{RequestPath: "/readyz"}))
	if op.OperationType != "patch" {
		t.Errorf("patch op type %q", op.OperationType)
	}
	hc, _ := e.svc.HttpHealthChecks.Get(proj, "hc").Do()
	if hc.RequestPath != "/readyz" || hc.Port != 8080 || hc.Host != "h" || hc.CheckIntervalSec != 10 {
		t.Errorf("after patch: %+v", hc)
	}

	// PUT replaces: what is not sent goes back to its default.
	op = e.do(t, e.svc.HttpHealthChecks.Update(proj, "hc", &compute.HttpHealthCheck{Name: "hc", CheckIntervalSec: 11}))
	if op.OperationType != "update" {
		t.Errorf("update op type %q (recorded: update)", op.OperationType)
	}
	hc, _ = e.svc.HttpHealthChecks.Get(proj, "hc").Do()
	if hc.CheckIntervalSec != 11 || hc.Port != 80 || hc.RequestPath != "/" || hc.Host != "" {
		t.Errorf("after update: %+v", hc)
	}

	_, err := e.svc.HttpHealthChecks.Patch(proj, "hc", &compute.HttpHealthCheck{TimeoutSec: 12}).Do()
	apiErr(t, err, 400, "invalid")
	_, err = e.svc.HttpHealthChecks.Update(proj, "hc", &compute.HttpHealthCheck{Name: "renamed"}).Do()
	apiErr(t, err, 400, "invalid")
	_, err = e.svc.HttpHealthChecks.Update(proj, "nope", &compute.HttpHealthCheck{Name: "nope"}).Do()
	apiErr(t, err, 404, "notFound")
}

// TestHTTPHealthCheckDeleteInUse: GCE reports the check in use inside the
// operation (observed), and the check survives.
func TestHTTPHealthCheckDeleteInUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "hc"}))
	e.do(t, e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: "pool", HealthChecks: []string{"global/httpHealthChecks/hc"}}))

	op := e.fails(t, e.svc.HttpHealthChecks.Delete(proj, "hc"), "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", 400)
	want := "The http_health_check resource 'projects/test-project/global/httpHealthChecks/hc' is already being used by 'projects/test-project/regions/us-central1/targetPools/pool'"
	if got := op.Error.Errors[0].Message; got != want {
		t.Errorf("message %q\nwant    %q", got, want)
	}
	if op.HttpErrorMessage != "BAD REQUEST" {
		t.Errorf("httpErrorMessage %q", op.HttpErrorMessage)
	}
	if _, err := e.svc.HttpHealthChecks.Get(proj, "hc").Do(); err != nil {
		t.Fatalf("health check gone after a refused delete: %v", err)
	}

	e.do(t, e.svc.TargetPools.RemoveHealthCheck(proj, region, "pool", &compute.TargetPoolsRemoveHealthCheckRequest{
		HealthChecks: []*compute.HealthCheckReference{{HealthCheck: link("global/httpHealthChecks/hc")}}}))
	op = e.do(t, e.svc.HttpHealthChecks.Delete(proj, "hc"))
	if op.OperationType != "delete" {
		t.Errorf("delete op type %q", op.OperationType)
	}
	_, err := e.svc.HttpHealthChecks.Get(proj, "hc").Do()
	apiErr(t, err, 404, "notFound")
	_, err = e.svc.HttpHealthChecks.Delete(proj, "hc").Do()
	apiErr(t, err, 404, "notFound")
}

func TestHTTPHealthCheckQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	if err := e.Control.SetQuota(e.ctx, emulator.QuotaLimit{Project: proj, Metric: "HEALTH_CHECKS", Limit: 1}); err != nil {
		t.Fatal(err)
	}
	e.do(t, e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "one"}))
	_, err := e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "two"}).Do()
	apiErr(t, err, 403, "quotaExceeded")
}

// TestHTTPHealthCheckBusy: a mutation while another runs on the same check
// is refused with resourceNotReady.
func TestHTTPHealthCheckBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyFast, TimeScale: 3})
	op, err := e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: "hc"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.HttpHealthChecks.Delete(proj, "hc").Do()
	apiErr(t, err, 400, "resourceNotReady")
	e.wait(t, op)
	e.do(t, e.svc.HttpHealthChecks.Delete(proj, "hc"))
}
