package emulator_test

// The conformance test replays HTTP exchanges that Kubernetes Config
// Connector recorded against real Compute Engine (third-party data, see
// testdata/conformance/README.md) and checks that the emulator answers each
// request as GCE did: the same status code, the same error, an operation
// that progresses the same way, and a body with the same field paths, kinds,
// enumeration values and link forms. Values GCE chose (names, IPs, ids,
// times) are not compared: the recorder masked most of them.
//
// Each recorded log file is a scenario, replayed in sequence order against a
// fresh emulator. Mutations are sent as recorded; their operations are
// waited on instead of replaying the recorded polls, and each recorded poll
// is compared with the emulator's operation. Placeholders are replaced by
// concrete names. confRules says, per scenario, what is not replayed and why.
//
// go test ./internal/emulator -run TestConformance -conformance.source=DIR
// regenerates testdata/conformance from DIR (a copy of the corpus: DIR holds
// gce-recorded.jsonl and gce-unverified.jsonl), applying confRules.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/hakube/hakube/internal/emulator"
	"github.com/hakube/hakube/internal/emulator/emulatortest"
	compute "google.golang.org/api/compute/v1"
)

var confSource = flag.String("conformance.source", "",
	"regenerate testdata/conformance from this directory (holding gce-recorded.jsonl and gce-unverified.jsonl) before replaying")

const (
	confDir     = "testdata/conformance"
	confProject = "kcc-replay-project"
	confUniq    = "q7x2"
)

// confExchange is one line of the corpus.
type confExchange struct {
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

func (x confExchange) isPoll() bool {
	return strings.HasSuffix(x.Resource, "Operations") && (x.Action == "get" || x.Action == "wait")
}

// isMutation: the request changes something and answers with an operation.
func (x confExchange) isMutation() bool {
	switch {
	case x.Method == http.MethodGet, x.isPoll():
		return false
	case x.Action == "getHealth", x.Action == "listInstances", x.Action == "listManagedInstances":
		return false
	}
	return true
}

func (x confExchange) String() string {
	return fmt.Sprintf("%s#%d %s %s", confShort(x.Source), x.Seq, x.Method, x.Path)
}

// confShort drops the long common prefix of KCC fixture paths.
func confShort(source string) string {
	return strings.TrimPrefix(source, "pkg/test/resourcefixture/testdata/basic/")
}

// confReplayable lists the methods the emulator implements, as
// resource.action in the corpus's terms.
var confReplayable = map[string]bool{}

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
			confReplayable[coll+"."+a] = true
		}
	}
}

// ---------------------------------------------------------------------------
// Per-scenario rules.

// confRule says how one scenario is replayed. The zero rule replays every
// exchange up to the first one the emulator cannot replay.
type confRule struct {
	skip string // the scenario is not replayed at all, and why
	cut  int    // replay only exchanges before this seq
	why  string // why the cut
	// drop lists exchanges left out ("46-49", "7,9") and why. Only
	// exchanges whose absence does not change the shape of what follows
	// (reads of foreign objects, value-only updates and their polls).
	drop map[string]string
	// split gives a second (third...) object its own name where the
	// recorder used one placeholder for several objects.
	split []confSplit
	// bind replaces real values in request bodies (IPs GCE had handed out)
	// by the ones the emulator handed out.
	bind []confBind
	// stub creates, before an exchange, objects that existed on GCE
	// without a recorded Compute request (made by another service, or
	// before the recording began).
	stub map[int][]confStub
	// alias fixes what a placeholder stands for in the whole scenario.
	alias map[string]string
}

// confSplit: in the exchanges listed, placeholder ph names object number n
// (2, 3...) rather than the first one. "37#1" limits it to the second
// occurrence of ph in request 37 (path and body, keys in sorted order).
type confSplit struct {
	ph   string
	n    int
	seqs string
}

// confBind: in request seq, literal stands for the value of field in the
// emulator's response to exchange from.
type confBind struct {
	seq     int
	literal string
	from    int
	field   string
}

// confStub is one request, relative to /compute/v1/projects/{project}/,
// with placeholders, that must succeed.
type confStub struct {
	method, path, body string
}

// Reasons shared by several scenarios.
const (
	whyGKEMIG    = "node-pool MIG created by GKE, outside the Compute API: read-only, nothing to replay it against"
	whyPeered    = "service networking peered the network out of band; the emulator has no network peering"
	whyProxyRule = "forwarding rule of an internal or proxy load balancer (backend service, target proxy): the emulator implements target-pool rules only"
	whyValueOnly = "method not implemented by the emulator; it changes values only, so what follows keeps its shape"
	// The recorder replaced the name "default" by ${subnetworkID} in
	// some files: there it names the project's default network and subnet.
	whyDefaultSubnet = "the project's default subnet carries secondary ranges that GKE clusters of other tests added"
)

// confFirewall is a firewall rule another controller kept on a network.
func confFirewall(name string) confStub {
	return confStub{"POST", "global/firewalls",
		`{"name":"` + name + `","network":"global/networks/${networkID}","allowed":[{"IPProtocol":"tcp","ports":["22"]}]}`}
}

