// Package kube is hakube's side of the cluster's own API: it reaches the
// apiservers through the static IP with a credential hakube mints per run,
// creates what the VMs' kubelets need to join (RBAC, the bootstrap token),
// prepares the masters' Nodes, reads the nodes for status, and deletes the
// Node of a removed VM (no cloud controller does it: the in-tree GCE
// provider is gone).
package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hakube/hakube/internal/vmcontract"
)

// Client is one run's connection to a cluster's API.
type Client struct {
	cs kubernetes.Interface
	// core asks for the Nodes as a table (nil: the typed list, for a
	// clientset without a REST client, as in tests).
	core rest.Interface
}

// New connects to server (https://IP:port) trusting only the cluster CA.
func New(server string, caPEM []byte, cert tls.Certificate) (*Client, error) {
	if len(caPEM) == 0 {
		return nil, errors.New("the cluster CA is unknown")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the cluster CA is not PEM")
	}
	certPEM, keyPEM, err := pemOf(cert)
	if err != nil {
		return nil, err
	}
	cfg := &rest.Config{
		Host:            server,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: certPEM, KeyData: keyPEM},
		Timeout:         15 * time.Second,
		UserAgent:       "hakube",
		QPS:             50,
		Burst:           100,
		// Protobuf, as the kubelets and controllers speak: a list of 5,000
		// Nodes is several times smaller and faster to decode than JSON.
		ContentConfig: rest.ContentConfig{ContentType: runtime.ContentTypeProtobuf,
			AcceptContentTypes: runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON},
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", server, err)
	}
	return &Client{cs: cs, core: cs.CoreV1().RESTClient()}, nil
}

// NewFromInterface wraps a clientset (tests use the fake one).
func NewFromInterface(cs kubernetes.Interface) *Client { return &Client{cs: cs} }

// Names of the objects hakube makes for the kubelets' TLS bootstrapping.
const (
	bindingBootstrap   = "hakube:kubelet-bootstrap"
	bindingApprove     = "hakube:node-autoapprove-bootstrap"
	bindingRenew       = "hakube:node-autoapprove-certificate-rotation"
	bindingAdmins      = "kubeadm:cluster-admins"
	bindingProxier     = "hakube:node-proxier"
	tokenSecretPrefix  = "bootstrap-token-"
	tokenSecretType    = "bootstrap.kubernetes.io/token"
	tokenDescription   = "hakube: the bootstrap token of the cluster's kubelets (node kube-env KUBELET_BOOTSTRAP_TOKEN)"
	systemNamespace    = "kube-system"
	roleNodeBootstrap  = "system:node-bootstrapper"
	roleApproveClient  = "system:certificates.k8s.io:certificatesigningrequests:nodeclient"
	roleApproveRenewal = "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"
	roleNodeProxier    = "system:node-proxier"
)

// Bootstrap makes sure what the kubelets need to join exists: the
// bootstrap token (id.secret) as a Secret, the bindings that let its
// holders ask for a client certificate and have it approved, the renewal
// binding, kubeadm's cluster-admins binding the admin kubeconfig relies
// on, and kube-proxy's rights for the nodes (a real VM's kube-proxy runs
// with its kubelet's client certificate: no per-node secret to hand out).
// Objects already there are kept; a re-run changes nothing.
func (c *Client) Bootstrap(ctx context.Context, token string) error {
	id, secret, ok := strings.Cut(token, ".")
	if !ok {
		return errors.New("bootstrap token is not <id>.<secret>")
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tokenSecretPrefix + id, Namespace: systemNamespace},
		Type:       tokenSecretType,
		StringData: map[string]string{
			"description":                    tokenDescription,
			"token-id":                       id,
			"token-secret":                   secret,
			"usage-bootstrap-authentication": "true",
		},
	}
	if err := retryTransient(ctx, func() error {
		_, err := c.cs.CoreV1().Secrets(systemNamespace).Create(ctx, s, metav1.CreateOptions{})
		return err
	}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create the bootstrap token secret: %w", err)
	}
	for _, b := range []struct{ name, role, group string }{
		{bindingBootstrap, roleNodeBootstrap, vmcontract.BootstrapGroup},
		{bindingApprove, roleApproveClient, vmcontract.BootstrapGroup},
		{bindingRenew, roleApproveRenewal, vmcontract.NodeGroup},
		{bindingAdmins, "cluster-admin", vmcontract.ClusterAdminsGroup},
		{bindingProxier, roleNodeProxier, vmcontract.NodeGroup},
	} {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: b.group}},
		}
		if err := retryTransient(ctx, func() error {
			_, err := c.cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
			return err
		}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create cluster role binding %s: %w", b.name, err)
		}
	}
	return nil
}

