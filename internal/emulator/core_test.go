package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

const (
	proj   = "test-project"
	region = "us-central1"
	other  = "europe-west1"
	zone   = "us-central1-a"
	gceURL = "https://www.googleapis.com/compute/v1/"
)

// env is one emulator and an official client pointed at it.
type env struct {
	*emulatortest.Emulator
	svc *compute.Service
	ctx context.Context
}

func newEnv(t *testing.T, opts emulator.Options) *env {
	t.Helper()
	e := emulatortest.Start(t, opts)
	return &env{Emulator: e, svc: e.Compute(t), ctx: context.Background()}
}

// link is the absolute URL the emulator renders for a project-relative path.
func link(path string) string { return gceURL + "projects/" + proj + "/" + path }

// apiErr asserts err is a Compute error with the given code and reason.
func apiErr(t *testing.T, err error, code int, reason string) *googleapi.Error {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("got error %v, want a googleapi error %d %s", err, code, reason)
	}
	if ge.Code != code || len(ge.Errors) == 0 || ge.Errors[0].Reason != reason {
		t.Fatalf("got %d %+v, want %d %s", ge.Code, ge.Errors, code, reason)
	}
	return ge
}

// done asserts a mutation was accepted and waits until its operation is
// DONE without error.
func (e *env) done(t *testing.T, op *compute.Operation, err error) *compute.Operation {
	t.Helper()
	if err != nil {
		t.Fatalf("mutation: %v", err)
	}
	op = e.wait(t, op)
	if op.Error != nil {
		t.Fatalf("operation %s %s failed: %+v", op.OperationType, op.TargetLink, op.Error.Errors[0])
	}
	return op
}

// opCall is any mutation call of the official client.
type opCall interface {
	Do(...googleapi.CallOption) (*compute.Operation, error)
}

// do runs a mutation and waits for its operation to succeed.
func (e *env) do(t *testing.T, c opCall) *compute.Operation {
	t.Helper()
	op, err := c.Do()
	return e.done(t, op, err)
}

// fails runs a mutation that is accepted but whose operation ends with code.
func (e *env) fails(t *testing.T, c opCall, code string, status int64) *compute.Operation {
	t.Helper()
	op, err := c.Do()
	return e.opFailed(t, op, err, code, status)
}

// wait polls an operation in its own scope until it is DONE.
func (e *env) wait(t *testing.T, op *compute.Operation) *compute.Operation {
	t.Helper()
	return emulatortest.WaitOp(t, e.svc, proj, op)
}

// opFailed asserts a mutation was accepted and its operation ended with code.
func (e *env) opFailed(t *testing.T, op *compute.Operation, err error, code string, status int64) *compute.Operation {
	t.Helper()
	if err != nil {
		t.Fatalf("mutation: %v", err)
	}
	op = e.wait(t, op)
	if op.Error == nil || len(op.Error.Errors) != 1 {
		t.Fatalf("operation %s ended without a single error: %+v", op.Name, op.Error)
	}
	if op.Error.Errors[0].Code != code || op.HttpErrorStatusCode != status {
		t.Fatalf("operation error %s (HTTP %d), want %s (HTTP %d)", op.Error.Errors[0].Code, op.HttpErrorStatusCode, code, status)
	}
	return op
}

// raw sends a request to a Compute path (relative to the project) and
// returns the status and decoded body: the typed client hides wire shapes.
func (e *env) raw(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	code, b := e.rawBytes(t, method, path, body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, b, err)
	}
	return code, m
}