var confRules = map[string]confRule{
	"compute/v1beta1/computeinstance/computeinstancebasicexample/_http.log": {
		drop: map[string]string{"46-49": whyValueOnly + " (setMachineType, setServiceAccount)"},
		// A boot disk and a data disk; an internal and an external address.
		split: []confSplit{{"${diskID}", 2, "7-10,33#1,67-69"}, {"${addressID}", 2, "25-30,59-61"}},
		// The instance takes the two addresses reserved before it.
		bind: []confBind{{33, "34.169.196.191", 28, "address"}, {33, "10.138.0.27", 22, "address"}},
	},
	"compute/v1beta1/computetargetpool/_http.log": {
		// Two instances; a minimal pool, then a full one backed by it.
		split: []confSplit{{"${instanceID}", 2, "23-31,37#1,42,50-53"}, {"${targetPoolID}", 2, "36,37#1,38-46"}},
	},
	"compute/v1beta1/computeinstancegroup/_http.log": {
		drop: map[string]string{"29-47": "unmanaged instance groups (instanceGroups.insert, addInstances, removeInstances, " +
			"setNamedPorts, delete) are not implemented; the instances do not show their membership"},
		split: []confSplit{{"${instanceID}", 2, "19-27,48-51"}},
	},
	"compute/v1beta1/computebackendservice/globalcomputebackendservice/_http.log": {
		drop: map[string]string{"13-19,36-39": "unmanaged instance groups are not implemented; the instance does not show its membership"},
	},
	"compute/v1beta1/computebackendservice/regionalcomputebackendservice/_http.log": {
		drop: map[string]string{"13-19,36-39": "unmanaged instance groups are not implemented; the instance does not show its membership"},
	},
	"compute/v1beta1/computepacketmirroring/_http.log": {
		alias: map[string]string{"${subnetworkID}": "default"},
		drop:  map[string]string{"14-15,32-33": whyValueOnly + " (setMachineType)"},
		split: []confSplit{{"${instanceID}", 2, "21-38,74-77"}},
	},
	"compute/v1beta1/computeinstancegroupmanager/zonalcomputeinstancegroupmanager/_http.log": {
		drop: map[string]string{"26-28": "instanceGroupManagers.patch is not implemented; the GET after it shows the patched group"},
	},
	"compute/v1beta1/computefirewall/computefirewall/_http.log": {
		drop: map[string]string{"6-8": "firewalls.patch is not implemented; the GET after it shows the patched rule"},
	},
	"compute/v1beta1/computenetwork/computenetworkbasic/_http.log": {
		drop: map[string]string{"5-7": "networks.patch is not implemented; the GET after it shows the patched network"},
	},
	"compute/v1beta1/computenetwork/computenetworkautocreatesubnets/_http.log": {
		drop: map[string]string{"5-7": "networks.patch is not implemented; the GET after it shows the patched network"},
	},
	"compute/v1beta1/computenetwork/computenetworkautocreatesubnets/_http_old_controller.log": {
		drop: map[string]string{"5-7": "networks.patch is not implemented; the GET after it shows the patched network"},
	},
	"compute/v1beta1/computeimage/_http.log": {
		drop: map[string]string{"6-12": "project images (images.insert, setLabels, delete) are not implemented; the source disk keeps its shape"},
	},
	"compute/v1beta1/computesnapshot/_http.log": {
		drop: map[string]string{"6-7": "disks.createSnapshot is not implemented; the disk keeps its shape"},
	},
	"compute/v1beta1/computedisk/computediskfromsourcedisk/_http.log": {
		split: []confSplit{{"${diskID}", 2, "5,6#0,7-10"}},
	},
	"compute/v1beta1/computerouternat/_http.log": {
		split: []confSplit{{"${addressID}", 2, "19-24,40-42"}, {"${addressID}", 3, "25-30,46-48"}},
	},
	"compute/v1beta1/computenetworkpeering/_http.log": {
		split: []confSplit{{"${networkID}", 2, "5-8"}},
	},
	"compute/v1beta1/computerouternat/computerouternatprivate/_http.log": {
		split: []confSplit{{"${subnetworkID}", 2, "17-20,44-46"}, {"${subnetworkID}", 3, "21-24,41-43"}},
		// Firewall rules another controller kept on the network, replaced
		// twice while the test tried to delete the network.
		stub: map[int][]confStub{
			59: {confFirewall("${networkID}-ba5h4uquy4cktbsldj6ba2g3")},
			83: {confFirewall("${networkID}-odm2l5xrgkhkgaqqdwsg4qbt"), {"DELETE", "global/firewalls/${networkID}-ba5h4uquy4cktbsldj6ba2g3", ""}},
			92: {confFirewall("${networkID}-sdx6cy5czikkcypafr5rrpke"), {"DELETE", "global/firewalls/${networkID}-odm2l5xrgkhkgaqqdwsg4qbt", ""}},
		},
	},
	"compute/v1beta1/computerouternat/computerouternatprivate/_http_old_controller.log": {
		split: []confSplit{{"${subnetworkID}", 2, "17-20,43-45"}, {"${subnetworkID}", 3, "21-24,40-42"}},
		stub:  map[int][]confStub{58: {confFirewall("${networkID}-odm2l5xrgkhkgaqqdwsg4qbt")}},
	},
	"container/v1beta1/containercluster/containercluster-additionaliprangesconfigs/_http.log": {
		split: []confSplit{{"${subnetworkID}", 2, "9-12,20,54-56"}, {"${subnetworkID}", 3, "13-16,49-53"}},
	},
	"networkservices/v1alpha1/networkservicesauthzextension/networkservicesauthzextension-maximal/_http.log": {
		split: []confSplit{{"${subnetworkID}", 2, "9-12,36-38"}},
	},
	"networkservices/v1alpha1/networkservicesauthzextension/networkservicesauthzextension-minimal/_http.log": {
		split: []confSplit{{"${subnetworkID}", 2, "9-12,33-35"}},
	},
	"networkservices/v1alpha1/networkserviceslbrouteextension/lbrouteextension-basic/_http.log": {
		split: []confSplit{{"${subnetworkID}", 2, "9-12,73-75"}},
	},
	// Unverified set.
	"compute/v1beta1/computeforwardingrule/regionalcomputeforwardingruletcp/_http.log": {
		split: []confSplit{{"${subnetworkID}", 2, "9-12,46-48"}},
	},
	"compute/v1beta1/computeforwardingrule/regionalcomputeforwardingruletcp/_http_old_controller.log": {
		split: []confSplit{{"${subnetworkID}", 2, "9-12,46-48"}},
	},
	"mockgcp/mocknetworkservices/testdata/lbrouteextension/crud/_http.log": {
		split: []confSplit{{"${subnetworkID}", 2, "7-9,50-51"}},
	},
	"compute/v1beta1/computedisk/computediskfromsourcedisk/_http_old_controller.log": {
		split: []confSplit{{"${diskID}", 2, "5,6#0,7-10"}},
	},
	"compute/v1beta1/computeaddress/regionalcomputeaddress-direct/_http.log": {
		alias: map[string]string{"${subnetworkID}": "default"},
	},
	"apigee/apigeeendpointattachment/apigeeendpointattachment-basic/_http.log": {
		skip: "ambiguous: ${subnetworkID} names both a pre-existing network and the subnetwork the test creates",
	},
	"compute/v1beta1/computeserviceattachment/_http.log": {
		skip: "requests name a literal project (example-project-01) instead of the placeholder",
	},
	"compute/v1beta1/computeaddress/regionalcomputeaddress/_http.log": {

		alias: map[string]string{"${subnetworkID}": "default"},
		drop:  map[string]string{"2": whyDefaultSubnet},
	},
	"compute/v1beta1/computenetworkendpointgroup/_http.log": {
		alias: map[string]string{"${subnetworkID}": "default"},
		drop:  map[string]string{"2": whyDefaultSubnet},
	},
}

