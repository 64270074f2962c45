package test

// The gcloud smoke test runs the real gcloud CLI against gce-emulator, with
// the commands that correspond to hakube's flows, and checks what gcloud
// prints. gcloud waits on operations itself, so the test never sleeps.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	gcloudProject = "gcloud-smoke"
	gcloudRegion  = "europe-west1"
	gcloudZone    = "europe-west1-b"
	gcloudZone2   = "europe-west1-c"
)

func TestGcloud(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the gcloud smoke test runs gcloud about 70 times (a minute or more)")
	}
	bin, err := exec.LookPath("gcloud")
	if err != nil {
		t.Fatal("gcloud is not on PATH: this test drives the real gcloud CLI against the emulator; install the Google Cloud CLI")
	}
	// No data plane: the test is about the API gcloud sees.
	endpoint := startEmulator(t, "--project", gcloudProject, "--latency", "fast", "--dataplane=false")
	g := &gcloudCLI{bin: bin, endpoint: endpoint}
	link := func(path string) string { return endpoint + "projects/" + gcloudProject + "/" + path }
	region, zone := "--region="+gcloudRegion, "--zone="+gcloudZone

	// Independent flows run at the same time: gcloud spends a second or two
	// starting up for every command. They are not t.Parallel subtests,
	// which -parallel (GOMAXPROCS by default) would queue.
	flows := map[string]func(t *testing.T){
		"addresses-firewalls-disks": func(t *testing.T) {
			g := g.session(t)
			a := g.one(t, "compute", "addresses", "create", "plain-ip", region)
			if a["status"] != "RESERVED" || a["addressType"] != "EXTERNAL" || a["address"] == "" {
				t.Errorf("created address %v", a)
			}
			if d := g.object(t, "compute", "addresses", "describe", "plain-ip", region); d["address"] != a["address"] {
				t.Errorf("described address %v, created %v", d["address"], a["address"])
			}
			if names := gcloudNames(g.list(t, "compute", "addresses", "list", "--regions="+gcloudRegion)); !slices.Contains(names, "plain-ip") {
				t.Errorf("addresses list %v lacks plain-ip", names)
			}
			g.run(t, "compute", "addresses", "delete", "plain-ip", region)
			g.fails(t, "was not found", "compute", "addresses", "describe", "plain-ip", region)

			g.run(t, "compute", "firewall-rules", "create", "allow-api", "--allow=tcp:443,tcp:6443",
				"--source-ranges=0.0.0.0/0", "--target-tags=master")
			fw := g.object(t, "compute", "firewall-rules", "describe", "allow-api")
			// gcloud sends one entry per --allow item.
			want := []any{map[string]any{"IPProtocol": "tcp", "ports": []any{"443"}}, map[string]any{"IPProtocol": "tcp", "ports": []any{"6443"}}}
			if diff := cmp.Diff(want, fw["allowed"]); diff != "" {
				t.Errorf("firewall allowed (-want +got):\n%s", diff)
			}
			if fw["direction"] != "INGRESS" || !cmp.Equal(fw["targetTags"], []any{"master"}) || fw["network"] != link("global/networks/default") {
				t.Errorf("firewall %v", fw)
			}
			g.run(t, "compute", "firewall-rules", "delete", "allow-api")

			g.run(t, "compute", "disks", "create", "data-disk", zone, "--size=20GB")
			if d := g.object(t, "compute", "disks", "describe", "data-disk", zone); d["status"] != "READY" || d["sizeGb"] != "20" {
				t.Errorf("disk status %v size %v", d["status"], d["sizeGb"])
			}
			g.run(t, "compute", "disks", "delete", "data-disk", zone)
		},
		"instance-network": func(t *testing.T) {
			g := g.session(t)
			ip := g.one(t, "compute", "addresses", "create", "master-ip", region)["address"].(string)
			g.run(t, "compute", "disks", "create", "master-pd", zone, "--size=10GB")
			vm := g.one(t, "compute", "instances", "create", "master", zone, "--machine-type=e2-small",
				"--address="+ip, "--disk=name=master-pd,device-name=master-pd", "--metadata=cluster=smoke,role=master",
				"--tags=master,https", "--labels=cluster=smoke")
			if vm["status"] != "RUNNING" || gcloudNatIP(vm) != ip {
				t.Errorf("created instance status %v natIP %q, want RUNNING on %s", vm["status"], gcloudNatIP(vm), ip)
			}
			var disks []string
			for _, d := range vm["disks"].([]any) {
				disks = append(disks, gcloudLast(d.(map[string]any)["source"].(string)))
			}
			if !cmp.Equal(disks, []string{"master", "master-pd"}) {
				t.Errorf("disks %v, want the boot disk and master-pd", disks)
			}
			if !cmp.Equal(vm["tags"].(map[string]any)["items"], []any{"master", "https"}) ||
				!cmp.Equal(vm["labels"], map[string]any{"cluster": "smoke"}) ||
				!cmp.Equal(gcloudMetadata(vm), map[string]string{"cluster": "smoke", "role": "master"}) {
				t.Errorf("tags %v labels %v metadata %v", vm["tags"], vm["labels"], gcloudMetadata(vm))
			}
			addr := g.object(t, "compute", "addresses", "describe", "master-ip", region)
			if addr["status"] != "IN_USE" || !cmp.Equal(addr["users"], []any{link("zones/" + gcloudZone + "/instances/master")}) {
				t.Errorf("address with its instance: status %v users %v", addr["status"], addr["users"])
			}
			if names := gcloudNames(g.list(t, "compute", "instances", "list", "--zones="+gcloudZone)); !slices.Contains(names, "master") {
				t.Errorf("instances list %v lacks master", names)
			}

			// The IP moves away and back, as hakube moves a master's IP.
			g.run(t, "compute", "instances", "delete-access-config", "master", zone, "--access-config-name=external-nat")
			if nat := gcloudNatIP(g.object(t, "compute", "instances", "describe", "master", zone)); nat != "" {
				t.Errorf("natIP %q after delete-access-config", nat)
			}
			if a := g.object(t, "compute", "addresses", "describe", "master-ip", region); a["status"] != "RESERVED" || a["users"] != nil {
				t.Errorf("released address: status %v users %v", a["status"], a["users"])
			}
			g.run(t, "compute", "instances", "add-access-config", "master", zone, "--access-config-name=external-nat", "--address="+ip)
			g.run(t, "compute", "instances", "add-metadata", "master", zone, "--metadata=kubeconfig=ready")
			vm = g.object(t, "compute", "instances", "describe", "master", zone)
			if gcloudNatIP(vm) != ip || gcloudMetadata(vm)["kubeconfig"] != "ready" || gcloudMetadata(vm)["role"] != "master" {
				t.Errorf("after add-access-config and add-metadata: natIP %q metadata %v", gcloudNatIP(vm), gcloudMetadata(vm))
			}

			// kube-down's delete: gcloud first marks every disk autoDelete
			// (instances.setDiskAutoDelete), so both disks go with the VM.
			g.run(t, "compute", "instances", "delete", "master", zone, "--delete-disks=all")
			if names := gcloudNames(g.list(t, "compute", "disks", "list")); slices.Contains(names, "master") || slices.Contains(names, "master-pd") {
				t.Errorf("disks %v after the master was deleted with --delete-disks=all", names)
			}
			g.run(t, "compute", "addresses", "delete", "master-ip", region)
		},
		"instance-lifecycle": func(t *testing.T) {
			g := g.session(t)
			// Several instances in one command go through the batch endpoint.
			vms := g.list(t, "compute", "instances", "create", "worker", "worker-2", zone, "--machine-type=e2-small", "--no-address")
			if names := gcloudNames(vms); !cmp.Equal(names, []string{"worker", "worker-2"}) {
				t.Fatalf("created %v, want worker and worker-2", names)
			}
			for _, vm := range vms {
				if vm["status"] != "RUNNING" || gcloudNatIP(vm) != "" {
					t.Errorf("created instance %v status %v natIP %q, want RUNNING without an external IP", vm["name"], vm["status"], gcloudNatIP(vm))
				}
			}
			g.run(t, "compute", "instances", "stop", "worker", zone)
			if s := g.object(t, "compute", "instances", "describe", "worker", zone)["status"]; s != "TERMINATED" {
				t.Errorf("stopped instance status %v, want TERMINATED", s)
			}
			g.run(t, "compute", "instances", "start", "worker", zone)
			if s := g.object(t, "compute", "instances", "describe", "worker", zone)["status"]; s != "RUNNING" {
				t.Errorf("started instance status %v, want RUNNING", s)
			}
			g.run(t, "compute", "instances", "delete", "worker", "worker-2", zone)
			g.fails(t, "was not found", "compute", "instances", "describe", "worker-2", zone)
		},
		"managed-instance-group": func(t *testing.T) {
			g := g.session(t)
			g.run(t, "compute", "instance-templates", "create", "node-tpl", "--machine-type=e2-small", "--no-address",
				"--tags=node", "--metadata=role=node")
			tpl := g.object(t, "compute", "instance-templates", "describe", "node-tpl")
			if props := tpl["properties"].(map[string]any); props["machineType"] != "e2-small" {
				t.Errorf("template machineType %v, want the bare name", props["machineType"])
			}
			// gcloud lists templates through aggregated/instanceTemplates.
			if names := gcloudNames(g.list(t, "compute", "instance-templates", "list")); !slices.Contains(names, "node-tpl") {
				t.Errorf("instance-templates list %v lacks node-tpl", names)
			}
			g.run(t, "compute", "instance-groups", "managed", "create", "nodes", zone, "--template=node-tpl",
				"--size=2", "--base-instance-name=node")
			g.run(t, "compute", "instance-groups", "managed", "resize", "nodes", zone, "--size=3")
			g.run(t, "compute", "instance-groups", "managed", "wait-until", "nodes", zone, "--stable")
			mig := g.object(t, "compute", "instance-groups", "managed", "describe", "nodes", zone)
			if mig["targetSize"] != float64(3) || mig["status"].(map[string]any)["isStable"] != true {
				t.Errorf("group targetSize %v status %v", mig["targetSize"], mig["status"])
			}
			members := g.list(t, "compute", "instance-groups", "managed", "list-instances", "nodes", zone)
			if len(members) != 3 {
				t.Fatalf("list-instances: %d members, want 3", len(members))
			}
			for _, m := range members {
				if m["currentAction"] != "NONE" || m["instanceStatus"] != "RUNNING" || !strings.HasPrefix(gcloudLast(m["instance"].(string)), "node-") {
					t.Errorf("member %v", m)
				}
			}
			// Listing groups in several zones batches a call per zone. This
			// group has no --base-instance-name: gcloud leaves the field out
			// and GCE takes the group name.
			g.run(t, "compute", "instance-groups", "managed", "create", "empty", "--zone="+gcloudZone2, "--template=node-tpl",
				"--size=0")
			if base := g.object(t, "compute", "instance-groups", "managed", "describe", "empty", "--zone="+gcloudZone2)["baseInstanceName"]; base != "empty" {
				t.Errorf("baseInstanceName %v, want the group's name", base)
			}
			groups := map[string]string{}
			for _, m := range g.list(t, "compute", "instance-groups", "managed", "list") {
				groups[fmt.Sprint(m["name"])] = gcloudLast(fmt.Sprint(m["zone"]))
			}
			if want := map[string]string{"nodes": gcloudZone, "empty": gcloudZone2}; !cmp.Equal(groups, want) {
				t.Errorf("managed list: %v, want %v", groups, want)
			}
			g.run(t, "compute", "instance-groups", "managed", "delete", "nodes", zone)
			g.run(t, "compute", "instance-groups", "managed", "delete", "empty", "--zone="+gcloudZone2)
			g.run(t, "compute", "instance-templates", "delete", "node-tpl")
		},
		"target-pool": func(t *testing.T) {
			g := g.session(t)
			g.run(t, "compute", "http-health-checks", "create", "apiserver", "--port=8080", "--request-path=/healthz")
			if hc := g.object(t, "compute", "http-health-checks", "describe", "apiserver"); hc["port"] != float64(8080) || hc["requestPath"] != "/healthz" {
				t.Errorf("health check %v", hc)
			}
			g.run(t, "compute", "instances", "create", "backend", zone, "--machine-type=e2-small", "--no-address")
			g.run(t, "compute", "target-pools", "create", "masters", region)
			g.run(t, "compute", "target-pools", "add-instances", "masters", region, "--instances=backend", "--instances-zone="+gcloudZone)
			g.run(t, "compute", "target-pools", "add-health-checks", "masters", region, "--http-health-check=apiserver")
			backend := link("zones/" + gcloudZone + "/instances/backend")
			health := g.list(t, "compute", "target-pools", "get-health", "masters", region)
			if len(health) != 1 || health[0]["healthStatus"].([]any)[0].(map[string]any)["instance"] != backend {
				t.Errorf("get-health %v", health)
			}
			g.run(t, "compute", "target-pools", "remove-instances", "masters", region, "--instances=backend", "--instances-zone="+gcloudZone)
			pool := g.object(t, "compute", "target-pools", "describe", "masters", region)
			if pool["instances"] != nil || !cmp.Equal(pool["healthChecks"], []any{link("global/httpHealthChecks/apiserver")}) {
				t.Errorf("pool instances %v healthChecks %v", pool["instances"], pool["healthChecks"])
			}
			g.run(t, "compute", "target-pools", "delete", "masters", region)
			g.run(t, "compute", "http-health-checks", "delete", "apiserver")
			g.run(t, "compute", "instances", "delete", "backend", zone)
		},
		"forwarding-rule": func(t *testing.T) {
			g := g.session(t)
			g.run(t, "compute", "target-pools", "create", "front", region)
			ip := g.one(t, "compute", "addresses", "create", "lb-ip", region)["address"].(string)
			g.run(t, "compute", "forwarding-rules", "create", "apiserver", region, "--target-pool=front",
				"--address=lb-ip", "--ports=443")
			fr := g.object(t, "compute", "forwarding-rules", "describe", "apiserver", region)
			if fr["IPAddress"] != ip || fr["portRange"] != "443-443" || fr["IPProtocol"] != "TCP" || fr["target"] != link("regions/"+gcloudRegion+"/targetPools/front") {
				t.Errorf("forwarding rule %v", fr)
			}
			addr := g.object(t, "compute", "addresses", "describe", "lb-ip", region)
			if addr["status"] != "IN_USE" || !cmp.Equal(addr["users"], []any{link("regions/" + gcloudRegion + "/forwardingRules/apiserver")}) {
				t.Errorf("address behind the rule: status %v users %v", addr["status"], addr["users"])
			}
			g.run(t, "compute", "forwarding-rules", "delete", "apiserver", region)
			if a := g.object(t, "compute", "addresses", "describe", "lb-ip", region); a["status"] != "RESERVED" {
				t.Errorf("address status %v after its rule is gone", a["status"])
			}
			g.run(t, "compute", "target-pools", "delete", "front", region)
			g.run(t, "compute", "addresses", "delete", "lb-ip", region)
		},
		"alias-ranges": func(t *testing.T) {
			// gcloud reads the subnetwork and patches its secondary ranges
			// with the fingerprint it read.
			g := g.session(t)
			g.run(t, "compute", "networks", "create", "pods-net", "--subnet-mode=custom")
			g.run(t, "compute", "networks", "subnets", "create", "nodes", region, "--network=pods-net", "--range=10.0.0.0/20")
			g.run(t, "compute", "networks", "subnets", "update", "nodes", region, "--add-secondary-ranges=pods=10.64.0.0/14")
			sn := g.object(t, "compute", "networks", "subnets", "describe", "nodes", region)
			if want := []any{map[string]any{"rangeName": "pods", "ipCidrRange": "10.64.0.0/14"}}; !cmp.Equal(sn["secondaryIpRanges"], want) {
				t.Errorf("secondary ranges %v, want %v", sn["secondaryIpRanges"], want)
			}
			vm := g.one(t, "compute", "instances", "create", "pod-vm", zone, "--machine-type=e2-small",
				"--network-interface=subnet=nodes,aliases=pods:/24,no-address")
			nic := vm["networkInterfaces"].([]any)[0].(map[string]any)
			if want := []any{map[string]any{"ipCidrRange": "10.64.0.0/24", "subnetworkRangeName": "pods"}}; !cmp.Equal(nic["aliasIpRanges"], want) {
				t.Errorf("alias ranges %v, want %v", nic["aliasIpRanges"], want)
			}
			g.fails(t, "is already being used by", "compute", "networks", "subnets", "update", "nodes", region, "--remove-secondary-ranges=pods")
			g.run(t, "compute", "instances", "delete", "pod-vm", zone)
			g.run(t, "compute", "networks", "subnets", "update", "nodes", region, "--remove-secondary-ranges=pods")
			if sn := g.object(t, "compute", "networks", "subnets", "describe", "nodes", region); sn["secondaryIpRanges"] != nil {
				t.Errorf("secondary ranges %v after removing them", sn["secondaryIpRanges"])
			}
			g.run(t, "compute", "networks", "subnets", "delete", "nodes", region)
			g.run(t, "compute", "networks", "delete", "pods-net")
		},
		"catalogue": func(t *testing.T) {
			g := g.session(t)
			zones := gcloudNames(g.list(t, "compute", "zones", "list", "--filter=region:"+gcloudRegion))
			sort.Strings(zones)
			if want := []string{"europe-west1-b", "europe-west1-c", "europe-west1-d"}; !cmp.Equal(zones, want) {
				t.Errorf("zones %v, want %v", zones, want)
			}
			r := g.object(t, "compute", "regions", "describe", gcloudRegion)
			if r["status"] != "UP" || len(r["zones"].([]any)) != 3 || len(r["quotas"].([]any)) == 0 {
				t.Errorf("region %v", r)
			}
		},
	}
	var wg sync.WaitGroup
	for name, flow := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, flow)
		}()
	}
	wg.Wait()

	// Every flow left its operations behind.
	types := map[string]bool{}
	for _, op := range g.session(t).list(t, "compute", "operations", "list") {
		if op["status"] != "DONE" || op["error"] != nil {
			t.Errorf("operation %v %v: status %v error %v", op["operationType"], op["targetLink"], op["status"], op["error"])
		}
		types[fmt.Sprint(op["operationType"])] = true
	}
	for _, want := range []string{"insert", "delete", "stop", "start", "addAccessConfig", "deleteAccessConfig", "setMetadata",
		"AddInstance", "RemoveInstance", "compute.instanceGroupManagers.insert", "compute.instanceTemplates.insert",
		"setDiskAutoDelete", "compute.subnetworks.patch"} {
		if !types[want] {
			t.Errorf("operations list has no %s operation (types: %v)", want, types)
		}
	}
}