func (e *env) rawBytes(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	url := e.Endpoint + "projects/" + proj + "/" + path
	switch {
	case path == "":
		url = strings.TrimSuffix(url, "/")
	case strings.HasPrefix(path, "/"):
		url = e.HTTP.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestUnknownProjectIsForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	_, err := e.svc.Networks.List("nobody-project").Do()
	ge := apiErr(t, err, 403, "forbidden")
	if !strings.Contains(ge.Message, "projects/nobody-project") {
		t.Errorf("message %q does not name the project", ge.Message)
	}
	_, err = e.svc.Addresses.Insert("nobody-project", region, &compute.Address{Name: "a"}).Do()
	apiErr(t, err, 403, "forbidden")
}

func TestErrorEnvelope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for _, tc := range []struct{ path, quoted string }{
		{"global/networks/nope", "projects/test-project/global/networks/nope"},
		{"regions/us-central1/addresses/nope", "projects/test-project/regions/us-central1/addresses/nope"},
		{"regions/us-central1/targetPools/nope", "projects/test-project/regions/us-central1/targetPools/nope"},
		{"global/httpHealthChecks/nope", "projects/test-project/global/httpHealthChecks/nope"},
		{"regions/us-central1/forwardingRules/nope", "projects/test-project/regions/us-central1/forwardingRules/nope"},
		{"zones/us-central1-a/operations/nope", "projects/test-project/zones/us-central1-a/operations/nope"},
		{"zones/mars-north1-a", "projects/test-project/zones/mars-north1-a"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := e.raw(t, "GET", tc.path, nil)
			msg := "The resource '" + tc.quoted + "' was not found"
			want := map[string]any{"error": map[string]any{
				"code":    float64(404),
				"message": msg,
				"errors":  []any{map[string]any{"message": msg, "domain": "global", "reason": "notFound"}},
			}}
			if code != 404 {
				t.Errorf("status %d, want 404", code)
			}
			if d := cmp.Diff(want, body); d != "" {
				t.Errorf("envelope (-want +got):\n%s", d)
			}
		})
	}
	// The official client parses it into the same code, reason and message.
	_, err := e.svc.Networks.Get(proj, "nope").Do()
	ge := apiErr(t, err, 404, "notFound")
	if ge.Message != ge.Errors[0].Message {
		t.Errorf("message %q != errors[0].message %q", ge.Message, ge.Errors[0].Message)
	}
	if ct := ge.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
}

// TestInt64FieldsAreStrings reads raw bodies: Go's client would fail on bare
// numbers, so the wire form is the contract.
func TestInt64FieldsAreStrings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	_, op := e.raw(t, "POST", "regions/us-central1/addresses", map[string]any{"name": "ip"})
	for _, k := range []string{"id", "targetId"} {
		if _, ok := op[k].(string); !ok {
			t.Errorf("operation %s = %#v, want a JSON string", k, op[k])
		}
	}
	for _, k := range []string{"progress"} {
		if _, ok := op[k].(float64); !ok {
			t.Errorf("operation %s = %#v, want a JSON number (int32)", k, op[k])
		}
	}
	_, a := e.raw(t, "GET", "regions/us-central1/addresses/ip", nil)
	if _, ok := a["id"].(string); !ok {
		t.Errorf("address id = %#v, want a JSON string", a["id"])
	}
	_, fw := e.raw(t, "GET", "global/firewalls/default-allow-ssh", nil)
	if _, ok := fw["id"].(string); !ok {
		t.Errorf("firewall id = %#v, want a JSON string", fw["id"])
	}
	if _, ok := fw["priority"].(float64); !ok {
		t.Errorf("firewall priority = %#v, want a JSON number (int32)", fw["priority"])
	}
	_, pr := e.raw(t, "GET", "", nil)
	if _, ok := pr["id"].(string); !ok {
		t.Errorf("project id = %#v, want a JSON string", pr["id"])
	}
}

func TestNamesFollowRFC1035(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	inserts := map[string]func(name string) error{
		"networks": func(n string) error {
			_, err := e.svc.Networks.Insert(proj, &compute.Network{Name: n, AutoCreateSubnetworks: true}).Do()
			return err
		},
		"firewalls": func(n string) error {
			_, err := e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: n, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp"}}}).Do()
			return err
		},
		"addresses": func(n string) error {
			_, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: n}).Do()
			return err
		},
		"targetPools": func(n string) error {
			_, err := e.svc.TargetPools.Insert(proj, region, &compute.TargetPool{Name: n}).Do()
			return err
		},
		"httpHealthChecks": func(n string) error {
			_, err := e.svc.HttpHealthChecks.Insert(proj, &compute.HttpHealthCheck{Name: n}).Do()
			return err
		},
	}
	bad := []string{"Upper", "1starts-with-digit", "ends-with-", "under_score", "dot.ted", "-lead", strings.Repeat("a", 64)}
	for coll, insert := range inserts {
		for _, name := range bad {
			t.Run(coll+"/"+name, func(t *testing.T) {
				apiErr(t, insert(name), 400, "invalid")
			})
		}
		t.Run(coll+"/empty", func(t *testing.T) { apiErr(t, insert(""), 400, "required") })
		for _, name := range []string{"a", "a-1", strings.Repeat("b", 63)} {
			t.Run(coll+"/ok-"+name[:1], func(t *testing.T) {
				if err := insert(name); err != nil {
					t.Fatalf("valid name %q refused: %v", name, err)
				}
			})
		}
	}
}

