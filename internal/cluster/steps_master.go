package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/pki"
	"github.com/hakube/hakube/internal/vmcontract"
)

// The steps that make masters and what they carry: their internal IPs,
// the cluster's PKI, the VMs, and the node template that needs the PKI's CA.

// reserveInternalIP reserves a master's internal IP, so its etcd peer URL
// and certificates can name it before the VM exists; an earlier run's
// reservation is reused.
func (r *run) reserveInternalIP(ctx context.Context, replica string) error {
	key := gce.RegionalKey(r.region(), r.cfg.InternalAddressName(replica))
	err := r.env.Cloud.InsertAddress(ctx, key, internalAddress(r.cfg, replica, r.region()))
	if err != nil && !gce.IsAlreadyExists(err) {
		return fmt.Errorf("reserve internal IP %s: %w", key, err)
	}
	a, err := r.env.Cloud.GetAddress(ctx, key)
	if err != nil {
		return fmt.Errorf("read internal IP %s: %w", key, err)
	}
	if !gce.OwnedByDescription(r.cfg.ClusterName(), a.Description) {
		return refuse("address %s exists but does not belong to cluster %q", key, r.cfg.ClusterName())
	}
	r.st.setInternalIP(replica, a.Address)
	return nil
}

// internalIP is a master's reserved internal IP: reserved in this run, or
// observed.
func (r *run) internalIP(replica string) (string, error) {
	if ip := r.st.internalIPOf(replica); ip != "" {
		return ip, nil
	}
	if a := r.obs.InternalIPs[r.cfg.InternalAddressName(replica)]; a != nil {
		return a.Address, nil
	}
	return "", fmt.Errorf("the internal IP of %s is not reserved", replica)
}

// newDataDisk reports whether a master's insert must make its etcd data
// disk. GCE attaches a disk that already has the name instead of making
// one, so a disk of that name must be the cluster's: an earlier run's,
// which is reused with its data. The observation lists the disks by those
// names, under the lock: one it did not find is read only when it did not
// list disks.
func (r *run) newDataDisk(ctx context.Context, key gce.Key) (bool, error) {
	dk := r.diskKey(key.Zone, key.Name)
	if d := r.obs.Disks[dk.Name]; d != nil {
		return false, nil
	}
	if r.obs.scope&readDisks != 0 && !slices.Contains(r.obs.otherDisks, dk) {
		return true, nil
	}
	d, err := r.env.Cloud.GetDisk(ctx, dk)
	switch {
	case gce.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, wrap(err, "read disk %s", dk)
	case d.Labels[gce.LabelCluster] != r.cfg.ClusterName() || d.Labels[gce.LabelRole] != gce.RoleMasterDisk:
		return false, refuse("disk %s exists but is not an etcd data disk of cluster %q", dk, r.cfg.ClusterName())
	}
	return false, nil
}

// createFirstMaster issues the cluster's PKI and bootstrap token, the
// master's own certificates, and starts the VM's insert: its metadata is
// where the PKI lives from then on. It returns once GCE has accepted the
// insert, the instance (with that metadata) then existing; the insert's
// operation goes on, and waitInsert waits for it. What needs only the
// secrets (the node template) need not wait for the VM.
func (r *run) createFirstMaster(ctx context.Context, key gce.Key) error {
	ip, err := r.internalIP(key.Name)
	if err != nil {
		return err
	}
	now := r.env.now()
	secrets, err := newSecrets(r.cfg.ClusterName(), now)
	if err != nil {
		return err
	}
	spec := masterSpec{name: key.Name, zone: key.Zone, staticIP: r.st.staticIP(), internalIP: ip,
		members: []etcdPeer{{key.Name, ip}}, state: "new", ca: secrets.pki.CA.CertPEM, token: secrets.token}
	certs, err := masterCerts(secrets.pki, spec, now)
	if err != nil {
		return err
	}
	nat := spec.staticIP
	if r.st.mode() == modeLBFirst {
		nat = ""
	}
	newDisk, err := r.newDataDisk(ctx, key)
	if err != nil {
		return err
	}
	in, err := masterInstance(r.cfg, key.Name, key.Zone, nat, ip, masterKubeEnv(r.cfg, spec), certs.Encode(), newDisk)
	if err != nil {
		return err
	}
	withSSHKey(r.env, in)
	ins := r.st.newInsertion(key.Name)
	accepted := make(chan struct{})
	go func() {
		err := r.env.Cloud.InsertInstanceNotify(ctx, key, in, func() { close(accepted) })
		switch {
		case gce.IsAlreadyExists(err):
			err = r.adoptMaster(ctx, key)
		case err != nil:
			err = wrap(err, "create master %s", key)
		}
		ins.finish(err)
	}()
	select {
	case <-accepted:
	case <-ins.done:
	}
	select {
	case <-accepted:
		r.st.setSecrets(secrets)
		return nil
	default: // refused, or a master already there (adopted)
		return ins.err
	}
}