// confAutoDrop marks exchanges left out of every scenario.
func confAutoDrop(x confExchange) string {
	if x.Resource == "instanceGroupManagers" && strings.Contains(x.Path, "/instanceGroupManagers/gke-") {
		return whyGKEMIG
	}
	if x.Resource == "subnetworks" && x.Method == http.MethodGet && bytes.Contains(x.ResponseBody, []byte(`"reservedInternalRange"`)) {
		return "GKE added secondary ranges to the subnet out of band"
	}
	return ""
}

// confAutoCut reports why a scenario must stop before x, if it must.
func confAutoCut(x confExchange) string {
	if !confReplayable[x.Resource+"."+x.Action] {
		return x.Resource + "." + x.Action + " is not implemented by the emulator"
	}
	if strings.HasPrefix(x.Path, "/compute/v1/projects/${projectNumber}/") {
		return "the request names the project by number"
	}
	if x.Resource == "networks" && bytes.Contains(x.ResponseBody, []byte(`"peerings"`)) {
		return whyPeered
	}
	return ""
}

// confProxyRules reports whether the scenario's forwarding rules serve a
// backend service or a proxy, which the emulator does not implement.
func confProxyRules(sc confScenario) bool {
	for _, x := range sc.xs {
		if x.Resource != "forwardingRules" || x.Action != "insert" {
			continue
		}
		var fr compute.ForwardingRule
		if json.Unmarshal(x.RequestBody, &fr) == nil && !strings.Contains(fr.Target, "/targetPools/") {
			return true
		}
	}
	return false
}

// confSeqSet parses "1,3-5,37#1" into whole exchanges and single
// occurrences.
type confSeqSet struct {
	whole map[int]bool
	occ   map[int]map[int]bool
}