func TestDuplicateInsertIsAlreadyExists(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for _, tc := range []struct {
		path   string
		body   map[string]any
		quoted string
	}{
		{"global/networks", map[string]any{"name": "default", "autoCreateSubnetworks": true}, "projects/test-project/global/networks/default"},
		{"global/firewalls", map[string]any{"name": "default-allow-ssh", "allowed": []any{map[string]any{"IPProtocol": "tcp"}}}, "projects/test-project/global/firewalls/default-allow-ssh"},
		{"regions/us-central1/addresses", map[string]any{"name": "dup"}, "projects/test-project/regions/us-central1/addresses/dup"},
		{"regions/us-central1/targetPools", map[string]any{"name": "dup"}, "projects/test-project/regions/us-central1/targetPools/dup"},
		{"global/httpHealthChecks", map[string]any{"name": "dup"}, "projects/test-project/global/httpHealthChecks/dup"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if tc.body["name"] == "dup" {
				if code, b := e.raw(t, "POST", tc.path, tc.body); code != 200 {
					t.Fatalf("first insert: %d %v", code, b)
				}
			}
			code, b := e.raw(t, "POST", tc.path, tc.body)
			if code != 409 {
				t.Fatalf("second insert: %d %v, want 409", code, b)
			}
			item := b["error"].(map[string]any)["errors"].([]any)[0].(map[string]any)
			want := map[string]any{"reason": "alreadyExists", "domain": "global",
				"message": "The resource '" + tc.quoted + "' already exists"}
			if d := cmp.Diff(want, item); d != "" {
				t.Errorf("error item (-want +got):\n%s", d)
			}
		})
	}
}

func TestRequestIDIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyFast})
	const rid = "6f1c3c2e-3f5b-4d1a-9a57-6a1b2c3d4e5f"
	op1, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "once"}).RequestId(rid).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op1.ClientOperationId != rid {
		t.Errorf("clientOperationId %q, want %q", op1.ClientOperationId, rid)
	}
	// The same id, even in another spelling and with another body, gets the
	// original operation back and creates nothing.
	for _, id := range []string{rid, strings.ToUpper(rid)} {
		op2, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "twice"}).RequestId(id).Do()
		if err != nil {
			t.Fatalf("repeat with %s: %v", id, err)
		}
		if op2.Name != op1.Name || op2.Id != op1.Id {
			t.Errorf("repeat returned operation %s, want %s", op2.Name, op1.Name)
		}
	}
	e.wait(t, op1)
	list, err := e.svc.Addresses.List(proj, region).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "once" {
		t.Errorf("addresses after repeats: %v", itemNames(list.Items))
	}
	// A repeat after DONE returns the operation in its current state.
	op3, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "once"}).RequestId(rid).Do()
	if err != nil || op3.Status != "DONE" || op3.Name != op1.Name {
		t.Errorf("repeat after DONE: %v %+v", err, op3)
	}
	// A new id is a new request: the name is now taken.
	_, err = e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "once"}).RequestId("0c2a6c2d-9d1e-4b6e-8f00-1a2b3c4d5e6f").Do()
	apiErr(t, err, 409, "alreadyExists")

	for _, bad := range []string{"not-a-uuid", "00000000-0000-0000-0000-000000000000", "1234"} {
		_, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "bad"}).RequestId(bad).Do()
		apiErr(t, err, 400, "invalid")
	}
}

func itemNames[T any](items []T) []string {
	var out []string
	for _, it := range items {
		b, _ := json.Marshal(it)
		var o struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(b, &o)
		out = append(out, o.Name)
	}
	return out
}

