package kubevm

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hakube/hakube/internal/vmcontract"
)

// Bootstrap creates what the kubelets' TLS bootstrapping needs, as hakube
// does once the API serves: the bootstrap token's Secret, and the bindings
// that let its holders ask for a client certificate, have it approved, and
// renew it.
func (c *Cluster) Bootstrap(ctx context.Context, cs kubernetes.Interface) error {
	id, secret, _ := strings.Cut(c.Token, ".")
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: "kube-system"},
		Type:       "bootstrap.kubernetes.io/token",
		StringData: map[string]string{"token-id": id, "token-secret": secret, "usage-bootstrap-authentication": "true"},
	}
	if _, err := cs.CoreV1().Secrets("kube-system").Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bootstrap token secret: %w", err)
	}
	for _, b := range []struct{ name, role, group string }{
		{"hakube:kubelet-bootstrap", "system:node-bootstrapper", vmcontract.BootstrapGroup},
		{"hakube:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", vmcontract.BootstrapGroup},
		{"hakube:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", vmcontract.NodeGroup},
	} {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: b.role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: b.group}},
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("cluster role binding %s: %w", b.name, err)
		}
	}
	return nil
}