func parseConfSeqs(s string) (confSeqSet, error) {
	set := confSeqSet{whole: map[int]bool{}, occ: map[int]map[int]bool{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if seq, occ, ok := strings.Cut(part, "#"); ok {
			a, err1 := strconv.Atoi(seq)
			b, err2 := strconv.Atoi(occ)
			if err1 != nil || err2 != nil {
				return set, fmt.Errorf("bad occurrence %q", part)
			}
			if set.occ[a] == nil {
				set.occ[a] = map[int]bool{}
			}
			set.occ[a][b] = true
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a {
			return set, fmt.Errorf("bad range %q", part)
		}
		for i := a; i <= b; i++ {
			set.whole[i] = true
		}
	}
	return set, nil
}

// ---------------------------------------------------------------------------
// Loading and selection.

func confReadLines(t testing.TB, path string) []confExchange {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open corpus: %v", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer zr.Close()
		r = zr
	}
	var out []confExchange
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var x confExchange
		if err := json.Unmarshal(line, &x); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		x.raw = append([]byte(nil), line...)
		out = append(out, x)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// confLoad reads a data file of testdata/conformance, plain or gzipped.
func confLoad(t testing.TB, name string) []confExchange {
	t.Helper()
	p := filepath.Join(confDir, name+".jsonl")
	if _, err := os.Stat(p); err != nil {
		p += ".gz"
	}
	return confReadLines(t, p)
}

// confScenario is one log file's exchanges in sequence order.
type confScenario struct {
	source string
	xs     []confExchange
}

func confGroup(xs []confExchange) []confScenario {
	by := map[string][]confExchange{}
	var order []string
	for _, x := range xs {
		if _, ok := by[x.Source]; !ok {
			order = append(order, x.Source)
		}
		by[x.Source] = append(by[x.Source], x)
	}
	sort.Strings(order)
	out := make([]confScenario, 0, len(order))
	for _, s := range order {
		sort.SliceStable(by[s], func(i, j int) bool { return by[s][i].Seq < by[s][j].Seq })
		out = append(out, confScenario{source: s, xs: by[s]})
	}
	return out
}

// confDecision is what the selection did with one scenario.
type confDecision struct {
	set      string // "recorded" or "unverified"
	source   string
	kept     int
	total    int
	skip     string
	notes    []string
	selected []confExchange
}

// confSelect applies the rules to one scenario.
func confSelect(set string, sc confScenario) (confDecision, error) {
	d := confDecision{set: set, source: sc.source, total: len(sc.xs)}
	rule := confRules[confShort(sc.source)]
	if rule.skip != "" {
		d.skip = rule.skip
		return d, nil
	}
	drops := map[int]string{}
	for spec, why := range rule.drop {
		s, err := parseConfSeqs(spec)
		if err != nil {
			return d, fmt.Errorf("%s: drop %q: %v", sc.source, spec, err)
		}
		for seq := range s.whole {
			drops[seq] = why
		}
	}
	proxyRules := confProxyRules(sc)
	dropped := map[string][]int{}
	whys := map[string]bool{}
	for _, x := range sc.xs {
		if rule.cut > 0 && x.Seq >= rule.cut {
			d.notes = append(d.notes, fmt.Sprintf("cut at seq %d: %s", rule.cut, rule.why))
			whys[rule.why] = true
			break
		}
		why := drops[x.Seq]
		if why == "" {
			why = confAutoDrop(x)
		}
		if why == "" && proxyRules && (x.Resource == "forwardingRules" || x.isPoll() && bytes.Contains(x.ResponseBody, []byte("/forwardingRules/"))) {
			why = whyProxyRule
		}
		if why != "" {
			dropped[why] = append(dropped[why], x.Seq)
			continue
		}
		if why := confAutoCut(x); why != "" {
			d.notes = append(d.notes, fmt.Sprintf("cut at seq %d: %s", x.Seq, why))
			whys[why] = true
			break
		}
		d.selected = append(d.selected, x)
	}
	for why, seqs := range dropped {
		d.notes = append(d.notes, fmt.Sprintf("dropped seq %s: %s", confRanges(seqs), why))
		whys[why] = true
	}
	sort.Strings(d.notes)
	d.kept = len(d.selected)
	if d.kept == 0 {
		// Said without sequence numbers, so that scenarios skipped for
		// the same reason count together.
		d.skip = "nothing replayable: " + strings.Join(confSortedKeys(whys), "; ")
		d.notes = nil
	}

	return d, nil
}

// confRanges renders sorted seqs as "1-3,7".
func confRanges(seqs []int) string {
	sort.Ints(seqs)
	var parts []string
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(seqs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", seqs[i], seqs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// confRegenerate rewrites testdata/conformance from the corpus in dir.
func confRegenerate(t *testing.T, dir string) {
	t.Helper()
	var manifest bytes.Buffer
	manifest.WriteString("# Which recorded scenarios the conformance test replays, and why the rest are not.\n")
	manifest.WriteString("# Generated by: go test ./internal/emulator -run TestConformance -conformance.source=DIR\n")
	manifest.WriteString("# Columns: decision, set, source, exchanges kept/total, notes.\n")
	for _, set := range []string{"recorded", "unverified"} {
		xs := confReadLines(t, filepath.Join(dir, "gce-"+set+".jsonl"))
		var out bytes.Buffer
		for _, sc := range confGroup(xs) {
			d, err := confSelect(set, sc)
			if err != nil {
				t.Fatal(err)
			}
			if d.skip != "" {
				fmt.Fprintf(&manifest, "skipped\t%s\t%s\t0/%d\t%s\n", set, sc.source, d.total, d.skip)
				continue
			}
			fmt.Fprintf(&manifest, "replayed\t%s\t%s\t%d/%d\t%s\n", set, sc.source, d.kept, d.total, strings.Join(d.notes, "; "))
			for _, x := range d.selected {
				out.Write(x.raw)
				out.WriteByte('\n')
			}
		}
		base := filepath.Join(confDir, set+".jsonl")
		for _, p := range []string{base, base + ".gz"} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		data, name := out.Bytes(), base
		if len(data) > 1<<20 {
			var zb bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
			zw.Write(data)
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			data, name = zb.Bytes(), base+".gz"
		}
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(confDir, "selection.tsv"), manifest.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Replay.

// confReplayer replays one scenario against its own emulator.
type confReplayer struct {
	t       *testing.T
	sc      confScenario
	rule    confRule
	base    string // http://host:port
	client  *http.Client
	number  string // the project number the emulator gave the project
	network string // what ${networkID} stands for
	splits  []confSplitSet
	resp    map[int]any // emulator responses by seq, for binds
	ops     []confOp    // operations started by replayed mutations, oldest first
	report  func(format string, args ...any)

	compared, mismatched int
}

type confSplitSet struct {
	ph  string
	n   int
	set confSeqSet
}

type confOp struct {
	seq    int
	typ    string
	target string
	self   string
}

var confPlaceholder = regexp.MustCompile(`\$\{[A-Za-z]+\}`)

func newConfReplayer(t *testing.T, sc confScenario, report func(string, ...any)) *confReplayer {
	t.Helper()
	e := emulatortest.Start(t, emulator.Options{
		Projects: []string{confProject},
		// Fast but asynchronous, so that the first answer to a mutation
		// shows whether GCE's operation was still RUNNING or already DONE.
		Latency:   emulator.LatencyFast,
		TimeScale: 0.01,
	})
	r := &confReplayer{t: t, sc: sc, rule: confRules[confShort(sc.source)], base: e.HTTP.URL,
		client: e.HTTP.Client(), resp: map[int]any{}, report: report, network: "default"}
	for _, s := range r.rule.split {
		set, err := parseConfSeqs(s.seqs)
		if err != nil {
			t.Fatalf("%s: split %s: %v", sc.source, s.ph, err)
		}
		r.splits = append(r.splits, confSplitSet{ph: s.ph, n: s.n, set: set})
	}
	// ${networkID} is the project's default network unless the scenario
	// creates its own network under that placeholder.
	// Some files keep the literal name the test gave its network in the
	// insert body ("computenetwork-${uniqueId}") and say ${networkID}
	// elsewhere.
	for _, x := range sc.xs {
		var body struct{ Name string }
		if x.Resource == "networks" && x.Action == "insert" && json.Unmarshal(x.RequestBody, &body) == nil {
			r.network = "network-" + confUniq
			if body.Name != "${networkID}" {
				r.network = r.subst(body.Name, x.Seq, false)
			}
			break
		}
	}
	p, err := e.Compute(t).Projects.Get(confProject).Do()
	if err != nil {
		t.Fatalf("get project: %v", err)
	}
	r.number = strconv.FormatUint(p.Id, 10)
	return r
}

// value is what a placeholder stands for in exchange seq.
func (r *confReplayer) value(ph string, seq, occ int) string {
	switch ph {
	case "${projectId}":
		return confProject
	case "${projectNumber}":
		return r.number
	case "${uniqueId}":
		return confUniq
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
		v = strings.ToLower(kind) + "-" + confUniq
	}
	if n > 1 {
		v += "-" + strconv.Itoa(n)
	}
	return v
}

// subst replaces placeholders; occurrences are counted per placeholder
// when request is set, for splits that name single occurrences.
func (r *confReplayer) subst(s string, seq int, request bool) string {
	counts := map[string]int{}
	return confPlaceholder.ReplaceAllStringFunc(s, func(ph string) string {
		occ := -1
		if request {
			occ = counts[ph]
			counts[ph]++
		}
		return r.value(ph, seq, occ)
	})
}

// decode parses JSON keeping numbers exact.
func confDecode(b []byte) (any, error) {
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
func (r *confReplayer) do(method, path string, body []byte) (int, any) {
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
	v, err := confDecode(b)
	if err != nil {
		r.t.Fatalf("%s %s: bad JSON %q: %v", method, path, b, err)
	}
	return res.StatusCode, v
}

// requestPath substitutes placeholders and gives every mutation a fresh
// requestId (the recorder masked them all as 123456).
func (r *confReplayer) requestPath(x confExchange, text string) string {
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
// occurrences across both as confSplit describes.
func (r *confReplayer) requestText(x confExchange) (string, []byte) {
	var body []byte
	if len(x.RequestBody) > 0 && string(x.RequestBody) != "null" {
		v, err := confDecode(x.RequestBody)
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
	if strings.Contains(rest, confMaskedFingerprint) {
		rest = r.currentFingerprints(x, path, rest)
	}
	if body == nil {
		return r.requestPath(x, path), nil
	}
	return r.requestPath(x, path), []byte(rest)
}

// confMaskedFingerprint is what the recorder wrote for every fingerprint.
const confMaskedFingerprint = "abcdef0123A="

// currentFingerprints puts the target's current fingerprints where the
// recorder masked them: the recorded clients always sent the current one.
func (r *confReplayer) currentFingerprints(x confExchange, path, body string) string {
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
			body = strings.ReplaceAll(body, `"`+key+`":"`+confMaskedFingerprint+`"`, `"`+key+`":"`+fp+`"`)
		}
	}
	return body
}

// linkPath turns an absolute link into a request path on the emulator.
func confLinkPath(link string) string {
	if i := strings.Index(link, "/compute/v1/"); i >= 0 {
		return link[i:]
	}
	return link
}

// stubs creates what the scenario needs before exchange seq.
func (r *confReplayer) stubs(seq int) {
	for _, st := range r.rule.stub[seq] {
		path := "/compute/v1/projects/" + confProject + "/" + r.subst(st.path, seq, false)
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
func (r *confReplayer) wait(op map[string]any) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for op["status"] != "DONE" {
		if time.Now().After(deadline) {
			r.t.Fatalf("operation %v still not DONE", op["selfLink"])
		}
		self, _ := op["selfLink"].(string)
		code, v := r.do(http.MethodPost, confLinkPath(self)+"/wait", nil)
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
func (r *confReplayer) findOp(x confExchange, rec map[string]any) (confOp, bool) {
	typ, _ := rec["operationType"].(string)
	target, _ := rec["targetLink"].(string)
	for i := len(r.ops) - 1; i >= 0; i-- {
		if o := r.ops[i]; o.typ == typ && o.target == target {
			return o, true
		}
	}
	for i := len(r.ops) - 1; i >= 0; i-- {
		if o := r.ops[i]; o.typ == typ && confLinkPattern(o.target) == confLinkPattern(target) {
			return o, true
		}
	}
	return confOp{}, false
}

// run replays the scenario.
func (r *confReplayer) run() {
	for _, x := range r.sc.xs {
		r.stubs(x.Seq)
		recText := r.subst(string(x.ResponseBody), x.Seq, false)
		rec, err := confDecode([]byte(recText))
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
				code, got = r.do(http.MethodPost, confLinkPath(o.self)+"/wait", nil)
			} else {
				code, got = r.do(http.MethodGet, confLinkPath(o.self), nil)
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
			r.ops = append(r.ops, confOp{seq: x.Seq, typ: typ, target: target, self: self})
			// The recorded client waited for the operation before going on.
			r.wait(m)
		}
	}
}

func (r *confReplayer) check(x confExchange, path string, code int, got, rec any) {
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
	problems = append(problems, confCompare(x, rec, got, tolerate)...)
	if len(problems) > 0 {
		r.fail(x, problems)
	}
}

func (r *confReplayer) fail(x confExchange, problems []string) {
	r.mismatched++
	r.report("%v (%s): %s", x, x.APIVersion, strings.Join(problems, "; "))
}

// ---------------------------------------------------------------------------
// Comparison.

// confKinds maps a response's kind to the v1 type that defines its fields.
var confKinds = map[string]reflect.Type{}

func init() {
	for kind, v := range map[string]any{
		"compute#operation":                   compute.Operation{},
		"compute#operationList":               compute.OperationList{},
		"compute#instance":                    compute.Instance{},
		"compute#disk":                        compute.Disk{},
		"compute#address":                     compute.Address{},
		"compute#addressList":                 compute.AddressList{},
		"compute#forwardingRule":              compute.ForwardingRule{},
		"compute#targetPool":                  compute.TargetPool{},
		"compute#httpHealthCheck":             compute.HttpHealthCheck{},
		"compute#firewall":                    compute.Firewall{},
		"compute#firewallList":                compute.FirewallList{},
		"compute#network":                     compute.Network{},
		"compute#subnetwork":                  compute.Subnetwork{},
		"compute#subnetworkAggregatedList":    compute.SubnetworkAggregatedList{},
		"compute#route":                       compute.Route{},
		"compute#routeList":                   compute.RouteList{},
		"compute#instanceTemplate":            compute.InstanceTemplate{},
		"compute#instanceGroupManager":        compute.InstanceGroupManager{},
		"compute#instanceGroup":               compute.InstanceGroup{},
		"compute#instanceGroupsListInstances": compute.InstanceGroupsListInstances{},
		"compute#zone":                        compute.Zone{},
		"compute#region":                      compute.Region{},
		"compute#project":                     compute.Project{},
		"compute#image":                       compute.Image{},
	} {
		confKinds[kind] = reflect.TypeOf(v)
	}
}

// confSegments splits "disks[].source" into "disks", "[]", "source".
func confSegments(path string) []string {
	var out []string
	for _, p := range strings.Split(path, ".") {
		n := 0
		for strings.HasSuffix(p, "[]") {
			p = strings.TrimSuffix(p, "[]")
			n++
		}
		out = append(out, p)
		for ; n > 0; n-- {
			out = append(out, "[]")
		}
	}
	return out
}

// confSchema reports whether path is a v1 field of t, and whether it lies
// inside a map-valued field (labels, ...), whose keys are data, not shape.
func confSchema(t reflect.Type, path string) (defined, inMap bool) {
	for _, seg := range confSegments(path) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map:
			return true, true
		case reflect.Slice:
			if seg != "[]" {
				return false, false
			}
			t = t.Elem()
		case reflect.Struct:
			f, ok := confField(t, seg)
			if !ok {
				return false, false
			}
			t = f.Type
		default:
			return false, false
		}
	}
	return true, false
}

func confField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func confJoin(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// confWalk records every field path of v with its JSON type.
func confWalk(v any, path string, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		if path != "" {
			out[path] = "object"
		}
		for k, c := range t {
			confWalk(c, confJoin(path, k), out)
		}
	case []any:
		out[path] = "array"
		for _, c := range t {
			confWalk(c, path+"[]", out)
		}
	case string:
		out[path] = "string"
	case json.Number:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	default:
		out[path] = "null"
	}
}

// confMaybeDropped are fields newer recordings dropped from Compute
// objects: their absence from a recording is no evidence.
var confMaybeDropped = map[string]bool{
	"sizeGb": true, "satisfiesPzi": true, "locked": true, "multiWriter": true, "enableConfidentialCompute": true,
}

// confMaybeDroppedTop are top-level fields newer recordings dropped from
// some kinds.
var confMaybeDroppedTop = map[string]map[string]bool{
	"compute#route":     {"description": true, "warnings": true},
	"compute#operation": {"warnings": true},
	"compute#network":   {"routingConfig": true},
}

// confData are recorded paths that hold what users put in a project, not
// what GCE adds: the emulator's fresh project does not have them.
var confData = map[string][]string{
	"compute#project": {"commonInstanceMetadata.items"},
}

// confCutDownImage are the only keys newer recordings kept of Debian images.
var confCutDownImage = map[string]bool{"kind": true, "name": true, "family": true, "status": true, "selfLink": true}

var confEnumValue = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Z]{2,}[0-9]*$`)

// confCompare lists how got differs from the recorded response rec in what
// the corpus can tell.
func confCompare(x confExchange, rec, got any, tolerate map[string]bool) []string {
	recM, _ := rec.(map[string]any)
	gotM, _ := got.(map[string]any)
	if recM == nil || gotM == nil {
		if (rec == nil) != (got == nil) {
			return []string{fmt.Sprintf("body %v, recorded %v", got, rec)}
		}
		return nil
	}
	kind, _ := recM["kind"].(string)
	typ := confKinds[kind]
	recPaths, gotPaths := map[string]string{}, map[string]string{}
	confWalk(recM, "", recPaths)
	confWalk(gotM, "", gotPaths)
	if typ != nil {
		// Fields v1 does not define come from beta calls. The recorder
		// marked a line beta only when a nested link said so, so they
		// are dropped from every line.
		for p := range recPaths {
			if defined, inMap := confSchema(typ, p); inMap || !defined {
				delete(recPaths, p)
			}
		}
		for p := range gotPaths {
			if _, inMap := confSchema(typ, p); inMap {
				delete(gotPaths, p)
			}
		}
	}
	cutDown := kind == "compute#image"
	for k := range recM {
		cutDown = cutDown && confCutDownImage[k]
	}
	var missing, extra, types []string
	for p, rt := range recPaths {
		gt, ok := gotPaths[p]
		switch {
		case !ok && confIsData(kind, p):
		case !ok:
			missing = append(missing, p)
		case gt != rt:
			types = append(types, fmt.Sprintf("%s is a %s, recorded %s", p, gt, rt))
		}
	}
	for p := range gotPaths {
		if _, ok := recPaths[p]; ok || cutDown {
			continue
		}
		segs := confSegments(p)
		optional := confMaybeDroppedTop[kind][segs[0]] || tolerate[segs[0]]
		for _, s := range segs {
			optional = optional || confMaybeDropped[s]
		}
		if !optional {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	sort.Strings(types)
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing "+strings.Join(missing, " "))
	}
	if len(extra) > 0 {
		problems = append(problems, "extra "+strings.Join(extra, " "))
	}
	problems = append(problems, types...)
	var values []string
	confValues("", "", recM, gotM, false, &values)
	sort.Strings(values)
	return append(problems, values...)
}

func confIsData(kind, path string) bool {
	for _, prefix := range confData[kind] {
		if path == prefix || strings.HasPrefix(path, prefix+".") || strings.HasPrefix(path, prefix+"[]") {
			return true
		}
	}
	return false
}

// confValues compares what the corpus fixes among values: kinds,
// enumerations, operation progress, error details, and the form of links.
func confValues(key, path string, rec, got any, linksOnly bool, out *[]string) {
	switch rv := rec.(type) {
	case map[string]any:
		gv, ok := got.(map[string]any)
		if !ok {
			return
		}
		for k, c := range rv {
			if g, ok := gv[k]; ok {
				confValues(k, confJoin(path, k), c, g, linksOnly, out)
			}
		}
	case []any:
		gv, ok := got.([]any)
		if !ok || len(rv) == 0 {
			return
		}
		// Lists of different lengths (a region's subnets, quotas) are
		// different lists: only the form of their links is compared.
		for i, g := range gv {
			j := min(i, len(rv)-1)
			confValues(key, path+"[]", rv[j], g, linksOnly || len(gv) != len(rv), out)
		}
	case string:
		gv, ok := got.(string)
		if !ok {
			return
		}
		if p := confLinkProblem(rv, gv); p != "" {
			*out = append(*out, path+": "+p)
			return
		}
		if linksOnly || rv == gv {
			return
		}
		if key == "status" && rv == "PENDING" && gv == "RUNNING" {
			return // both are "not started yet" to a client
		}
		inError := strings.HasPrefix(path, "error.")
		switch {
		case key == "kind", key == "operationType", key == "status", key == "httpErrorMessage",
			inError && (key == "reason" || key == "domain" || key == "message" || key == "code"),
			confEnumValue.MatchString(rv) && key != "value" && key != "description" && key != "name":
			*out = append(*out, fmt.Sprintf("%s = %q, recorded %q", path, gv, rv))
		}
	case json.Number:
		gv, ok := got.(json.Number)
		if !ok || linksOnly || rv == gv {
			return
		}
		switch path {
		case "progress", "httpErrorStatusCode", "error.code":
			*out = append(*out, fmt.Sprintf("%s = %s, recorded %s", path, gv, rv))
		}
	}
}

const confGCELinks = "https://www.googleapis.com/compute/"

// confLinkProblem: wherever GCE returned an absolute link the emulator must
// too, with /compute/v1/ and the same path form; a reference GCE kept as
// sent must not become a link.
func confLinkProblem(rec, got string) string {
	switch {
	case strings.HasPrefix(rec, confGCELinks):
		if !strings.HasPrefix(got, confGCELinks+"v1/") {
			return fmt.Sprintf("%q is not an absolute /compute/v1/ link like the recorded %q", got, rec)
		}
		if a, b := confLinkPattern(got), confLinkPattern(rec); a != b {
			return fmt.Sprintf("link form %s, recorded %s", a, b)
		}
	case strings.HasPrefix(got, "https://") && !strings.HasPrefix(rec, "https://") && strings.Contains(rec, "/"):
		return fmt.Sprintf("%q made absolute; GCE kept %q as sent", got, rec)
	}
	return ""
}

// confLinkPattern reduces a link to its form: names become *.
func confLinkPattern(link string) string {
	i := strings.Index(link, "/compute/")
	if i < 0 {
		return link
	}
	_, rest, _ := strings.Cut(link[i+len("/compute/"):], "/")
	segs := strings.Split(rest, "/")
	for j := range segs {
		if j == len(segs)-1 || (j > 0 && (segs[j-1] == "projects" || segs[j-1] == "zones" || segs[j-1] == "regions")) {
			segs[j] = "*"
		}
	}
	return strings.Join(segs, "/")
}

// ---------------------------------------------------------------------------
// The test.

func TestConformance(t *testing.T) {
	if *confSource != "" {
		confRegenerate(t, *confSource)
	}
	manifest := confManifest(t)
	type result struct{ compared, mismatched int }
	results := map[string]*result{}
	for _, set := range []string{"recorded", "unverified"} {
		scs := confGroup(confLoad(t, set))
		t.Run(set, func(t *testing.T) {
			for _, sc := range scs {
				res := &result{}
				results[set+"/"+sc.source] = res
				t.Run(confShort(sc.source), func(t *testing.T) {
					t.Parallel()
					report := t.Errorf
					if set == "unverified" {
						// Possibly KCC's own fake: a hint, never ground truth.
						report = t.Logf
					}
					r := newConfReplayer(t, sc, report)
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

// confManifestSet counts one set's decisions from selection.tsv.
type confManifestSet struct {
	total, replayed int
	skipped         map[string]int // by reason
}

func confManifest(t *testing.T) map[string]*confManifestSet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(confDir, "selection.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*confManifestSet{"recorded": {skipped: map[string]int{}}, "unverified": {skipped: map[string]int{}}}
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

func confSortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestConformanceCompare pins down what the comparison checks and what it
// lets pass, so that a lenient change to it cannot go unnoticed.
func TestConformanceCompare(t *testing.T) {
	t.Parallel()
	const base = `"kind":"compute#disk","name":"d","selfLink":"https://www.googleapis.com/compute/v1/projects/p/zones/z/disks/d"`
	for _, tc := range []struct {
		name      string
		beta      bool
		rec, got  string
		tolerate  string
		wantProbs []string
	}{
		{name: "same shape, other values", rec: `{` + base + `,"sizeGb":"10","status":"READY"}`,
			got: `{"kind":"compute#disk","name":"x","selfLink":"https://www.googleapis.com/compute/v1/projects/q/zones/y/disks/x","sizeGb":"500","status":"READY"}`},
		{name: "missing and extra fields", rec: `{` + base + `,"users":["https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/i"]}`,
			got:       `{` + base + `,"description":""}`,
			wantProbs: []string{"missing users users[]", "extra description"}},
		{name: "fields newer recordings dropped may be extra", rec: `{` + base + `}`, got: `{` + base + `,"satisfiesPzi":true,"sizeGb":"10"}`},
		{name: "fields v1 does not define are ignored", beta: true,
			rec: `{"kind":"compute#instance","shieldedVmConfig":{"enableVtpm":true}}`, got: `{"kind":"compute#instance"}`},
		{name: "map keys are data", rec: `{` + base + `,"labels":{"a":"1"}}`, got: `{` + base + `,"labels":{"b":"2"}}`},
		{name: "enumeration value", rec: `{` + base + `,"status":"READY"}`, got: `{` + base + `,"status":"CREATING"}`,
			wantProbs: []string{`status = "CREATING", recorded "READY"`}},
		{name: "int64 as a number", rec: `{` + base + `,"sizeGb":"10"}`, got: `{` + base + `,"sizeGb":10}`,
			wantProbs: []string{"sizeGb is a number, recorded string"}},
		{name: "beta link accepted as v1, relative link refused",
			rec:       `{"kind":"compute#disk","type":"https://www.googleapis.com/compute/beta/projects/p/zones/z/diskTypes/pd-standard"}`,
			got:       `{"kind":"compute#disk","type":"projects/p/zones/z/diskTypes/pd-standard"}`,
			wantProbs: []string{`type: "projects/p/zones/z/diskTypes/pd-standard" is not an absolute /compute/v1/ link like the recorded "https://www.googleapis.com/compute/beta/projects/p/zones/z/diskTypes/pd-standard"`}},
		{name: "link form", rec: `{` + base + `}`,
			got:       `{"kind":"compute#disk","name":"d","selfLink":"https://www.googleapis.com/compute/v1/projects/p/global/disks/d"}`,
			wantProbs: []string{"selfLink: link form projects/*/global/disks/*, recorded projects/*/zones/*/disks/*"}},
		{name: "reference kept as sent", rec: `{"kind":"compute#instanceTemplate","properties":{"machineType":"projects/p/zones/z/machineTypes/n1"}}`,
			got:       `{"kind":"compute#instanceTemplate","properties":{"machineType":"https://www.googleapis.com/compute/v1/projects/p/zones/z/machineTypes/n1"}}`,
			wantProbs: []string{`properties.machineType: "https://www.googleapis.com/compute/v1/projects/p/zones/z/machineTypes/n1" made absolute; GCE kept "projects/p/zones/z/machineTypes/n1" as sent`}},
		{name: "operation progression", rec: `{"kind":"compute#operation","status":"RUNNING","progress":0}`,
			got:       `{"kind":"compute#operation","status":"DONE","progress":100,"endTime":"t"}`,
			wantProbs: []string{"extra endTime", "progress = 100, recorded 0", `status = "DONE", recorded "RUNNING"`}},
		{name: "pending is running", rec: `{"kind":"compute#operation","status":"PENDING"}`,
			got: `{"kind":"compute#operation","status":"RUNNING","startTime":"t"}`, tolerate: "startTime"},
		{name: "error details", rec: `{"error":{"code":404,"message":"The resource 'a' was not found","errors":[{"domain":"global","reason":"notFound","message":"The resource 'a' was not found"}]}}`,
			got: `{"error":{"code":404,"message":"The resource 'b' was not found","errors":[{"domain":"global","reason":"notFound","message":"The resource 'b' was not found"}]}}`,
			wantProbs: []string{`error.errors[].message = "The resource 'b' was not found", recorded "The resource 'a' was not found"`,
				`error.message = "The resource 'b' was not found", recorded "The resource 'a' was not found"`}},
		{name: "lists of another length compare links only", rec: `{"kind":"compute#zone","availableCpuPlatforms":["A","B"]}`,
			got: `{"kind":"compute#zone","availableCpuPlatforms":["C"]}`},
		{name: "project data", rec: `{"kind":"compute#project","commonInstanceMetadata":{"kind":"compute#metadata","items":[{"key":"k","value":"v"}]}}`,
			got: `{"kind":"compute#project","commonInstanceMetadata":{"kind":"compute#metadata"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := confDecode([]byte(tc.rec))
			if err != nil {
				t.Fatal(err)
			}
			got, err := confDecode([]byte(tc.got))
			if err != nil {
				t.Fatal(err)
			}
			x := confExchange{APIVersion: "v1"}
			if tc.beta {
				x.APIVersion = "beta"
			}
			tolerate := map[string]bool{}
			if tc.tolerate != "" {
				tolerate[tc.tolerate] = true
			}
			probs := confCompare(x, rec, got, tolerate)
			sort.Strings(probs)
			want := append([]string(nil), tc.wantProbs...)
			sort.Strings(want)
			if diff := cmp.Diff(want, probs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
