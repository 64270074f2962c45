package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
)

// replayer replays one scenario against its own emulator.
type replayer struct {
	t       *testing.T
	sc      scenario
	rule    scenarioRule
	base    string // http://host:port
	client  *http.Client
	number  string // the project number the emulator gave the project
	network string // what ${networkID} stands for
	splits  []splitSet
	resp    map[int]any // emulator responses by seq, for binds
	ops     []startedOp // operations started by replayed mutations, oldest first
	report  func(format string, args ...any)

	compared, mismatched int
}

type splitSet struct {
	ph  string
	n   int
	set seqSet
}

type startedOp struct {
	seq    int
	typ    string
	target string
	self   string
}

var placeholder = regexp.MustCompile(`\$\{[A-Za-z]+\}`)

func newReplayer(t *testing.T, sc scenario, report func(string, ...any)) *replayer {
	t.Helper()
	e := emulatortest.Start(t, emulator.Options{
		Projects: []string{project},
		// Fast but asynchronous, so that the first answer to a mutation
		// shows whether GCE's operation was still RUNNING or already DONE.
		Latency:   emulator.LatencyFast,
		TimeScale: 0.01,
	})
	r := &replayer{t: t, sc: sc, rule: rules[short(sc.source)], base: e.HTTP.URL,
		client: e.HTTP.Client(), resp: map[int]any{}, report: report, network: "default"}
	for _, s := range r.rule.split {
		set, err := parseSeqs(s.seqs)
		if err != nil {
			t.Fatalf("%s: split %s: %v", sc.source, s.ph, err)
		}
		r.splits = append(r.splits, splitSet{ph: s.ph, n: s.n, set: set})
	}
	// ${networkID} is the project's default network unless the scenario
	// creates its own network under that placeholder.
	// Some files keep the literal name the test gave its network in the
	// insert body ("computenetwork-${uniqueId}") and say ${networkID}
	// elsewhere.
	for _, x := range sc.xs {
		var body struct{ Name string }
		if x.Resource == "networks" && x.Action == "insert" && json.Unmarshal(x.RequestBody, &body) == nil {
			r.network = "network-" + uniq
			if body.Name != "${networkID}" {
				r.network = r.subst(body.Name, x.Seq, false)
			}
			break
		}
	}
	p, err := e.Compute(t).Projects.Get(project).Do()
	if err != nil {
		t.Fatalf("get project: %v", err)
	}
	r.number = strconv.FormatUint(p.Id, 10)
	return r
}

// value is what a placeholder stands for in exchange seq.
func (r *replayer) value(ph string, seq, occ int) string {
	switch ph {
	case "${projectId}":
		return project
	case "${projectNumber}":
		return r.number
	case "${uniqueId}":
		return uniq
	case "${operationID}":
		return ph // operations are never addressed by recorded name
	}
	if v, ok := r.rule.alias[ph]; ok {
		return v
	}
	n := 1
	for _, s := range r.splits {
		if s.ph == ph && (s.set.whole[seq] || (occ >= 0 && s.set.occ[seq][occ])) {
			n = s.n
			break
		}
	}
	var v string
	if ph == "${networkID}" {
		v = r.network
	} else {
		kind := strings.TrimSuffix(strings.TrimSuffix(strings.Trim(ph, "${}"), "ID"), "Name")
		v = strings.ToLower(kind) + "-" + uniq
	}
	if n > 1 {
		v += "-" + strconv.Itoa(n)
	}
	return v
}

// subst replaces placeholders; occurrences are counted per placeholder
// when request is set, for splits that name single occurrences.
func (r *replayer) subst(s string, seq int, request bool) string {
	counts := map[string]int{}
	return placeholder.ReplaceAllStringFunc(s, func(ph string) string {
		occ := -1
		if request {
			occ = counts[ph]
			counts[ph]++
		}
		return r.value(ph, seq, occ)
	})
}