// Node is one Node as status shows it.
type Node struct {
	Name          string   `json:"name"`
	Ready         bool     `json:"ready"`
	Roles         []string `json:"roles"`
	Unschedulable bool     `json:"unschedulable,omitempty"`
}

// Nodes lists the cluster's Nodes, sorted by name.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var out []Node
	if c.core != nil {
		var err error
		if out, err = c.nodeTable(ctx); err != nil {
			return nil, err
		}
	} else {
		list, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		out = make([]Node, 0, len(list.Items))
		for _, n := range list.Items {
			out = append(out, nodeOf(&n))
		}
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// tableAccept asks for the apiserver's table of a list (what kubectl
// prints), or else the list itself: a server without tables then answers
// with a list, which nodeTable refuses naming its kind, rather than 406.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

// nodeTable reads the Nodes as the apiserver's table of them, rows only:
// name, status and roles, as kubectl get nodes shows them. At 5,000 Nodes
// the full list is tens of megabytes the apiserver encodes and hakube
// decodes while the kubelets keep it busy; the table is a few hundred
// bytes a Node.
func (c *Client) nodeTable(ctx context.Context) ([]Node, error) {
	body, err := c.core.Get().Resource("nodes").Param("includeObject", string(metav1.IncludeNone)).
		SetHeader("Accept", tableAccept).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var t metav1.Table
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("list nodes: the answer is not a table: %w", err)
	}
	if t.Kind != "Table" {
		return nil, fmt.Errorf("list nodes: the apiserver answered with a %s, not a Table", t.Kind)
	}
	return nodesOfTable(&t)
}

// nodesOfTable reads the Name, Status and Roles columns of a Node table:
// Status is Ready, NotReady or Unknown, then SchedulingDisabled when the
// Node is cordoned; Roles is comma-separated, <none> for none.
func nodesOfTable(t *metav1.Table) ([]Node, error) {
	col := map[string]int{}
	for i, d := range t.ColumnDefinitions {
		col[d.Name] = i
	}
	for _, name := range []string{"Name", "Status", "Roles"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("list nodes: the table has no %s column", name)
		}
	}
	cell := func(r metav1.TableRow, name string) string {
		if i := col[name]; i < len(r.Cells) {
			s, _ := r.Cells[i].(string)
			return s
		}
		return ""
	}
	out := make([]Node, 0, len(t.Rows))
	for _, r := range t.Rows {
		n := Node{Name: cell(r, "Name")}
		for _, s := range strings.Split(cell(r, "Status"), ",") {
			switch s {
			case "Ready":
				n.Ready = true
			case "SchedulingDisabled":
				n.Unschedulable = true
			}
		}
		if roles := cell(r, "Roles"); roles != "<none>" && roles != "" {
			n.Roles = strings.Split(roles, ",")
			slices.Sort(n.Roles)
		}
		out = append(out, n)
	}
	return out, nil
}

// Master reports whether the Node has the control-plane role.
func (n Node) Master() bool {
	return slices.Contains(n.Roles, strings.TrimPrefix(vmcontract.ControlPlaneRole, "node-role.kubernetes.io/"))
}

