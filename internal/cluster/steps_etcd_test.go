package cluster

import (
	"context"
	"testing"

	"golang.org/x/crypto/ssh"
	compute "google.golang.org/api/compute/v1"
)

// A cached host key serves the next dial without a read (the Env has no
// Cloud to read with), and a key it does not match is forgotten, so that
// the dial after reads what the VM publishes now.
func TestHostKeysCacheForgetsAMismatch(t *testing.T) {
	published, other := newHostKey(t), newHostKey(t)
	env := &Env{}
	in := &compute.Instance{Id: 7, Name: "kubernetes-master", SelfLink: "https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/kubernetes-master"}
	env.hostKeys.Store(hostKeyID(in), &[]ssh.PublicKey{published})

	check, err := hostKeys(context.Background(), env, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := check("", nil, published); err != nil {
		t.Errorf("the published key was refused: %v", err)
	}
	if _, ok := env.hostKeys.Load(hostKeyID(in)); !ok {
		t.Fatal("a matching key dropped the cache entry")
	}
	if err := check("", nil, other); err == nil {
		t.Error("a key the VM did not publish was accepted")
	}
	if _, ok := env.hostKeys.Load(hostKeyID(in)); ok {
		t.Error("a mismatch left the cached keys in place")
	}
}