// decode parses JSON keeping numbers exact.
func decode(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 || string(bytes.TrimSpace(b)) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// do sends one request and decodes the answer.
func (r *replayer) do(method, path string, body []byte) (int, any) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := r.client.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	v, err := decode(b)
	if err != nil {
		r.t.Fatalf("%s %s: bad JSON %q: %v", method, path, b, err)
	}
	return res.StatusCode, v
}

// requestPath substitutes placeholders and gives every mutation a fresh
// requestId (the recorder masked them all as 123456).
func (r *replayer) requestPath(x exchange, text string) string {
	if i := strings.Index(text, "requestId="); i >= 0 {
		j := strings.IndexByte(text[i:], '&')
		if j < 0 {
			j = len(text) - i
		}
		text = text[:i] + "requestId=" + uuid.NewString() + text[i+j:]
	}
	return text
}

// requestText renders path and body with placeholders replaced, counting
// occurrences across both as splitRule describes.
func (r *replayer) requestText(x exchange) (string, []byte) {
	var body []byte
	if len(x.RequestBody) > 0 && string(x.RequestBody) != "null" {
		v, err := decode(x.RequestBody)
		if err != nil {
			r.t.Fatalf("%v: request body: %v", x, err)
		}
		// Re-encoded with sorted keys, so that occurrences count in a
		// stable order.
		body, err = json.Marshal(v)
		if err != nil {
			r.t.Fatal(err)
		}
	}
	const sep = "\x00"
	joined := r.subst(x.Path+sep+string(body), x.Seq, true)
	for _, b := range r.rule.bind {
		if b.seq != x.Seq {
			continue
		}
		src, _ := r.resp[b.from].(map[string]any)
		v, ok := src[b.field].(string)
		if !ok {
			r.t.Fatalf("%v: bind %s: exchange %d has no %s", x, b.literal, b.from, b.field)
		}
		joined = strings.ReplaceAll(joined, b.literal, v)
	}
	path, rest, _ := strings.Cut(joined, sep)
	if strings.Contains(rest, maskedFingerprint) {
		rest = r.currentFingerprints(x, path, rest)
	}
	if body == nil {
		return r.requestPath(x, path), nil
	}
	return r.requestPath(x, path), []byte(rest)
}

// maskedFingerprint is what the recorder wrote for every fingerprint.
const maskedFingerprint = "abcdef0123A="

// currentFingerprints puts the target's current fingerprints where the
// recorder masked them: the recorded clients always sent the current one.
func (r *replayer) currentFingerprints(x exchange, path, body string) string {
	target, _, _ := strings.Cut(path, "?")
	if x.Method == http.MethodPost {
		target = target[:strings.LastIndexByte(target, '/')] // drop the custom verb
	}
	code, v := r.do(http.MethodGet, target, nil)
	cur, ok := v.(map[string]any)
	if code != 200 || !ok {
		return body // the request itself will say what is wrong
	}
	for _, key := range []string{"labelFingerprint", "fingerprint"} {
		if fp, ok := cur[key].(string); ok {
			body = strings.ReplaceAll(body, `"`+key+`":"`+maskedFingerprint+`"`, `"`+key+`":"`+fp+`"`)
		}
	}
	return body
}

// linkPath turns an absolute link into a request path on the emulator.
func linkPath(link string) string {
	if i := strings.Index(link, "/compute/v1/"); i >= 0 {
		return link[i:]
	}
	return link
}

// stubs creates what the scenario needs before exchange seq.
func (r *replayer) stubs(seq int) {
	for _, st := range r.rule.stub[seq] {
		path := "/compute/v1/projects/" + project + "/" + r.subst(st.path, seq, false)
		var body []byte
		if st.body != "" {
			body = []byte(r.subst(st.body, seq, false))
		}
		code, v := r.do(st.method, path, body)
		if code != 200 {
			r.t.Fatalf("stub before seq %d: %s %s: %d %v", seq, st.method, path, code, v)
		}
		if m, ok := v.(map[string]any); ok && m["kind"] == "compute#operation" {
			if op := r.wait(m); op["error"] != nil {
				r.t.Fatalf("stub before seq %d: %s %s failed: %v", seq, st.method, path, op["error"])
			}
		}
	}
}

