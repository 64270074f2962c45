package guest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"go.uber.org/zap"
)

// Options are what every guest of one emulator shares.
type Options struct {
	// Kubernetes makes masters run the real etcd and control plane
	// (Binary); without it they run the static guest (vm.go).
	Kubernetes bool
	// Binary is the rehearsal's multi-call binary (bin/kube-rehearsal).
	Binary string
	// StateDir holds the VMs' files: vms/<instance id>/ (PKI, kubeconfigs,
	// the extras' state) and disks/<disk id>/ (a master's etcd data).
	StateDir string
	// SSHPort is where every VM's SSH server listens (with Extras).
	SSHPort int
	Extras  Extras
	Log     *zap.Logger
	// Power carries out a guest's halt or reboot (the emulator's).
	Power func(vm VMRef, p Power)
	// Metadata reads an instance's current metadata and its project's.
	Metadata func(ctx context.Context, link string, id uint64) (instance, project map[string]string, err error)
	// GuestAttribute writes one of an instance's guest attributes (nil:
	// the emulator keeps none).
	GuestAttribute func(ctx context.Context, link string, id uint64, namespace, key, value string) error
	// Dial connects from a VM's address to addr as the network would
	// (nil: a socket bound to from).
	Dial func(ctx context.Context, from netip.Addr, network, addr string) (net.Conn, error)
}

// Host runs the guests of one emulator: it owns the state directory and
// every process a guest starts.
type Host struct {
	opts Options
	log  *zap.Logger
	ctx  context.Context // ends at Close: every boot's context derives from it
	stop context.CancelFunc
	wg   sync.WaitGroup // every boot's goroutines

	mu       sync.Mutex
	held     map[uint64]int  // disk id → boots using it
	disks    map[uint64]bool // the disks that exist, as last told
	released bool            // a disk was released since the last collection
	closed   bool
}

// NewHost checks opts and prepares the state directory: what an earlier
// emulator left in vms/ and disks/ is removed (the inventory lives in
// memory, so those files belong to VMs that no longer exist).
func NewHost(opts Options) (*Host, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Kubernetes {
		if !processesSupported {
			return nil, errors.New("the Kubernetes guests run real processes, which need a Unix system")
		}
		if opts.Binary == "" {
			return nil, errors.New("no Kubernetes binary: build it with `make rehearsal` (bin/kube-rehearsal)")
		}
		if err := checkBinary(opts.Binary); err != nil {
			return nil, fmt.Errorf("the Kubernetes binary: %w (build it with `make rehearsal`)", err)
		}
	}
	if opts.Kubernetes || opts.Extras != nil {
		if opts.StateDir == "" {
			return nil, errors.New("guests need a state directory")
		}
		for _, sub := range []string{"vms", "disks"} {
			dir := filepath.Join(opts.StateDir, sub)
			if err := os.RemoveAll(dir); err != nil {
				return nil, fmt.Errorf("state directory: %w", err)
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("state directory: %w", err)
			}
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Host{opts: opts, log: opts.Log, ctx: ctx, stop: stop, held: map[uint64]int{}, disks: map[uint64]bool{}}, nil
}

// Kubernetes reports whether masters run the real processes.
func (h *Host) Kubernetes() bool { return h.opts.Kubernetes }

// Close kills every process of every guest at once (as a power cut would:
// every boot's context ends with the host's) and waits until they are
// gone. No boot starts after it.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.stop()
	h.wg.Wait()
}

func (h *Host) vmDir(id uint64) string {
	return filepath.Join(h.opts.StateDir, "vms", strconv.FormatUint(id, 10))
}

func (h *Host) diskDir(id uint64) string {
	return filepath.Join(h.opts.StateDir, "disks", strconv.FormatUint(id, 10))
}

// hold marks a disk in use by a boot until release: its directory is not
// removed meanwhile, even if the disk is deleted.
func (h *Host) hold(disk uint64) {
	h.mu.Lock()
	h.held[disk]++
	h.mu.Unlock()
}

func (h *Host) release(disk uint64) {
	h.mu.Lock()
	h.held[disk]--
	if h.held[disk] <= 0 {
		delete(h.held, disk)
		h.released = true
	}
	h.mu.Unlock()
}

// Disks tells the host which disks exist: the directory of a disk that is
// gone is removed once no boot uses it, so that a disk deleted and created
// again under the same name (a new id) starts empty. The data plane calls
// it on every pass; it only looks at the directory when the set changed.
func (h *Host) Disks(live map[uint64]bool) {
	if !h.opts.Kubernetes {
		return
	}
	h.mu.Lock()
	same := len(live) == len(h.disks)
	for id := range live {
		same = same && h.disks[id]
	}
	if same && !h.released {
		h.mu.Unlock()
		return
	}
	h.disks, h.released = live, false
	held := make(map[uint64]bool, len(h.held))
	for id := range h.held {
		held[id] = true
	}
	h.mu.Unlock()
	entries, err := os.ReadDir(filepath.Join(h.opts.StateDir, "disks"))
	if err != nil {
		return
	}
	for _, e := range entries {
		id, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || live[id] || held[id] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(h.opts.StateDir, "disks", e.Name())); err != nil {
			h.log.Warn("cannot remove a deleted disk's directory", zap.Error(err))
		}
	}
}