// waitInsert waits for the operation of an insert a step of this run
// started. A first master's insert that fails there leaves what was made
// from its secrets (the node template, the pool) without a CA anywhere: a
// re-run replaces them.
func (r *run) waitInsert(ctx context.Context, key gce.Key) error {
	ins := r.st.insertionOf(key.Name)
	if ins == nil {
		return fmt.Errorf("no insert of %s was started in this run", key)
	}
	if err := ins.wait(ctx); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w; what this run made from its CA (the node template, the pool) is no use without it: run hakube up again, which replaces them", err)
	}
	return nil
}

// adoptMaster accepts an instance that already exists under our name only
// when it is the cluster's master, and picks up its secrets.
func (r *run) adoptMaster(ctx context.Context, key gce.Key) error {
	in, err := r.env.Cloud.GetInstance(ctx, key)
	if err != nil {
		return wrap(err, "read instance %s", key)
	}
	if in.Labels[gce.LabelCluster] != r.cfg.ClusterName() || in.Labels[gce.LabelRole] != gce.RoleMaster {
		return refuse("instance %s exists but is not a master of cluster %q", key, r.cfg.ClusterName())
	}
	if s, err := secretsOf(in); err == nil {
		r.st.setSecrets(s)
	}
	return nil
}

// createReplica issues the new replica's certificates from the cluster's
// PKI, clones the source master's kube-env with the etcd membership of
// this run (its member added as a learner already), and creates the VM on
// its reserved internal IP with an ephemeral external IP. When GCE refuses
// the VM, its learner goes too: no member is left without a VM. A run
// stopped while the insert runs keeps it: GCE goes on making the VM, and
// the re-run finds both.
func (r *run) createReplica(ctx context.Context, key gce.Key, source *compute.Instance) (err error) {
	defer func() {
		if err != nil && !gce.IsAlreadyExists(err) && ctx.Err() == nil {
			if rerr := r.dropLearner(ctx, key.Name); rerr != nil {
				err = fmt.Errorf("%w; and its etcd learner could not be removed: %v (a re-run removes it)", err, rerr)
			}
		}
	}()
	secrets, err := r.secrets()
	if err != nil {
		return err
	}
	env, err := vmcontract.ParseKubeEnv(metadataValue(source, vmcontract.KeyKubeEnv))
	if err != nil {
		return fmt.Errorf("read kube-env of %s: %w", source.Name, err)
	}
	ip, err := r.internalIP(key.Name)
	if err != nil {
		return err
	}
	members, err := r.etcdPeersWith(key.Name, ip)
	if err != nil {
		return err
	}
	spec := masterSpec{name: key.Name, zone: key.Zone, staticIP: r.st.staticIP(), internalIP: ip, members: members, state: "existing",
		ca: secrets.pki.CA.CertPEM, token: secrets.token}
	env, err = replicaKubeEnv(env, spec)
	if err != nil {
		return err
	}
	certs, err := masterCerts(secrets.pki, spec, r.env.now())
	if err != nil {
		return err
	}
	newDisk, err := r.newDataDisk(ctx, key)
	if err != nil {
		return err
	}
	in, err := masterInstance(r.cfg, key.Name, key.Zone, "", ip, env, certs.Encode(), newDisk)
	if err != nil {
		return err
	}
	withSSHKey(r.env, in)
	err = r.env.Cloud.InsertInstance(ctx, key, in)
	if gce.IsAlreadyExists(err) {
		return r.adoptMaster(ctx, key)
	}
	return wrap(err, "create replica %s", key)
}

