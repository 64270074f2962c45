package kube

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
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
