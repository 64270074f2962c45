package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	compute "google.golang.org/api/compute/v1"
)

// Per-scenario rules: what each recorded scenario needs to be replayed.

// scenarioRule says how one scenario is replayed. The zero rule replays every
// exchange up to the first one the emulator cannot replay.
type scenarioRule struct {
	skip string // the scenario is not replayed at all, and why
	cut  int    // replay only exchanges before this seq
	why  string // why the cut
	// drop lists exchanges left out ("46-49", "7,9") and why. Only
	// exchanges whose absence does not change the shape of what follows
	// (reads of foreign objects, value-only updates and their polls).
	drop map[string]string
	// split gives a second (third...) object its own name where the
	// recorder used one placeholder for several objects.
	split []splitRule
	// bind replaces real values in request bodies (IPs GCE had handed out)
	// by the ones the emulator handed out.
	bind []bindRule
	// stub creates, before an exchange, objects that existed on GCE
	// without a recorded Compute request (made by another service, or
	// before the recording began).
	stub map[int][]stubRequest
	// alias fixes what a placeholder stands for in the whole scenario.
	alias map[string]string
}

// splitRule: in the exchanges listed, placeholder ph names object number n
// (2, 3...) rather than the first one. "37#1" limits it to the second
// occurrence of ph in request 37 (path and body, keys in sorted order).
type splitRule struct {
	ph   string
	n    int
	seqs string
}

// bindRule: in request seq, literal stands for the value of field in the
// emulator's response to exchange from.
type bindRule struct {
	seq     int
	literal string
	from    int
	field   string
}

