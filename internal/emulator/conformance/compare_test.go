package conformance

import (
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestCompare pins down what the comparison checks and what it
// lets pass, so that a lenient change to it cannot go unnoticed.
func TestCompare(t *testing.T) {
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
			rec, err := decode([]byte(tc.rec))
			if err != nil {
				t.Fatal(err)
			}
			got, err := decode([]byte(tc.got))
			if err != nil {
				t.Fatal(err)
			}
			x := exchange{APIVersion: "v1"}
			if tc.beta {
				x.APIVersion = "beta"
			}
			tolerate := map[string]bool{}
			if tc.tolerate != "" {
				tolerate[tc.tolerate] = true
			}
			probs := compare(x, rec, got, tolerate)
			sort.Strings(probs)
			want := append([]string(nil), tc.wantProbs...)
			sort.Strings(want)
			if diff := cmp.Diff(want, probs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