// TestOperationLifecycle checks the RUNNING → DONE progression and that each
// operation lives in its target's scope only.
func TestOperationLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyFast})
	for _, tc := range []struct {
		name   string
		insert func() (*compute.Operation, error)
		scope  string // "global" or a region
	}{
		{"global", func() (*compute.Operation, error) {
			return e.svc.Firewalls.Insert(proj, &compute.Firewall{Name: "fw", Allowed: []*compute.FirewallAllowed{{IPProtocol: "icmp"}}}).Do()
		}, "global"},
		{"regional", func() (*compute.Operation, error) {
			return e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "ip"}).Do()
		}, region},
		{"zonal", func() (*compute.Operation, error) {
			return e.svc.Disks.Insert(proj, zone, &compute.Disk{Name: "d", SizeGb: 10}).Do()
		}, zone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, err := tc.insert()
			if err != nil {
				t.Fatal(err)
			}
			if op.Status != "RUNNING" || op.Progress != 0 || op.EndTime != "" {
				t.Errorf("first response: status %s progress %d endTime %q", op.Status, op.Progress, op.EndTime)
			}
			if op.InsertTime == "" || op.StartTime == "" || op.TargetId == 0 || op.User == "" {
				t.Errorf("first response lacks fields: %+v", op)
			}
			if !strings.HasPrefix(op.Name, "operation-") {
				t.Errorf("name %q", op.Name)
			}
			get := func(scope string) (*compute.Operation, error) {
				switch scope {
				case "global":
					return e.svc.GlobalOperations.Get(proj, op.Name).Do()
				case zone:
					return e.svc.ZoneOperations.Get(proj, zone, op.Name).Do()
				}
				return e.svc.RegionOperations.Get(proj, scope, op.Name).Do()
			}
			switch tc.scope {
			case "global":
				if op.SelfLink != link("global/operations/"+op.Name) || op.Region != "" || op.Zone != "" {
					t.Errorf("global op selfLink %s region %q zone %q", op.SelfLink, op.Region, op.Zone)
				}
			case zone:
				if op.SelfLink != link("zones/"+zone+"/operations/"+op.Name) || op.Zone != link("zones/"+zone) || op.Region != "" {
					t.Errorf("zonal op selfLink %s zone %q region %q", op.SelfLink, op.Zone, op.Region)
				}
			default:
				if op.SelfLink != link("regions/"+tc.scope+"/operations/"+op.Name) || op.Region != link("regions/"+tc.scope) {
					t.Errorf("regional op selfLink %s region %q", op.SelfLink, op.Region)
				}
			}
			for _, wrong := range []string{"global", region, other, zone} {
				if wrong == tc.scope {
					continue
				}
				_, err := get(wrong)
				apiErr(t, err, 404, "notFound")
			}
			var cur *compute.Operation
			deadline := time.Now().Add(5 * time.Second)
			for cur == nil || cur.Status != "DONE" {
				if time.Now().After(deadline) {
					t.Fatal("operation never finished")
				}
				time.Sleep(5 * time.Millisecond)
				if cur, err = get(tc.scope); err != nil {
					t.Fatal(err)
				}
			}
			if cur.Progress != 100 || cur.EndTime == "" || cur.Error != nil {
				t.Errorf("DONE op: progress %d endTime %q error %+v", cur.Progress, cur.EndTime, cur.Error)
			}
			start, _ := time.Parse(time.RFC3339, cur.StartTime)
			end, _ := time.Parse(time.RFC3339, cur.EndTime)
			if !end.After(start) {
				t.Errorf("endTime %s not after startTime %s", cur.EndTime, cur.StartTime)
			}
		})
	}
}

func TestOperationsWaitLongPolls(t *testing.T) {
	t.Parallel()
	// networks.insert takes 50-125 ms under fast; TimeScale 20 makes it
	// 1-2.5 s, far above the 50 ms cap (and nobody waits for it).
	short := newEnv(t, emulator.Options{Latency: emulator.LatencyFast, TimeScale: 20, WaitCap: 50 * time.Millisecond})
	op, err := short.svc.Networks.Insert(proj, &compute.Network{Name: "slow", AutoCreateSubnetworks: true}).Do()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	got, err := short.svc.GlobalOperations.Wait(proj, op.Name).Do()
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(began); got.Status != "RUNNING" || el < 45*time.Millisecond || el > 800*time.Millisecond {
		t.Errorf("capped wait: status %s after %v, want RUNNING after ~50ms", got.Status, el)
	}

	// TimeScale 4: 200-500 ms, well below the 5 s cap.
	long := newEnv(t, emulator.Options{Latency: emulator.LatencyFast, TimeScale: 4, WaitCap: 5 * time.Second})
	op, err = long.svc.Networks.Insert(proj, &compute.Network{Name: "slow", AutoCreateSubnetworks: true}).Do()
	if err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	got, err = long.svc.GlobalOperations.Wait(proj, op.Name).Do()
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(began); got.Status != "DONE" || got.Progress != 100 || el < 150*time.Millisecond || el > 2*time.Second {
		t.Errorf("wait: status %s after %v, want DONE after the operation's 200-500ms", got.Status, el)
	}
	// On a DONE operation it answers at once.
	began = time.Now()
	if got, err = long.svc.GlobalOperations.Wait(proj, op.Name).Do(); err != nil || got.Status != "DONE" || time.Since(began) > 100*time.Millisecond {
		t.Errorf("wait on DONE: %v %v after %v", err, got.Status, time.Since(began))
	}
	_, err = long.svc.RegionOperations.Wait(proj, region, op.Name).Do()
	apiErr(t, err, 404, "notFound")
}