// gcloudCLI runs gcloud against the emulator. Each session has its own
// configuration directory, so that parallel gcloud processes never share
// state.
type gcloudCLI struct {
	bin, endpoint, config string
}

func (g *gcloudCLI) session(t *testing.T) *gcloudCLI {
	s := *g
	s.config = t.TempDir()
	return &s
}

// exec runs one gcloud command and returns its stdout, stderr and error.
func (g *gcloudCLI) exec(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, append(args, "--quiet", "--format=json")...)
	cmd.Env = append(os.Environ(),
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE="+g.endpoint,
		"CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true",
		"CLOUDSDK_CORE_PROJECT="+gcloudProject,
		"CLOUDSDK_CONFIG="+g.config,
		"CLOUDSDK_CORE_DISABLE_PROMPTS=1",
		"CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true",
		"CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true",
		"CLOUDSDK_SURVEY_DISABLE_PROMPTS=true",
		// Every session's fresh configuration would otherwise probe the
		// metadata server once, for up to 3 s where 169.254.169.254 drops
		// packets; and nobody reads the per-command log files.
		"CLOUDSDK_CORE_CHECK_GCE_METADATA=false",
		"CLOUDSDK_CORE_DISABLE_FILE_LOGGING=true",
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// run runs a command that must succeed and returns what it printed.
func (g *gcloudCLI) run(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, err := g.exec(t, args...)
	if err != nil {
		t.Fatalf("gcloud %s: %v\n%s", strings.Join(args, " "), err, errs)
	}
	return out
}

// fails runs a command that must fail with a message containing want.
func (g *gcloudCLI) fails(t *testing.T, want string, args ...string) {
	t.Helper()
	_, errs, err := g.exec(t, args...)
	if err == nil || !strings.Contains(errs, want) {
		t.Errorf("gcloud %s: error %v, stderr %q; want a failure saying %q", strings.Join(args, " "), err, errs, want)
	}
}

func (g *gcloudCLI) object(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(g.run(t, args...)), &v); err != nil {
		t.Fatalf("gcloud %s: output is not a JSON object: %v", strings.Join(args, " "), err)
	}
	return v
}

