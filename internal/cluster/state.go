package cluster

import (
	"context"
	"sync"

	"github.com/hakube/hakube/internal/gce"
	"github.com/hakube/hakube/internal/lb"
)

// runState is what a run's steps hand on to later steps: the lock step
// learns the static IP and the cluster's mode, the first master's step
// issues the CA, the IP moves measure outages. The plan's edges order every
// write before its reads; the mutex is for the steps that run in parallel.
type runState struct {
	mu       sync.Mutex
	ip       string // the static IP
	ca       []byte // the cluster CA certificate, PEM
	lbMode   string // modeStandard or modeLBFirst
	lock     *gce.Lock
	moves    []lb.Move
	moving   bool // a move of the static IP has begun in this run
	warnings []string

	secrets     *clusterSecrets       // the cluster's PKI and token, once known
	inserts     map[string]*insertion // instance → its insert, accepted by GCE and still running
	internalIPs map[string]string     // replica → reserved internal IP, this run
	learners    map[string]uint64     // replica → its etcd member id, added this run
}

// newRunState starts from what was observed.
func newRunState(obs *Observed) *runState {
	st := &runState{ca: clusterCA(obs)}
	if obs.Address != nil {
		st.ip = obs.Address.Address
		st.lbMode = obs.Address.Labels[labelMode]
	}
	return st
}

// moveBegins records that the static IP may leave the master it was
// observed on: masters' addresses must be read again from now on.
func (st *runState) moveBegins() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.moving = true
}

// addressesAsObserved reports whether the masters' external IPs are still
// those the run observed: no move of the static IP has begun.
func (st *runState) addressesAsObserved() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.moving
}

func (st *runState) staticIP() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ip
}

func (st *runState) caPEM() []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ca
}

func (st *runState) mode() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lbMode
}

// locked records what the lock step learnt.
func (st *runState) locked(lock *gce.Lock, ip, mode string) {
	st.mu.Lock()
	st.lock, st.ip, st.lbMode = lock, ip, mode
	st.mu.Unlock()
}

func (st *runState) heldLock() *gce.Lock {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lock
}

// record keeps an IP move's measurement for the report.
func (st *runState) record(mv lb.Move) {
	st.mu.Lock()
	st.moves = append(st.moves, mv)
	st.mu.Unlock()
}

func (st *runState) warn(msg string) {
	st.mu.Lock()
	st.warnings = append(st.warnings, msg)
	st.mu.Unlock()
}

func (st *runState) setSecrets(s *clusterSecrets) {
	st.mu.Lock()
	st.secrets = s
	st.ca = s.pki.CA.CertPEM
	st.mu.Unlock()
}

func (st *runState) secretsOf() *clusterSecrets {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.secrets
}

func (st *runState) setInternalIP(replica, ip string) {
	st.mu.Lock()
	if st.internalIPs == nil {
		st.internalIPs = map[string]string{}
	}
	st.internalIPs[replica] = ip
	st.mu.Unlock()
}

func (st *runState) internalIPOf(replica string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.internalIPs[replica]
}

func (st *runState) setLearner(replica string, id uint64) {
	st.mu.Lock()
	if st.learners == nil {
		st.learners = map[string]uint64{}
	}
	st.learners[replica] = id
	st.mu.Unlock()
}

func (st *runState) learnerOf(replica string) (uint64, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	id, ok := st.learners[replica]
	return id, ok
}

// outcome returns the moves and warnings once the run is over.
func (st *runState) outcome() ([]lb.Move, []string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.moves, st.warnings
}

// insertion is an instance's insert whose operation goes on after the
// step that started it returned: done closes when it ends, with err.
type insertion struct {
	done chan struct{}
	err  error
}

func (in *insertion) finish(err error) {
	in.err = err
	close(in.done)
}

// wait waits for the insert's end (or ctx's).
func (in *insertion) wait(ctx context.Context) error {
	select {
	case <-in.done:
		return in.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (st *runState) newInsertion(name string) *insertion {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.inserts == nil {
		st.inserts = map[string]*insertion{}
	}
	in := &insertion{done: make(chan struct{})}
	st.inserts[name] = in
	return in
}

func (st *runState) insertionOf(name string) *insertion {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.inserts[name]
}