// stubRequest is one request, relative to /compute/v1/projects/{project}/,
// with placeholders, that must succeed.
type stubRequest struct {
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

// firewallStub is a firewall rule another controller kept on a network.
func firewallStub(name string) stubRequest {
	return stubRequest{"POST", "global/firewalls",
		`{"name":"` + name + `","network":"global/networks/${networkID}","allowed":[{"IPProtocol":"tcp","ports":["22"]}]}`}
}

var rules = map[string]scenarioRule{
	"compute/v1beta1/computeinstance/computeinstancebasicexample/_http.log": {
		drop: map[string]string{"46-49": whyValueOnly + " (setMachineType, setServiceAccount)"},
		// A boot disk and a data disk; an internal and an external address.
		split: []splitRule{{"${diskID}", 2, "7-10,33#1,67-69"}, {"${addressID}", 2, "25-30,59-61"}},
		// The instance takes the two addresses reserved before it.
		bind: []bindRule{{33, "34.169.196.191", 28, "address"}, {33, "10.138.0.27", 22, "address"}},
	},
	"compute/v1beta1/computetargetpool/_http.log": {
		// Two instances; a minimal pool, then a full one backed by it.
		split: []splitRule{{"${instanceID}", 2, "23-31,37#1,42,50-53"}, {"${targetPoolID}", 2, "36,37#1,38-46"}},
	},
	"compute/v1beta1/computeinstancegroup/_http.log": {
		drop: map[string]string{"29-47": "unmanaged instance groups (instanceGroups.insert, addInstances, removeInstances, " +
			"setNamedPorts, delete) are not implemented; the instances do not show their membership"},
		split: []splitRule{{"${instanceID}", 2, "19-27,48-51"}},
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
		split: []splitRule{{"${instanceID}", 2, "21-38,74-77"}},
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
		split: []splitRule{{"${diskID}", 2, "5,6#0,7-10"}},
	},
	"compute/v1beta1/computerouternat/_http.log": {
		split: []splitRule{{"${addressID}", 2, "19-24,40-42"}, {"${addressID}", 3, "25-30,46-48"}},
	},
	"compute/v1beta1/computenetworkpeering/_http.log": {
		split: []splitRule{{"${networkID}", 2, "5-8"}},
	},
	"compute/v1beta1/computerouternat/computerouternatprivate/_http.log": {
		split: []splitRule{{"${subnetworkID}", 2, "17-20,44-46"}, {"${subnetworkID}", 3, "21-24,41-43"}},
		// Firewall rules another controller kept on the network, replaced
		// twice while the test tried to delete the network.
		stub: map[int][]stubRequest{
			59: {firewallStub("${networkID}-ba5h4uquy4cktbsldj6ba2g3")},
			83: {firewallStub("${networkID}-odm2l5xrgkhkgaqqdwsg4qbt"), {"DELETE", "global/firewalls/${networkID}-ba5h4uquy4cktbsldj6ba2g3", ""}},
			92: {firewallStub("${networkID}-sdx6cy5czikkcypafr5rrpke"), {"DELETE", "global/firewalls/${networkID}-odm2l5xrgkhkgaqqdwsg4qbt", ""}},
		},
	},
	"compute/v1beta1/computerouternat/computerouternatprivate/_http_old_controller.log": {
		split: []splitRule{{"${subnetworkID}", 2, "17-20,43-45"}, {"${subnetworkID}", 3, "21-24,40-42"}},
		stub:  map[int][]stubRequest{58: {firewallStub("${networkID}-odm2l5xrgkhkgaqqdwsg4qbt")}},
	},
	"container/v1beta1/containercluster/containercluster-additionaliprangesconfigs/_http.log": {
		split: []splitRule{{"${subnetworkID}", 2, "9-12,20,54-56"}, {"${subnetworkID}", 3, "13-16,49-53"}},
	},
	"networkservices/v1alpha1/networkservicesauthzextension/networkservicesauthzextension-maximal/_http.log": {
		split: []splitRule{{"${subnetworkID}", 2, "9-12,36-38"}},
	},
	"networkservices/v1alpha1/networkservicesauthzextension/networkservicesauthzextension-minimal/_http.log": {
		split: []splitRule{{"${subnetworkID}", 2, "9-12,33-35"}},
	},
	"networkservices/v1alpha1/networkserviceslbrouteextension/lbrouteextension-basic/_http.log": {
		split: []splitRule{{"${subnetworkID}", 2, "9-12,73-75"}},
	},
	// Unverified set.
	"compute/v1beta1/computeforwardingrule/regionalcomputeforwardingruletcp/_http.log": {
		split: []splitRule{{"${subnetworkID}", 2, "9-12,46-48"}},
	},
	"compute/v1beta1/computeforwardingrule/regionalcomputeforwardingruletcp/_http_old_controller.log": {
		split: []splitRule{{"${subnetworkID}", 2, "9-12,46-48"}},
	},
	"mockgcp/mocknetworkservices/testdata/lbrouteextension/crud/_http.log": {
		split: []splitRule{{"${subnetworkID}", 2, "7-9,50-51"}},
	},
	"compute/v1beta1/computedisk/computediskfromsourcedisk/_http_old_controller.log": {
		split: []splitRule{{"${diskID}", 2, "5,6#0,7-10"}},
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

// autoDrop marks exchanges left out of every scenario.
func autoDrop(x exchange) string {
	if x.Resource == "instanceGroupManagers" && strings.Contains(x.Path, "/instanceGroupManagers/gke-") {
		return whyGKEMIG
	}
	if x.Resource == "subnetworks" && x.Method == http.MethodGet && bytes.Contains(x.ResponseBody, []byte(`"reservedInternalRange"`)) {
		return "GKE added secondary ranges to the subnet out of band"
	}
	return ""
}

// autoCut reports why a scenario must stop before x, if it must.
func autoCut(x exchange) string {
	if !replayable[x.Resource+"."+x.Action] {
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

// proxyRules reports whether the scenario's forwarding rules serve a
// backend service or a proxy, which the emulator does not implement.
func proxyRules(sc scenario) bool {
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

// seqSet parses "1,3-5,37#1" into whole exchanges and single
// occurrences.
type seqSet struct {
	whole map[int]bool
	occ   map[int]map[int]bool
}

func parseSeqs(s string) (seqSet, error) {
	set := seqSet{whole: map[int]bool{}, occ: map[int]map[int]bool{}}
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