func (g *gcloudCLI) list(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	var v []map[string]any
	if err := json.Unmarshal([]byte(g.run(t, args...)), &v); err != nil {
		t.Fatalf("gcloud %s: output is not a JSON list: %v", strings.Join(args, " "), err)
	}
	return v
}

// one runs a create command, which prints the created resource in a list.
func (g *gcloudCLI) one(t *testing.T, args ...string) map[string]any {
	t.Helper()
	l := g.list(t, args...)
	if len(l) != 1 {
		t.Fatalf("gcloud %s printed %d resources, want 1", strings.Join(args, " "), len(l))
	}
	return l[0]
}

func gcloudNames(items []map[string]any) []string {
	var out []string
	for _, it := range items {
		out = append(out, fmt.Sprint(it["name"]))
	}
	return out
}

func gcloudLast(link string) string { return link[strings.LastIndexByte(link, '/')+1:] }

// gcloudNatIP is the external IP of an instance's first interface, if any.
func gcloudNatIP(vm map[string]any) string {
	nics, _ := vm["networkInterfaces"].([]any)
	if len(nics) == 0 {
		return ""
	}
	acs, _ := nics[0].(map[string]any)["accessConfigs"].([]any)
	if len(acs) == 0 {
		return ""
	}
	ip, _ := acs[0].(map[string]any)["natIP"].(string)
	return ip
}

func gcloudMetadata(vm map[string]any) map[string]string {
	out := map[string]string{}
	md, _ := vm["metadata"].(map[string]any)
	items, _ := md["items"].([]any)
	for _, it := range items {
		m := it.(map[string]any)
		out[fmt.Sprint(m["key"])] = fmt.Sprint(m["value"])
	}
	return out
}
