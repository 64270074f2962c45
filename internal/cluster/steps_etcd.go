package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sync/errgroup"
	compute "google.golang.org/api/compute/v1"

	"github.com/hakube/hakube/internal/etcdm"
	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/vmcontract"
)

// etcd's membership, read and changed through SSH tunnels to the masters'
// localhost (etcdm), with a client certificate minted for the run.

// membership is the etcd member list as a master reports it, with each
// member's own health.
type membership struct {
	members []etcdm.Member
	via     string // the master listed through
	err     error  // why no master's etcd could be asked
	// unknown is a dry run's: not read, because reading needs hakube's SSH
	// key on the masters, which only the run adds.
	unknown bool
}

// of finds a VM's member by its peer URL (a learner has no name until it
// starts; an IP is what the member add named).
func (m *membership) of(internalIP string) *etcdm.Member {
	if m == nil {
		return nil
	}
	return etcdm.MemberOn(m.members, vmcontract.EtcdPeerURL(internalIP))
}

// voters counts the voting members and the healthy ones among them.
func (m *membership) voters() (all, healthy int) {
	for _, mem := range m.members {
		if !mem.Learner {
			all++
			if mem.Healthy {
				healthy++
			}
		}
	}
	return all, healthy
}

func (m *membership) describe() string {
	if m == nil || len(m.members) == 0 {
		return "no members known"
	}
	var parts []string
	for _, mem := range m.members {
		state := "unhealthy"
		if mem.Healthy {
			state = "healthy"
		}
		role := "voter"
		if mem.Learner {
			role = "learner"
		}
		if mem.Leader {
			role = "leader"
		}
		name := mem.Name
		if name == "" {
			name = "(not started) " + strings.Join(mem.PeerURLs, ",")
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", name, role, state))
	}
	return strings.Join(parts, ", ")
}

// sshAccess adds hakube's key to the running masters' ssh-keys (instance
// metadata, never the project's) where it is missing, and reports which it
// added it to. The guest agent (and the emulator's SSH server) reads keys on
// every connection, so they work at once.
func sshAccess(ctx context.Context, env *Env, obs *Observed) ([]string, error) {
	if env.SSH.Signer == nil {
		return nil, nil
	}
	entry := env.sshKeyEntry()
	var added []string
	for _, m := range mastersWithoutKey(env, obs) {
		if err := setMetadataKey(ctx, env.Cloud, gce.KeyOf(m.SelfLink), vmcontract.KeySSHKeys, func(v string) string {
			v, _ = etcdm.WithEntry(v, entry)
			return v
		}); err != nil {
			return added, fmt.Errorf("add hakube's SSH key to %s: %w", m.Name, err)
		}
		added = append(added, m.Name)
	}
	return added, nil
}

// withSSHKey puts hakube's key in a master's ssh-keys as it is created, so
// that no later run has to add it.
func withSSHKey(env *Env, in *compute.Instance) {
	if env.SSH.Signer == nil {
		return
	}
	entry := env.sshKeyEntry()
	in.Metadata.Items = append(in.Metadata.Items, &compute.MetadataItems{Key: vmcontract.KeySSHKeys, Value: &entry})
}

// sshKeyEntry is hakube's key as an ssh-keys line.
func (e *Env) sshKeyEntry() string {
	return etcdm.Key{Signer: e.SSH.Signer}.MetadataEntry(e.SSHUser)
}

// mastersWithoutKey are the running masters whose ssh-keys lack hakube's.
func mastersWithoutKey(env *Env, obs *Observed) []*compute.Instance {
	entry := env.sshKeyEntry()
	var out []*compute.Instance
	for _, m := range obs.Masters {
		if _, add := etcdm.WithEntry(metadataValue(m, vmcontract.KeySSHKeys), entry); running(m) && add {
			out = append(out, m)
		}
	}
	return out
}

// setMetadataKey changes one key of an instance's metadata with the
// fingerprint it was read with, reading again after a concurrent change.
func setMetadataKey(ctx context.Context, c *gce.Cloud, key gce.Key, item string, change func(string) string) error {
	for attempt := 1; ; attempt++ {
		in, err := c.GetInstance(ctx, key)
		if err != nil {
			return err
		}
		md := in.Metadata
		if md == nil {
			md = &compute.Metadata{}
		}
		old := metadataValue(in, item)
		v := change(old)
		if v == old {
			return nil
		}
		set := false
		for _, it := range md.Items {
			if it.Key == item {
				it.Value, set = &v, true
			}
		}
		if !set {
			md.Items = append(md.Items, &compute.MetadataItems{Key: item, Value: &v})
		}
		err = c.SetInstanceMetadata(ctx, key, md)
		if err == nil || !gce.IsPrecondition(err) || attempt == 5 {
			return err
		}
	}
}

// hostKeys verifies a master's SSH host key against the keys its guest
// published as guest attributes (hostkeys/), as gcloud compute ssh does.
// The keys are read once per VM: those an earlier run remembered (Env's
// KnownHosts) are tried first, and a key they do not match is checked
// against what the VM publishes now, in the same handshake. Within a run
// a key the read keys do not match reads them again on the next dial.
// The cache holds a pointer: sync.Map's CompareAndDelete compares values,
// and a slice is not comparable.
func hostKeys(ctx context.Context, env *Env, in *compute.Instance) (ssh.HostKeyCallback, error) {
	id := hostKeyID(in)
	match := func(keys *[]ssh.PublicKey) ssh.HostKeyCallback {
		return matchHostKey(in.Name, *keys, func() { env.hostKeys.CompareAndDelete(id, keys) })
	}
	if cached, ok := env.hostKeys.Load(id); ok {
		return match(cached.(*[]ssh.PublicKey)), nil
	}
	read := func() (*[]ssh.PublicKey, error) {
		keys, err := publishedHostKeys(ctx, env.Cloud, in)
		if err != nil {
			return nil, err
		}
		if err := env.known.remember(in, keys); err != nil {
			env.Log.Debug("could not remember the SSH host keys", zap.String("instance", in.Name), zap.Error(err))
		}
		env.hostKeys.Store(id, &keys)
		return &keys, nil
	}
	if remembered := env.known.lookup(in); len(remembered) > 0 {
		return func(host string, addr net.Addr, key ssh.PublicKey) error {
			if hasHostKey(remembered, key) {
				env.hostKeys.LoadOrStore(id, &remembered)
				return nil
			}
			keys, err := read()
			if err != nil {
				return err
			}
			return match(keys)(host, addr, key)
		}, nil
	}
	keys, err := read()
	if err != nil {
		return nil, err
	}
	return match(keys), nil
}

// hostKeyID names a VM for the host-key cache: a VM made again under the
// same name has a new id.
func hostKeyID(in *compute.Instance) string { return strconv.FormatUint(in.Id, 10) + " " + in.SelfLink }

func publishedHostKeys(ctx context.Context, c *gce.Cloud, in *compute.Instance) ([]ssh.PublicKey, error) {
	items, err := c.GuestAttributes(ctx, gce.KeyOf(in.SelfLink), "hostkeys/")
	if err != nil {
		return nil, fmt.Errorf("read the SSH host keys %s published: %w", in.Name, err)
	}
	var keys []ssh.PublicKey
	for _, it := range items {
		// The guest agent writes key ssh-ed25519, value the base64 alone.
		line := it.Value
		if !strings.Contains(line, " ") {
			line = it.Key + " " + line
		}
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line)); err == nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s published no SSH host keys (guest attributes hostkeys/), so its identity cannot be verified", in.Name)
	}
	return keys, nil
}