// wait long-polls an operation until it is DONE.
func (r *replayer) wait(op map[string]any) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for op["status"] != "DONE" {
		if time.Now().After(deadline) {
			r.t.Fatalf("operation %v still not DONE", op["selfLink"])
		}
		self, _ := op["selfLink"].(string)
		code, v := r.do(http.MethodPost, linkPath(self)+"/wait", nil)
		m, ok := v.(map[string]any)
		if code != 200 || !ok {
			r.t.Fatalf("wait %s: %d %v", self, code, v)
		}
		op = m
	}
	return op
}

// findOp picks the operation a recorded poll was about: the newest one of
// the same type on the same target.
func (r *replayer) findOp(x exchange, rec map[string]any) (startedOp, bool) {
	typ, _ := rec["operationType"].(string)
	target, _ := rec["targetLink"].(string)
	for i := len(r.ops) - 1; i >= 0; i-- {
		if o := r.ops[i]; o.typ == typ && o.target == target {
			return o, true
		}
	}
	for i := len(r.ops) - 1; i >= 0; i-- {
		if o := r.ops[i]; o.typ == typ && linkPattern(o.target) == linkPattern(target) {
			return o, true
		}
	}
	return startedOp{}, false
}

// run replays the scenario.
func (r *replayer) run() {
	for _, x := range r.sc.xs {
		r.stubs(x.Seq)
		recText := r.subst(string(x.ResponseBody), x.Seq, false)
		rec, err := decode([]byte(recText))
		if err != nil {
			r.t.Fatalf("%v: recorded response: %v", x, err)
		}
		var code int
		var got any
		path := ""
		if x.isPoll() {
			recOp, _ := rec.(map[string]any)
			o, ok := r.findOp(x, recOp)
			if !ok {
				r.fail(x, []string{"poll of an operation the replay did not start"})
				continue
			}
			if x.Action == "wait" {
				code, got = r.do(http.MethodPost, linkPath(o.self)+"/wait", nil)
			} else {
				code, got = r.do(http.MethodGet, linkPath(o.self), nil)
			}
		} else {
			var body []byte
			path, body = r.requestText(x)
			code, got = r.do(x.Method, path, body)
		}
		r.resp[x.Seq] = got
		r.check(x, path, code, got, rec)
		if m, ok := got.(map[string]any); ok && code == 200 && x.isMutation() && m["kind"] == "compute#operation" {
			typ, _ := m["operationType"].(string)
			target, _ := m["targetLink"].(string)
			self, _ := m["selfLink"].(string)
			r.ops = append(r.ops, startedOp{seq: x.Seq, typ: typ, target: target, self: self})
			// The recorded client waited for the operation before going on.
			r.wait(m)
		}
	}
}

func (r *replayer) check(x exchange, path string, code int, got, rec any) {
	r.compared++
	var problems []string
	if code != x.Status {
		problems = append(problems, fmt.Sprintf("status %d, recorded %d", code, x.Status))
	}
	tolerate := map[string]bool{}
	if x.Resource == "networks" && x.Method == http.MethodGet && strings.Contains(path+"?", "/global/networks/default?") {
		// A project's default network shows mtu or not depending on how
		// it was made: both shapes are recorded.
		tolerate["mtu"] = true
	}
	if m, ok := rec.(map[string]any); ok && m["status"] == "PENDING" {
		// An operation not started yet has no startTime; the emulator
		// starts every operation at once.
		tolerate["startTime"] = true
	}
	problems = append(problems, compare(x, rec, got, tolerate)...)
	if len(problems) > 0 {
		r.fail(x, problems)
	}
}

func (r *replayer) fail(x exchange, problems []string) {
	r.mismatched++
	r.report("%v (%s): %s", x, x.APIVersion, strings.Join(problems, "; "))
}
