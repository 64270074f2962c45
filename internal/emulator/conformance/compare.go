package conformance

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

// kinds maps a response's kind to the v1 type that defines its fields.
var kinds = map[string]reflect.Type{}

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
		kinds[kind] = reflect.TypeOf(v)
	}
}

// segments splits "disks[].source" into "disks", "[]", "source".
func segments(path string) []string {
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

// schema reports whether path is a v1 field of t, and whether it lies
// inside a map-valued field (labels, ...), whose keys are data, not shape.
func schema(t reflect.Type, path string) (defined, inMap bool) {
	for _, seg := range segments(path) {
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
			f, ok := schemaField(t, seg)
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

func schemaField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walk records every field path of v with its JSON type.
func walk(v any, path string, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		if path != "" {
			out[path] = "object"
		}
		for k, c := range t {
			walk(c, joinPath(path, k), out)
		}
	case []any:
		out[path] = "array"
		for _, c := range t {
			walk(c, path+"[]", out)
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

// maybeDropped are fields newer recordings dropped from Compute
// objects: their absence from a recording is no evidence.
var maybeDropped = map[string]bool{
	"sizeGb": true, "satisfiesPzi": true, "locked": true, "multiWriter": true, "enableConfidentialCompute": true,
}

// maybeDroppedTop are top-level fields newer recordings dropped from
// some kinds.
var maybeDroppedTop = map[string]map[string]bool{
	"compute#route":     {"description": true, "warnings": true},
	"compute#operation": {"warnings": true},
	"compute#network":   {"routingConfig": true},
}

// projectData are recorded paths that hold what users put in a project, not
// what GCE adds: the emulator's fresh project does not have them.
var projectData = map[string][]string{
	"compute#project": {"commonInstanceMetadata.items"},
}

// cutDownImage are the only keys newer recordings kept of Debian images.
var cutDownImage = map[string]bool{"kind": true, "name": true, "family": true, "status": true, "selfLink": true}

var enumValue = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$|^[A-Z]{2,}[0-9]*$`)

// compare lists how got differs from the recorded response rec in what
// the corpus can tell.
func compare(x exchange, rec, got any, tolerate map[string]bool) []string {
	recM, _ := rec.(map[string]any)
	gotM, _ := got.(map[string]any)
	if recM == nil || gotM == nil {
		if (rec == nil) != (got == nil) {
			return []string{fmt.Sprintf("body %v, recorded %v", got, rec)}
		}
		return nil
	}
	kind, _ := recM["kind"].(string)
	typ := kinds[kind]
	recPaths, gotPaths := map[string]string{}, map[string]string{}
	walk(recM, "", recPaths)
	walk(gotM, "", gotPaths)
	if typ != nil {
		// Fields v1 does not define come from beta calls. The recorder
		// marked a line beta only when a nested link said so, so they
		// are dropped from every line.
		for p := range recPaths {
			if defined, inMap := schema(typ, p); inMap || !defined {
				delete(recPaths, p)
			}
		}
		for p := range gotPaths {
			if _, inMap := schema(typ, p); inMap {
				delete(gotPaths, p)
			}
		}
	}
	cutDown := kind == "compute#image"
	for k := range recM {
		cutDown = cutDown && cutDownImage[k]
	}
	var missing, extra, types []string
	for p, rt := range recPaths {
		gt, ok := gotPaths[p]
		switch {
		case !ok && isData(kind, p):
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
		segs := segments(p)
		optional := maybeDroppedTop[kind][segs[0]] || tolerate[segs[0]]
		for _, s := range segs {
			optional = optional || maybeDropped[s]
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
	compareValues("", "", recM, gotM, false, &values)
	sort.Strings(values)
	return append(problems, values...)
}

func isData(kind, path string) bool {
	for _, prefix := range projectData[kind] {
		if path == prefix || strings.HasPrefix(path, prefix+".") || strings.HasPrefix(path, prefix+"[]") {
			return true
		}
	}
	return false
}

// compareValues compares what the corpus fixes among values: kinds,
// enumerations, operation progress, error details, and the form of links.
func compareValues(key, path string, rec, got any, linksOnly bool, out *[]string) {
	switch rv := rec.(type) {
	case map[string]any:
		gv, ok := got.(map[string]any)
		if !ok {
			return
		}
		for k, c := range rv {
			if g, ok := gv[k]; ok {
				compareValues(k, joinPath(path, k), c, g, linksOnly, out)
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
			compareValues(key, path+"[]", rv[j], g, linksOnly || len(gv) != len(rv), out)
		}
	case string:
		gv, ok := got.(string)
		if !ok {
			return
		}
		if p := linkProblem(rv, gv); p != "" {
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
			enumValue.MatchString(rv) && key != "value" && key != "description" && key != "name":
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

const gceLinks = "https://www.googleapis.com/compute/"

// linkProblem: wherever GCE returned an absolute link the emulator must
// too, with /compute/v1/ and the same path form; a reference GCE kept as
// sent must not become a link.
func linkProblem(rec, got string) string {
	switch {
	case strings.HasPrefix(rec, gceLinks):
		if !strings.HasPrefix(got, gceLinks+"v1/") {
			return fmt.Sprintf("%q is not an absolute /compute/v1/ link like the recorded %q", got, rec)
		}
		if a, b := linkPattern(got), linkPattern(rec); a != b {
			return fmt.Sprintf("link form %s, recorded %s", a, b)
		}
	case strings.HasPrefix(got, "https://") && !strings.HasPrefix(rec, "https://") && strings.Contains(rec, "/"):
		return fmt.Sprintf("%q made absolute; GCE kept %q as sent", got, rec)
	}
	return ""
}

// linkPattern reduces a link to its form: names become *.
func linkPattern(link string) string {
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
