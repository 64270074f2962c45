package kube

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
)

func TestBootstrapIsIdempotent(t *testing.T) {
	cs := fake.NewClientset()
	c := NewFromInterface(cs)
	ctx := context.Background()
	for range 2 {
		if err := c.Bootstrap(ctx, "abcdef.0123456789abcdef"); err != nil {
			t.Fatal(err)
		}
	}
	s, err := cs.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-abcdef", metav1.GetOptions{})
	if err != nil || s.Type != "bootstrap.kubernetes.io/token" || s.StringData["token-secret"] != "0123456789abcdef" || s.StringData["usage-bootstrap-authentication"] != "true" {
		t.Errorf("token secret %+v (%v)", s, err)
	}
	crbs, err := cs.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, b := range crbs.Items {
		got[b.Name] = b.RoleRef.Name + " ← " + b.Subjects[0].Name
	}
	want := map[string]string{
		"hakube:kubelet-bootstrap":                     "system:node-bootstrapper ← system:bootstrappers",
		"hakube:node-autoapprove-bootstrap":            "system:certificates.k8s.io:certificatesigningrequests:nodeclient ← system:bootstrappers",
		"hakube:node-autoapprove-certificate-rotation": "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient ← system:nodes",
		"kubeadm:cluster-admins":                       "cluster-admin ← kubeadm:cluster-admins",
		"hakube:node-proxier":                          "system:node-proxier ← system:nodes",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bindings (-want +got):\n%s", diff)
	}
	if err := c.Bootstrap(ctx, "no-dot"); err == nil {
		t.Error("a malformed token was accepted")
	}
}

// A pool's removal deletes its VMs' Nodes only: not another zone's, not a
// master's, not those of a group whose base name extends this one's.
func TestDeleteNodesOf(t *testing.T) {
	node := func(name, zone string, labels ...string) *corev1.Node {
		l := map[string]string{corev1.LabelTopologyZone: zone}
		for _, k := range labels {
			l[k] = ""
		}
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	}
	cs := fake.NewClientset(
		node("kubernetes-minion-group-ab12", "europe-west1-b"),
		node("kubernetes-minion-group-zz9z", "europe-west1-b"),
		node("kubernetes-minion-group-1-ab12", "europe-west1-b"), // group -1, kept
		node("kubernetes-minion-group-abcde", "europe-west1-b"),  // not a group's VM name
		node("kubernetes-minion-group-cd34", "europe-west1-c"),   // another zone
		node("kubernetes-minion-group-ef56", "europe-west1-b", "node-role.kubernetes.io/control-plane"),
		node("kubernetes-master", "europe-west1-b"),
	)
	n, err := NewFromInterface(cs).DeleteNodesOf(context.Background(), "europe-west1-b", []string{"kubernetes-minion-group"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, n := range list.Items {
		left = append(left, n.Name)
	}
	want := []string{"kubernetes-master", "kubernetes-minion-group-1-ab12", "kubernetes-minion-group-abcde",
		"kubernetes-minion-group-cd34", "kubernetes-minion-group-ef56"}
	if diff := cmp.Diff(want, left); n != 2 || diff != "" {
		t.Errorf("deleted %d (want 2); left (-want +got):\n%s", n, diff)
	}
}

func TestPrepareMasterAndNodes(t *testing.T) {
	cs := fake.NewClientset(&corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "kubernetes-master"},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	})
	c := NewFromInterface(cs)
	ctx := context.Background()
	if ok, err := c.PrepareMaster(ctx, "kubernetes-master-abc"); ok || err != nil {
		t.Errorf("a master that has not registered: %v %v", ok, err)
	}
	if ok, err := c.PrepareMaster(ctx, "kubernetes-master"); !ok || err != nil {
		t.Fatalf("prepare: %v %v", ok, err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{{Name: "kubernetes-master", Ready: true, Roles: []string{"control-plane"}, Unschedulable: true}}
	if diff := cmp.Diff(want, nodes); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if err := c.DeleteNode(ctx, "kubernetes-master"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNode(ctx, "kubernetes-master"); err != nil {
		t.Errorf("deleting a deleted node: %v", err)
	}
}

// nodeTableJSON is an apiserver's table of Nodes as kubectl get nodes asks
// for it (the columns kube-apiserver's Node printer makes, rows only).
const nodeTableJSON = `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"812"},
"columnDefinitions":[{"name":"Name","type":"string","format":"name"},{"name":"Status","type":"string"},
{"name":"Roles","type":"string"},{"name":"Age","type":"string"},{"name":"Version","type":"string"}],
"rows":[
 {"cells":["kubernetes-minion-group-x1","NotReady","<none>","2m","v1.35.4"],"object":null},
 {"cells":["kubernetes-master","Ready,SchedulingDisabled","control-plane","5m","v1.35.4"],"object":null},
 {"cells":["kubernetes-minion-group-a2","Ready","<none>","2m","v1.35.4"],"object":null},
 {"cells":["kubernetes-minion-group-b3","Unknown","ingress,worker","2m","v1.35.4"],"object":null}]}`

func TestNodesAsTable(t *testing.T) {
	var accept, include string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/nodes" {
			http.NotFound(w, r)
			return
		}
		accept, include = r.Header.Get("Accept"), r.URL.Query().Get("includeObject")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(nodeTableJSON))
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{cs: cs, core: cs.CoreV1().RESTClient()}
	got, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{
		{Name: "kubernetes-master", Ready: true, Roles: []string{"control-plane"}, Unschedulable: true},
		{Name: "kubernetes-minion-group-a2", Ready: true},
		{Name: "kubernetes-minion-group-b3", Roles: []string{"ingress", "worker"}},
		{Name: "kubernetes-minion-group-x1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(accept, "application/json;as=Table;v=v1;g=meta.k8s.io") || include != "None" {
		t.Errorf("asked with Accept %q, includeObject %q; want the table, rows only", accept, include)
	}
}

func TestNodesOfTableNeedsItsColumns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		columns []string
		wantErr string
	}{
		{"kubectl's columns in another order", []string{"Roles", "Name", "Status"}, ""},
		{"no Status", []string{"Name", "Roles"}, "no Status column"},
		{"no Roles", []string{"Name", "Status"}, "no Roles column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := &metav1.Table{}
			for _, c := range tc.columns {
				tab.ColumnDefinitions = append(tab.ColumnDefinitions, metav1.TableColumnDefinition{Name: c})
			}
			_, err := nodesOfTable(tab)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
