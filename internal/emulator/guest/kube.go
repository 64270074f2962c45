package guest

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hakube/hakube/internal/vmcontract"
)

// A Kubernetes master's boot does what a real master's startup script
// does, in its order: it writes kube-master-certs' items as files, renders
// its components' kubeconfigs, and starts etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler with the flags vmcontract
// renders, then the health agent. What the metadata lacks or gets wrong is
// for the binaries to refuse: a missing file or a key that does not match
// its certificate shows in their own log lines on the console.

// layout is where a master's files go in the rehearsal: its own
// directory, and its data disk's for etcd (the boot disk's when no disk is
// attached as master-pd, as a real VM's /mnt/disks/master-pd would then be
// a directory of its root disk).
func (b *boot) layout() vmcontract.Host {
	h, m, spec := b.m.h, b.m, b.spec
	dir := h.vmDir(m.id)
	ip := spec.Internal.String()
	host := vmcontract.Host{Name: m.name, InternalIP: ip, Loopback: ip, Listen: ip,
		PKIDir: filepath.Join(dir, "pki"), ConfDir: dir, DataDir: filepath.Join(dir, "etcd"), LoopbackNetwork: true}
	if spec.DataDisk != 0 {
		host.DataDir = filepath.Join(h.diskDir(spec.DataDisk), "etcd")
	}
	return host
}

// startKubernetes starts a master's processes (nodes run none: their
// kubelet is an extra), reporting each step, and returns their supervisors
// (nil for a node or a master that could not start them). wg counts them
// until they are gone.
func (b *boot) startKubernetes(wg *sync.WaitGroup) []*supervisor {
	cfg := b.spec.Config
	switch {
	case cfg.Err != "":
		b.failAt("metadata", "cannot start Kubernetes: %s", cfg.Err)
		return nil
	case cfg.Env == nil:
		b.logf("no kube-env: not part of a cluster")
		return nil
	case !cfg.Master:
		b.logf("a node (%s is not 'true'): its kubelet is the emulator's stand-in", vmcontract.EnvKubernetesMaster)
		return nil
	case !b.spec.Internal.IsValid():
		b.failAt("control-plane", "no internal IP on nic0: a master's components have nowhere to listen")
		return nil
	}
	master := vmcontract.Master{Env: cfg.Env, Host: b.layout()}
	if b.spec.DataDisk == 0 {
		b.logf("no disk attached as %s: etcd's data lives on the boot disk", vmcontract.EtcdDeviceName)
	}
	comps, err := master.Components()
	if err != nil {
		b.failAt("metadata", "cannot start Kubernetes: %v", err)
		return nil
	}
	b.step("certs")
	if err := b.writeFiles(master); err != nil {
		b.failAt("certs", "cannot write the master's files: %v", err)
		return nil
	}
	sups := make([]*supervisor, 0, len(comps))
	for _, c := range comps {
		s := &supervisor{name: c.Name, argv: append([]string{b.m.h.opts.Binary, c.Name}, c.Args...),
			dir: master.Host.ConfDir, console: b.m.console, guest: b.logf}
		s.st.Name = c.Name
		sups = append(sups, s)
	}
	b.mu.Lock()
	b.sups = sups
	b.mu.Unlock()
	for _, s := range sups {
		b.step(s.name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(b.ctx, b.shutdown)
		}()
	}
	// The health agent comes last, as on a real master: it answers for
	// the apiserver the steps before started.
	b.step("health-agent")
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.health.run(b.ctx)
	}()
	return sups
}

// writeFiles writes the PKI (mode 0600, as a real master's is) and the
// kubeconfigs, replacing an earlier boot's: the metadata may have changed.
func (b *boot) writeFiles(master vmcontract.Master) error {
	host := master.Host
	if err := os.RemoveAll(host.PKIDir); err != nil {
		return err
	}
	var missing []string
	for _, it := range vmcontract.MasterItems() {
		pem := b.spec.Config.Certs.Get(it)
		if len(pem) == 0 {
			missing = append(missing, it.Key)
			continue
		}
		if err := writePrivate(it.Path(host.PKIDir), pem); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		b.logf("%s lacks %s: those files are not written", vmcontract.KeyMasterCerts, strings.Join(missing, ", "))
	}
	confs, err := master.Kubeconfigs()
	if err != nil {
		return err
	}
	for path, data := range confs {
		if err := writePrivate(path, data); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(host.DataDir), 0o700); err != nil {
		return err
	}
	b.logf("wrote %d PKI files to %s and the kubeconfigs of kube-controller-manager and kube-scheduler",
		len(vmcontract.MasterItems())-len(missing), host.PKIDir)
	return nil
}

func writePrivate(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
