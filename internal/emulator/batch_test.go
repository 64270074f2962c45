package emulator_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hakube/hakube/internal/emulator"
	compute "google.golang.org/api/compute/v1"
)

// batchPart is one call of a hand-made batch request.
type batchPart struct {
	id, method, path, body string
	contentType            string // of the part; default application/http
}

// batchAnswer is what came back for one call.
type batchAnswer struct {
	Status int
	Reason string // errors[0].reason of an error answer
	Name   string // "name" of a resource answer
	Kind   string
}

// batchBody renders parts the way gcloud (Python's email package) does:
// bare LF line endings, one application/http part per call.
func batchBody(host string, parts []batchPart) (body []byte, contentType string) {
	const boundary = "===============0123456789=="
	var b strings.Builder
	for _, p := range parts {
		ct := p.contentType
		if ct == "" {
			ct = "application/http"
		}
		fmt.Fprintf(&b, "--%s\nContent-Type: %s\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\nContent-ID: <batch-uuid+%s>\n\n", boundary, ct, p.id)
		fmt.Fprintf(&b, "%s %s HTTP/1.1\nContent-Type: application/json\nMIME-Version: 1.0\ncontent-length: %d\nHost: %s\n\n%s\n",
			p.method, p.path, len(p.body), host, p.body)
	}
	fmt.Fprintf(&b, "--%s--\n", boundary)
	return []byte(b.String()), `multipart/mixed; boundary="` + boundary + `"`
}

// sendBatch posts a batch and returns each call's answer by Content-ID.
func sendBatch(t *testing.T, e *env, body []byte, contentType string) (int, map[string]batchAnswer) {
	t.Helper()
	resp, err := http.Post(e.HTTP.URL+"/batch/compute/v1", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("batch answered Content-Type %q", resp.Header.Get("Content-Type"))
	}
	out := map[string]batchAnswer{}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ct := part.Header.Get("Content-Type"); ct != "application/http" {
			t.Errorf("answer part Content-Type %q", ct)
		}
		cid := part.Header.Get("Content-ID")
		id, ok := strings.CutPrefix(cid, "<response-batch-uuid+")
		if !ok || !strings.HasSuffix(id, ">") {
			t.Fatalf("answer part Content-ID %q, want <response-batch-uuid+ID>", cid)
		}
		r, err := http.ReadResponse(bufio.NewReader(part), nil)
		if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Error *struct {
				Errors []struct{ Reason string } `json:"errors"`
			} `json:"error"`
		}
		if err := json.NewDecoder(r.Body).Decode(&obj); err != nil {
			t.Fatalf("answer %s is not JSON: %v", id, err)
		}
		a := batchAnswer{Status: r.StatusCode, Name: obj.Name, Kind: obj.Kind}
		if obj.Error != nil && len(obj.Error.Errors) > 0 {
			a.Reason = obj.Error.Errors[0].Reason
		}
		out[strings.TrimSuffix(id, ">")] = a
	}
	return resp.StatusCode, out
}

// TestBatch: every call of a batch is answered as if sent alone, through the
// whole pipeline: counted per method, rate-limited and fault-injected as
// that method; the batch itself is not an API method.
func TestBatch(t *testing.T) {
	t.Parallel()
	addr := "/compute/v1/projects/" + proj + "/regions/" + region + "/addresses"
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, e *env)
		parts  []batchPart
		want   map[string]batchAnswer
		counts map[string]int64
	}{{
		name: "each call answered alone",
		parts: []batchPart{
			{id: "0", method: "GET", path: addr + "/here?alt=json"},
			{id: "1", method: "GET", path: addr + "/nope?alt=json"},
			{id: "2", method: "POST", path: addr + "?alt=json", body: `{"name":"new"}`},
			{id: "3", method: "DELETE", path: addr + "/old?alt=json"},
		},
		want: map[string]batchAnswer{
			"0": {Status: 200, Name: "here", Kind: "compute#address"},
			"1": {Status: 404, Reason: "notFound"},
			"2": {Status: 200, Kind: "compute#operation"},
			"3": {Status: 200, Kind: "compute#operation"},
		},
		counts: map[string]int64{"compute.addresses.get": 2, "compute.addresses.insert": 1, "compute.addresses.delete": 1},
	}, {
		name: "faults per method",
		setup: func(t *testing.T, e *env) {
			if _, err := e.Control.AddFault(e.ctx, emulator.Fault{Method: "addresses.insert", Code: 503, Reason: "backendError"}); err != nil {
				t.Fatal(err)
			}
		},
		parts: []batchPart{
			{id: "get", method: "GET", path: addr + "/here"},
			{id: "insert", method: "POST", path: addr, body: `{"name":"new"}`},
		},
		want: map[string]batchAnswer{
			"get":    {Status: 200, Name: "here", Kind: "compute#address"},
			"insert": {Status: 503, Reason: "backendError"},
		},
		counts: map[string]int64{"compute.addresses.get": 1, "compute.addresses.insert": 1},
	}, {
		name: "rate limits per method group",
		setup: func(t *testing.T, e *env) {
			if err := e.Control.SetRateLimits(e.ctx, map[string]int{"read_requests": 2}); err != nil {
				t.Fatal(err)
			}
		},
		parts: []batchPart{
			{id: "a", method: "GET", path: addr + "/here"},
			{id: "b", method: "GET", path: addr + "/here"},
			{id: "c", method: "GET", path: addr + "/here"},
			{id: "list", method: "GET", path: addr},
		},
		// Two of the three reads pass, whichever the emulator served first.
		want: map[string]batchAnswer{
			"list": {Status: 200, Kind: "compute#addressList"},
		},
		counts: map[string]int64{"compute.addresses.get": 3, "compute.addresses.list": 1},
	}, {
		name: "only Compute is reachable",
		parts: []batchPart{
			{id: "control", method: "GET", path: "/emulator/v1/requests"},
			{id: "not-http", method: "GET", path: addr + "/here", contentType: "text/plain"},
			{id: "unknown", method: "GET", path: "/compute/v1/projects/" + proj + "/nothing/here"},
		},
		want: map[string]batchAnswer{
			"control":  {Status: 404, Reason: "notFound"},
			"not-http": {Status: 400, Reason: "invalid"},
			"unknown":  {Status: 404, Reason: "notFound"},
		},
		counts: map[string]int64{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, emulator.Options{})
			e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "here"}))
			e.do(t, e.svc.Addresses.Insert(proj, region, &compute.Address{Name: "old"}))
			if tc.setup != nil {
				tc.setup(t, e)
			}
			mark, err := e.Control.Mark(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			body, ct := batchBody(strings.TrimPrefix(e.HTTP.URL, "http://"), tc.parts)
			code, got := sendBatch(t, e, body, ct)
			if code != 200 || len(got) != len(tc.parts) {
				t.Fatalf("batch: HTTP %d, %d answers for %d calls", code, len(got), len(tc.parts))
			}
			if tc.name == "rate limits per method group" {
				passed := map[int]int{}
				for _, id := range []string{"a", "b", "c"} {
					passed[got[id].Status]++
					if a := got[id]; a.Status == 403 && a.Reason != "rateLimitExceeded" {
						t.Errorf("throttled read %s: %+v", id, a)
					}
					delete(got, id)
				}
				if d := cmp.Diff(map[int]int{200: 2, 403: 1}, passed); d != "" {
					t.Errorf("reads by status (-want +got):\n%s", d)
				}
			}
			for id, a := range got {
				if a.Kind == "compute#operation" {
					a.Name = "" // operation names are random
					got[id] = a
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("answers (-want +got):\n%s", d)
			}
			rc, err := e.Control.RequestsSince(e.ctx, mark)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.counts, rc.Counts, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("request counts (-want +got):\n%s", d)
			}
		})
	}
}