// createTemplate makes the node template: the static IP, the cluster CA's
// certificate and the bootstrap token, never a CA key.
func (r *run) createTemplate(ctx context.Context) error {
	secrets, err := r.secrets()
	if err != nil {
		return err
	}
	key := r.templateKey()
	t, err := nodeTemplate(r.cfg, r.st.staticIP(), secrets.pki.CA.CertPEM, secrets.token)
	if err != nil {
		return err
	}
	err = r.env.Cloud.InsertInstanceTemplate(ctx, key, t)
	if !gce.IsAlreadyExists(err) {
		return wrap(err, "create instance template %s", key)
	}
	t, gerr := r.env.Cloud.GetInstanceTemplate(ctx, key)
	if gerr == nil && gce.OwnedByDescription(r.cfg.ClusterName(), t.Description) {
		return nil
	}
	return refuse("instance template %s exists but does not belong to cluster %q", key, r.cfg.ClusterName())
}

// secrets is the cluster's PKI and bootstrap token: made in this run, or
// read from a master's metadata (the only place they live).
func (r *run) secrets() (*clusterSecrets, error) {
	if s := r.st.secretsOf(); s != nil {
		return s, nil
	}
	var errs []error
	for _, m := range r.obs.Masters {
		s, err := secretsOf(m)
		if err == nil {
			r.st.setSecrets(s)
			return s, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
	}
	if len(errs) == 0 {
		return nil, errors.New("no master carries the cluster's certificates")
	}
	return nil, fmt.Errorf("no master carries the cluster's certificates: %w", errors.Join(errs...))
}

// clusterSecrets is what the cluster's masters carry and nobody else: the
// PKI's CAs and keys, and the bootstrap token (nodes carry the token too).
type clusterSecrets struct {
	pki   *pki.Cluster
	token string
}

func newSecrets(cluster string, now time.Time) (*clusterSecrets, error) {
	p, err := pki.NewCluster(cluster, now)
	if err != nil {
		return nil, fmt.Errorf("issue the cluster's CAs: %w", err)
	}
	token, err := pki.BootstrapToken()
	if err != nil {
		return nil, err
	}
	return &clusterSecrets{pki: p, token: token}, nil
}

// secretsOf reads the secrets from a master's metadata.
func secretsOf(in *compute.Instance) (*clusterSecrets, error) {
	certs, err := vmcontract.ParseCerts(metadataValue(in, vmcontract.KeyMasterCerts))
	if err != nil {
		return nil, err
	}
	p, err := pki.FromCerts(certs)
	if err != nil {
		return nil, err
	}
	env, err := vmcontract.ParseKubeEnv(metadataValue(in, vmcontract.KeyKubeEnv))
	if err != nil {
		return nil, err
	}
	token := env.Get(vmcontract.EnvBootstrapToken)
	if token == "" {
		return nil, fmt.Errorf("kube-env has no %s", vmcontract.EnvBootstrapToken)
	}
	return &clusterSecrets{pki: p, token: token}, nil
}

// masterCerts issues a master's kube-master-certs.
func masterCerts(p *pki.Cluster, m masterSpec, now time.Time) (vmcontract.Certs, error) {
	internal, err := netip.ParseAddr(m.internalIP)
	if err != nil {
		return nil, fmt.Errorf("internal IP of %s: %w", m.name, err)
	}
	static, err := netip.ParseAddr(m.staticIP)
	if err != nil {
		return nil, fmt.Errorf("the static IP %q: %w", m.staticIP, err)
	}
	return p.MasterCerts(pki.Master{Name: m.name, InternalIP: internal, StaticIP: static, ServiceRange: netip.MustParsePrefix(serviceRange)}, now)
}

// caFromMetadata extracts the CA certificate from a kube-master-certs value.
func caFromMetadata(value string) ([]byte, error) {
	certs, err := vmcontract.ParseCerts(value)
	if err != nil {
		return nil, err
	}
	if ca := certs.Get(vmcontract.CA); len(ca) > 0 {
		return ca, nil
	}
	return nil, errors.New("kube-master-certs has no CA_CERT")
}
