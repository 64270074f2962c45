// Package conformance is the replay engine of the emulator's conformance
// test (TestConformance in package emulator). It replays HTTP exchanges
// that Kubernetes Config Connector recorded against real Compute Engine
// (third-party data, see internal/emulator/testdata/conformance/README.md)
// and checks that the emulator answers each request as GCE did: the same
// status code, the same error, an operation that progresses the same way,
// and a body with the same field paths, kinds, enumeration values and link
// forms. Values GCE chose (names, IPs, ids, times) are not compared: the
// recorder masked most of them.
//
// Each recorded log file is a scenario, replayed in sequence order against a
// fresh emulator. Mutations are sent as recorded; their operations are
// waited on instead of replaying the recorded polls, and each recorded poll
// is compared with the emulator's operation. Placeholders are replaced by
// concrete names. rules says, per scenario, what is not replayed and why.
//
// go test ./internal/emulator -run TestConformance -conformance.source=DIR
// regenerates testdata/conformance from DIR (a copy of the corpus: DIR holds
// gce-recorded.jsonl and gce-unverified.jsonl), applying rules.
//
// It imports package testing and is meant for tests only.
package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	project = "kcc-replay-project"
	uniq    = "q7x2"
)

// exchange is one line of the corpus.
type exchange struct {
	Source       string          `json:"source"`
	Seq          int             `json:"seq"`
	Provenance   string          `json:"provenance"`
	Resource     string          `json:"resource"`
	Action       string          `json:"action"`
	Method       string          `json:"method"`
	Path         string          `json:"path"`
	APIVersion   string          `json:"api_version"`
	RequestBody  json.RawMessage `json:"request_body"`
	Status       int             `json:"status"`
	ResponseBody json.RawMessage `json:"response_body"`

	raw []byte // the line as stored, copied verbatim by the generator
}

func (x exchange) isPoll() bool {
	return strings.HasSuffix(x.Resource, "Operations") && (x.Action == "get" || x.Action == "wait")
}

// isMutation: the request changes something and answers with an operation.
func (x exchange) isMutation() bool {
	switch {
	case x.Method == http.MethodGet, x.isPoll():
		return false
	case x.Action == "getHealth", x.Action == "listInstances", x.Action == "listManagedInstances":
		return false
	}
	return true
}

func (x exchange) String() string {
	return fmt.Sprintf("%s#%d %s %s", short(x.Source), x.Seq, x.Method, x.Path)
}

// short drops the long common prefix of KCC fixture paths.
func short(source string) string {
	return strings.TrimPrefix(source, "pkg/test/resourcefixture/testdata/basic/")
}

// replayable lists the methods the emulator implements, as
// resource.action in the corpus's terms.
var replayable = map[string]bool{}

func init() {
	for coll, actions := range map[string]string{
		"addresses":             "get list insert delete setLabels aggregatedList",
		"disks":                 "get list insert delete setLabels aggregatedList",
		"firewalls":             "get list insert delete",
		"routes":                "get list insert delete",
		"networks":              "get list insert delete",
		"subnetworks":           "get list insert delete aggregatedList",
		"instances":             "get list insert delete stop start reset addAccessConfig deleteAccessConfig setMetadata setLabels setTags attachDisk detachDisk aggregatedList",
		"instanceTemplates":     "get list insert delete",
		"instanceGroupManagers": "get list insert delete resize listManagedInstances aggregatedList",
		"instanceGroups":        "get list listInstances",
		"targetPools":           "get list insert delete addInstance removeInstance addHealthCheck removeHealthCheck getHealth aggregatedList",
		"httpHealthChecks":      "get list insert delete update patch",
		"forwardingRules":       "get list insert delete setTarget setLabels aggregatedList",
		"zones":                 "get list",
		"projects":              "get",
		"images":                "get list",
		"zoneOperations":        "get list wait",
		"regionOperations":      "get list wait",
		"globalOperations":      "get list wait aggregatedList",
	} {
		for _, a := range strings.Fields(actions) {
			replayable[coll+"."+a] = true
		}
	}
}

// Run replays every scenario of the data directory dir (testdata/conformance)
// against a fresh emulator each, as subtests of t: mismatches of recorded
// scenarios fail it, those of unverified ones are logged. With source set
// it first regenerates dir from the corpus there.
func Run(t *testing.T, dir, source string) {
	if source != "" {
		regenerate(t, dir, source)
	}
	manifest := readManifest(t, dir)
	type result struct{ compared, mismatched int }
	results := map[string]*result{}
	for _, set := range []string{"recorded", "unverified"} {
		scs := group(load(t, dir, set))
		t.Run(set, func(t *testing.T) {
			for _, sc := range scs {
				res := &result{}
				results[set+"/"+sc.source] = res
				t.Run(short(sc.source), func(t *testing.T) {
					t.Parallel()
					report := t.Errorf
					if set == "unverified" {
						// Possibly KCC's own fake: a hint, never ground truth.
						report = t.Logf
					}
					r := newReplayer(t, sc, report)
					r.run()
					res.compared, res.mismatched = r.compared, r.mismatched
				})
			}
		})
	}
	totals := map[string]*result{"recorded": {}, "unverified": {}}
	for k, r := range results {
		set, _, _ := strings.Cut(k, "/")
		totals[set].compared += r.compared
		totals[set].mismatched += r.mismatched
	}
	for _, set := range []string{"recorded", "unverified"} {
		m := manifest[set]
		t.Logf("%s: %d scenarios, %d replayed, %d skipped %v; %d exchanges compared, %d differ",
			set, m.total, m.replayed, m.total-m.replayed, m.skipped, totals[set].compared, totals[set].mismatched)
	}
}

// manifestSet counts one set's decisions from selection.tsv.
type manifestSet struct {
	total, replayed int
	skipped         map[string]int // by reason
}

func readManifest(t *testing.T, dir string) map[string]*manifestSet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "selection.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*manifestSet{"recorded": {skipped: map[string]int{}}, "unverified": {skipped: map[string]int{}}}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 || out[f[1]] == nil {
			t.Fatalf("selection.tsv: bad line %q", line)
		}
		m := out[f[1]]
		m.total++
		if f[0] == "replayed" {
			m.replayed++
		} else {
			m.skipped[f[4]]++
		}
	}
	return out
}