// matchHostKey accepts only a host key among keys; on a mismatch it calls
// forget, so that the next dial reads what the VM publishes now.
func matchHostKey(name string, keys []ssh.PublicKey, forget func()) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		if hasHostKey(keys, key) {
			return nil
		}
		forget()
		return fmt.Errorf("the SSH host key of %s is not one it published", name)
	}
}

func hasHostKey(keys []ssh.PublicKey, key ssh.PublicKey) bool {
	for _, k := range keys {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			return true
		}
	}
	return false
}

// connectionCut reports an error of a connection that went away under it,
// as when the master's external IP moves: worth dialling again.
func connectionCut(err error) bool {
	return errors.Is(err, etcdm.ErrTunnelClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// etcdCallTimeout bounds one read of etcd (a member list needs quorum).
const etcdCallTimeout = 10 * time.Second

// etcdSession is an etcd client on one master, with its tunnel.
type etcdSession struct {
	master string
	tunnel *etcdm.Tunnel
	client *etcdm.Client
}

func (s *etcdSession) close() {
	s.client.Close()
	s.tunnel.Close()
}

// dialEtcd opens an etcd client on a master through SSH.
func dialEtcd(ctx context.Context, env *Env, secrets *clusterSecrets, in *compute.Instance) (*etcdSession, error) {
	if !running(in) {
		return nil, fmt.Errorf("%s is %s", in.Name, in.Status)
	}
	// A master between two steps of the static IP's move may have no
	// external IP for a while (a run that failed there): its internal IP
	// then, which answers when hakube runs inside the VPC, as
	// gcloud compute ssh --internal-ip does.
	ip, internal := natIP(in), false
	if ip == "" {
		ip, internal = internalIP(in), true
	}
	hk, err := hostKeys(ctx, env, in)
	if err != nil {
		return nil, err
	}
	sshCfg := env.SSH
	sshCfg.HostKey = func(string) ssh.HostKeyCallback { return hk }
	t, err := sshCfg.Dial(ctx, in.Name, ip)
	if err != nil && internal {
		return nil, fmt.Errorf("%s has no external IP (a static-IP move that did not finish?) and its internal IP does not answer from here: %w", in.Name, err)
	}
	if err != nil {
		return nil, err
	}
	cert, err := secrets.pki.EtcdClient(env.now())
	if err != nil {
		t.Close()
		return nil, err
	}
	cli, err := etcdm.Connect(ctx, t, cert, secrets.pki.EtcdCA.CertPEM)
	if err != nil {
		t.Close()
		return nil, err
	}
	return &etcdSession{master: in.Name, tunnel: t, client: cli}, nil
}

// withEtcd runs f on the etcd of the first running master (not one of
// exclude) whose member list can be read, trying the others after one fails.
func (r *run) withEtcd(ctx context.Context, exclude []string, f func(ctx context.Context, s *etcdSession) error) error {
	secrets, err := r.secrets()
	if err != nil {
		return err
	}
	// A tunnel that closes under a call (the master's external IP moved:
	// the static IP's move runs beside etcd's steps) is dialled again, on
	// the master's IP of then, a few times.
	var errs []error
	for round := 1; round <= 3; round++ {
		errs = errs[:0]
		cut := false
		for _, m := range r.obs.Masters {
			if slices.Contains(exclude, m.Name) || !running(m) {
				continue
			}
			// The observed master, until its IP may have moved: the run
			// moved the static IP, or a tunnel was cut.
			in := m
			if round > 1 || !r.st.addressesAsObserved() {
				var err error
				if in, err = r.env.Cloud.GetInstance(ctx, gce.KeyOf(m.SelfLink)); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			s, err := dialEtcd(sctx, r.env, secrets, in)
			cancel()
			if err != nil {
				cut = cut || connectionCut(err)
				errs = append(errs, err)
				continue
			}
			err = f(ctx, s)
			s.close()
			if err == nil || ctx.Err() != nil {
				return err
			}
			cut = cut || connectionCut(err)
			errs = append(errs, fmt.Errorf("through %s: %w", m.Name, err))
		}
		if !cut {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(round) * time.Second):
		}
	}
	if len(errs) == 0 {
		return fmt.Errorf("no running master other than %v to reach etcd through", exclude)
	}
	return errors.Join(errs...)
}

// observeEtcd reads the membership through a running master, and each
// member's health through its own master.
func observeEtcd(ctx context.Context, env *Env, obs *Observed) *membership {
	r := &run{env: env, obs: obs, st: newRunState(obs)}
	m := &membership{}
	m.err = r.withEtcd(ctx, nil, func(ctx context.Context, s *etcdSession) error {
		lctx, cancel := context.WithTimeout(ctx, etcdCallTimeout)
		defer cancel()
		ms, err := s.client.List(lctx)
		m.members, m.via = ms, s.master
		return err
	})
	if m.err != nil {
		return m
	}
	secrets, _ := r.secrets()
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for _, in := range obs.Masters {
		mem := m.of(internalIP(in))
		if mem == nil || !running(in) {
			continue
		}
		g.Go(func() error {
			sctx, cancel := context.WithTimeout(gctx, 10*time.Second)
			defer cancel()
			s, err := dialEtcd(sctx, env, secrets, in)
			if err != nil {
				return nil // unhealthy, as far as hakube can tell
			}
			defer s.close()
			id, leader, err := s.client.Status(sctx)
			mu.Lock()
			defer mu.Unlock()
			if err == nil && id == mem.ID {
				mem.Healthy = true
				for i := range m.members {
					m.members[i].Leader = m.members[i].ID == leader
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	return m
}

// etcdPeersWith is the members a new replica starts with: every member
// (by its peer URL's IP, learners included) and itself.
func (r *run) etcdPeersWith(name, ip string) ([]etcdPeer, error) {
	m := r.obs.Etcd
	if m == nil || m.err != nil {
		return nil, fmt.Errorf("etcd's membership is unknown: %v", m.errOrNil())
	}
	peers := []etcdPeer{{name, ip}}
	for _, mem := range m.members {
		for _, u := range mem.PeerURLs {
			if pu, err := url.Parse(u); err == nil && pu.Hostname() != ip {
				peers = append(peers, etcdPeer{name: memberName(mem, r.obs.Masters, pu.Hostname()), ip: pu.Hostname()})
			}
		}
	}
	return peers, nil
}

func (m *membership) errOrNil() error {
	if m == nil {
		return errors.New("not read")
	}
	return m.err
}

// memberName is a member's name, or, for a learner not yet started, the
// name of the VM on its IP.
func memberName(mem etcdm.Member, masters []*compute.Instance, ip string) string {
	if mem.Name != "" {
		return mem.Name
	}
	for _, in := range masters {
		if internalIP(in) == ip {
			return in.Name
		}
	}
	return "member-" + mem.IDHex
}

// addLearner adds the replica's member as a learner through a running
// master, before its VM exists (kube-up added before creating, too); an
// earlier run's learner on the same peer URL is reused.
func (r *run) addLearner(ctx context.Context, replica string) error {
	ip, err := r.internalIP(replica)
	if err != nil {
		return err
	}
	return r.withEtcd(ctx, []string{replica}, func(ctx context.Context, s *etcdSession) error {
		lctx, cancel := context.WithTimeout(ctx, etcdCallTimeout)
		ms, err := s.client.List(lctx)
		cancel()
		if err != nil {
			return err
		}
		if mem := etcdm.MemberOn(ms, vmcontract.EtcdPeerURL(ip)); mem != nil {
			r.st.setLearner(replica, mem.ID)
			return nil
		}
		actx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		id, err := s.client.AddLearner(actx, vmcontract.EtcdPeerURL(ip))
		if err != nil {
			return err
		}
		r.st.setLearner(replica, id)
		r.obs.Etcd.members = append(r.obs.Etcd.members, etcdm.Member{ID: id, IDHex: fmt.Sprintf("%x", id), PeerURLs: []string{vmcontract.EtcdPeerURL(ip)}, Learner: true})
		return nil
	})
}

// promoteLearner makes the replica's member a voter once it has caught up.
// One that does not within the deadline fails the step but stays: its VM
// exists, so it is no phantom, and a learner does not vote, so quorum is
// untouched; a re-run promotes it (removing it would leave a VM whose etcd
// can never rejoin under its old identity).
func (r *run) promoteLearner(ctx context.Context, replica string) error {
	id, err := r.memberID(replica)
	if err != nil {
		return err
	}
	r.env.progress(ctx, "waiting for etcd member %x of %s to catch up with the leader", id, replica)
	pctx, cancel := context.WithTimeout(ctx, r.env.APIDeadline)
	defer cancel()
	err = r.withEtcd(pctx, []string{replica}, func(ctx context.Context, s *etcdSession) error {
		return s.client.Promote(ctx, id)
	})
	if err == nil || ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w; it stays a learner (it does not vote): re-run to promote it, or remove the replica (hakube down --replica %s --delete-nodes=false)", err, replica)
}

// memberID is the replica's member: added this run, or observed.
func (r *run) memberID(replica string) (uint64, error) {
	if id, ok := r.st.learnerOf(replica); ok {
		return id, nil
	}
	ip, err := r.internalIP(replica)
	if err != nil {
		return 0, err
	}
	if mem := r.obs.Etcd.of(ip); mem != nil {
		return mem.ID, nil
	}
	return 0, fmt.Errorf("%s has no etcd member", replica)
}

// dropLearner removes the replica's learner if this run added one.
func (r *run) dropLearner(ctx context.Context, replica string) error {
	id, ok := r.st.learnerOf(replica)
	if !ok {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return r.withEtcd(dctx, []string{replica}, func(ctx context.Context, s *etcdSession) error {
		return s.client.Remove(ctx, id)
	})
}

// removeMember removes the member on the replica's IP through a surviving
// master (never the one going), as etcd documents: the removed member's
// server stops on its own.
func (r *run) removeMember(ctx context.Context, replica, ip string) error {
	return r.withEtcd(ctx, []string{replica}, func(ctx context.Context, s *etcdSession) error {
		lctx, cancel := context.WithTimeout(ctx, etcdCallTimeout)
		ms, err := s.client.List(lctx)
		cancel()
		if err != nil {
			return err
		}
		mem := etcdm.MemberOn(ms, vmcontract.EtcdPeerURL(ip))
		if mem == nil {
			return nil // gone already
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return s.client.Remove(rctx, mem.ID)
	})
}