// TestBatchCallsRunInParallel: a wait in one call does not hold up the
// others (GCE runs a batch's calls in parallel, in any order): three waits
// on slow operations take one wait cap, not three.
func TestBatchCallsRunInParallel(t *testing.T) {
	t.Parallel()
	const waitCap = time.Second
	e := newEnv(t, emulator.Options{Latency: emulator.LatencyRealistic, TimeScale: 10, WaitCap: waitCap})
	ops := "/compute/v1/projects/" + proj + "/regions/" + region + "/operations/"
	var parts []batchPart
	want := map[string]batchAnswer{}
	for i := range 3 {
		op, err := e.svc.Addresses.Insert(proj, region, &compute.Address{Name: fmt.Sprint("slow-", i)}).Do()
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint(i)
		parts = append(parts, batchPart{id: id, method: "POST", path: ops + op.Name + "/wait"})
		want[id] = batchAnswer{Status: 200, Name: op.Name, Kind: "compute#operation"}
	}
	body, ct := batchBody(strings.TrimPrefix(e.HTTP.URL, "http://"), parts)
	start := time.Now()
	_, got := sendBatch(t, e, body, ct)
	took := time.Since(start)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("answers (-want +got):\n%s", d)
	}
	if took < waitCap || took > 2*waitCap+waitCap/2 {
		t.Errorf("three waits in one batch took %v; in parallel they take about %v", took, waitCap)
	}
}

// TestBatchRejects: what is not a batch fails as a whole.
func TestBatchRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	var many []batchPart
	for i := range 1001 {
		many = append(many, batchPart{id: fmt.Sprint(i), method: "GET", path: "/compute/v1/projects/" + proj})
	}
	manyBody, manyCT := batchBody("x", many)
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		want              int
	}{
		{"not multipart", "application/json", []byte(`{}`), 400},
		{"no calls", `multipart/mixed; boundary="b"`, []byte("--b--\n"), 400},
		{"over 1000 calls", manyCT, manyBody, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := sendBatch(t, e, tc.body, tc.contentType); code != tc.want {
				t.Errorf("HTTP %d, want %d", code, tc.want)
			}
		})
	}
	// A batch of exactly 1000 is served.
	body, ct := batchBody("x", many[:1000])
	if code, got := sendBatch(t, e, body, ct); code != 200 || len(got) != 1000 {
		t.Errorf("1000 calls: HTTP %d, %d answers", code, len(got))
	}
}

// The standard library's multipart writer (CRLF line endings) works too.
func TestBatchCRLF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, emulator.Options{})
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/http"}, "Content-Id": {"<item-1>"}})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(pw, "POST /compute/v1/projects/%s/regions/%s/addresses HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"crlf\"}", proj, region)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(e.HTTP.URL+"/batch/compute/v1", "multipart/mixed; boundary="+mw.Boundary(), &b)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(raw, []byte("Content-ID: <response-item-1>")) || !bytes.Contains(raw, []byte(`"kind":"compute#operation"`)) {
		t.Errorf("HTTP %d:\n%s", resp.StatusCode, raw)
	}
	// Without a Content-Length the rest of the part was the body.
	if _, err := e.svc.Addresses.Get(proj, region, "crlf").Do(); err != nil {
		t.Errorf("address inserted through the batch: %v", err)
	}
}