// TestOperationErrorShape pins how a failure inside an operation looks:
// DONE, an UPPER_SNAKE code, the HTTP status and its text.
func TestOperationErrorShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for _, tc := range []struct {
		fault    emulator.Fault
		code     string
		status   int64
		httpText string
	}{
		{emulator.Fault{Method: "addresses.insert", Delivery: "operation", Code: 403, Reason: "quotaExceeded"}, "QUOTA_EXCEEDED", 403, "FORBIDDEN"},
		{emulator.Fault{Method: "addresses.insert", Delivery: "operation", Code: 503, OpCode: "ZONE_RESOURCE_POOL_EXHAUSTED"}, "ZONE_RESOURCE_POOL_EXHAUSTED", 503, "SERVICE UNAVAILABLE"},
		{emulator.Fault{Method: "addresses.insert", Delivery: "operation", Code: 404}, "RESOURCE_NOT_FOUND", 404, "NOT FOUND"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			if _, err := e.Control.AddFault(e.ctx, tc.fault); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Control.ClearFaults(e.ctx) })
			op := e.fails(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "doomed"}), tc.code, tc.status)
			if op.Status != "DONE" || op.Progress != 100 || op.HttpErrorMessage != tc.httpText || op.Error.Errors[0].Message == "" {
				t.Errorf("failed op: %+v", op)
			}
			// What the request did is undone.
			_, err := e.svc.Addresses.Get(proj, region, "doomed").Do()
			apiErr(t, err, 404, "notFound")
		})
	}
	// Raw: errors[] items carry only code and message.
	if _, err := e.Control.AddFault(e.ctx, emulator.Fault{Method: "addresses.insert", Delivery: "operation", Code: 403, Reason: "quotaExceeded"}); err != nil {
		t.Fatal(err)
	}
	_, op := e.raw(t, "POST", "regions/us-central1/addresses", map[string]any{"name": "doomed"})
	item := op["error"].(map[string]any)["errors"].([]any)[0].(map[string]any)
	if len(item) != 2 || item["code"] != "QUOTA_EXCEEDED" {
		t.Errorf("error item %v, want only code and message", item)
	}
}

func TestEmptyResponseOnOperationDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	op := e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "ip"}))
	if err := e.svc.RegionOperations.Delete(proj, region, op.Name).Do(); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.RegionOperations.Get(proj, region, op.Name).Do()
	apiErr(t, err, 404, "notFound")
}

// cmpIgnoreServerResponse drops the HTTP metadata the client attaches.
func cmpIgnoreServerResponse() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".ServerResponse"
	}, cmp.Ignore())
}

// TestRunningOperationWireShape: progress 0 is on the wire (recorded), not
// left out as a zero value, and a RUNNING operation has no endTime.
func TestRunningOperationWireShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyFast})
	code, op := e.raw(t, "POST", "regions/us-central1/addresses", map[string]any{"name": "ip"})
	if code != 200 || op["status"] != "RUNNING" || op["progress"] != float64(0) || op["kind"] != "compute#operation" || op["operationType"] != "insert" {
		t.Errorf("first response: %d %v", code, op)
	}
	for _, k := range []string{"endTime", "error", "httpErrorStatusCode", "zone"} {
		if _, ok := op[k]; ok {
			t.Errorf("RUNNING operation has %s = %v", k, op[k])
		}
	}
}

// TestProjectShape: the project's selfLink has no trailing slash and the
// Cloud Armor tier is shown (recorded: computesharedvpchostproject).
func TestProjectShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	_, p := e.raw(t, "GET", "", nil)
	if p["selfLink"] != gceURL+"projects/"+proj || p["cloudArmorTier"] != "CA_STANDARD" {
		t.Errorf("selfLink %v cloudArmorTier %v", p["selfLink"], p["cloudArmorTier"])
	}
}

// TestRegionsRealScenariosUse: regions the recorded scenarios create
// subnetworks in exist, with their zones.
func TestRegionsRealScenariosUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	for _, r := range []string{"northamerica-northeast2", "northamerica-south1", "us-west3"} {
		got, err := e.svc.Regions.Get(proj, r).Do()
		if err != nil {
			t.Fatalf("region %s: %v", r, err)
		}
		if len(got.Zones) != 3 {
			t.Errorf("region %s: zones %v", r, got.Zones)
		}
		if _, err := e.svc.Subnetworks.Get(proj, r, "default").Do(); err != nil {
			t.Errorf("default subnet in %s: %v", r, err)
		}
	}
}