func nodeOf(n *corev1.Node) Node {
	out := Node{Name: n.Name, Unschedulable: n.Spec.Unschedulable}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Ready = c.Status == corev1.ConditionTrue
		}
	}
	for l := range n.Labels {
		if r, ok := strings.CutPrefix(l, "node-role.kubernetes.io/"); ok && r != "" {
			out.Roles = append(out.Roles, r)
		}
	}
	slices.Sort(out.Roles)
	return out
}

// PrepareMaster makes a master's Node look as kube-up's do: labelled with
// the control-plane role and cordoned (kubectl shows Ready,SchedulingDisabled).
// Kubelets may not label themselves with roles (NodeRestriction), and
// kubelet 1.35 has no --register-schedulable, so hakube does both as the
// admin. It reports false while the Node has not registered yet.
func (c *Client) PrepareMaster(ctx context.Context, name string) (bool, error) {
	n, err := c.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read node %s: %w", name, err)
	}
	if _, labelled := n.Labels[vmcontract.ControlPlaneRole]; labelled && n.Spec.Unschedulable {
		return true, nil
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:""}},"spec":{"unschedulable":true}}`, vmcontract.ControlPlaneRole)
	if _, err := c.cs.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return false, fmt.Errorf("label and cordon master node %s: %w", name, err)
	}
	return true, nil
}

// DeleteNode deletes the Node of a VM that is gone; an absent one is fine.
func (c *Client) DeleteNode(ctx context.Context, name string) error {
	err := retryTransient(ctx, func() error {
		err := c.cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("delete node %s: %w", name, err)
	}
	return nil
}

// DeleteNodesOf deletes the Nodes of a node pool's VMs that are gone: in
// the zone (its topology label, which every kubelet sets: see
// vmcontract.KubeletNodeLabels), named <base>-<suffix> for one of the
// groups' base instance names, never a control-plane Node. It returns how
// many it deleted.
func (c *Client) DeleteNodesOf(ctx context.Context, zone string, bases []string) (int, error) {
	var list *corev1.NodeList
	err := retryTransient(ctx, func() (err error) {
		list, err = c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: corev1.LabelTopologyZone + "=" + zone})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("list the nodes of %s: %w", zone, err)
	}
	n := 0
	for _, node := range list.Items {
		if _, master := node.Labels[vmcontract.ControlPlaneRole]; master {
			continue
		}
		if !slices.ContainsFunc(bases, func(b string) bool { return groupVM(node.Name, b) }) {
			continue
		}
		if err := c.DeleteNode(ctx, node.Name); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// groupVM reports whether name is one a managed instance group with that
// base instance name gives its VMs: the base, "-" and four lowercase letters
// or digits. (A prefix match would take group -1's VMs for the unsuffixed
// group's.)
func groupVM(name, base string) bool {
	rest, ok := strings.CutPrefix(name, base+"-")
	return ok && len(rest) == 4 && strings.Trim(rest, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// Readyz asks the apiserver behind the static IP whether it is ready (the
// real /readyz: etcd among its checks).
func (c *Client) Readyz(ctx context.Context) error {
	body, err := c.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("/readyz: %w (%s)", err, strings.TrimSpace(string(body)))
	}
	return nil
}

// retryTransient retries f while the API fails in a way that passes: a
// connection reset or cut (the static IP's load balancer sent it to an
// apiserver that was going away), an apiserver not ready or overloaded.
// The calls it wraps are idempotent. It gives up after about 30 s.
func retryTransient(ctx context.Context, f func() error) error {
	wait := 250 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil || !transient(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 4*time.Second)
	}
}

func transient(err error) bool {
	return utilnet.IsConnectionReset(err) || utilnet.IsConnectionRefused(err) || utilnet.IsProbableEOF(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || errors.Is(err, syscall.ECONNRESET)
}
