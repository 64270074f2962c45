package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// A master's components are real processes of the rehearsal's binary,
// supervised as systemd's Restart=always does: a process that exits is
// started again after a backoff, its exit written to the console.

// Restart backoff: doubling from restartMin up to restartMax; a process
// that ran for restartReset or longer starts the next round from the
// minimum again.
const (
	restartMin   = 500 * time.Millisecond
	restartMax   = 8 * time.Second
	restartReset = 10 * time.Second
)

// ComponentStatus is one supervised process of a VM, as the control API
// reports it.
type ComponentStatus struct {
	Name string `json:"name"`
	// State is starting, running, or restarting (exited, waiting out its
	// backoff).
	State    string    `json:"state"`
	PID      int       `json:"pid,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Restarts int       `json:"restarts"`
	// LastExit is how the last run ended ("exit status 1") and LastLine
	// the last line it printed: the binary's own words.
	LastExit string `json:"lastExit,omitempty"`
	LastLine string `json:"lastLine,omitempty"`
}

// supervisor runs one component until its context ends.
type supervisor struct {
	name    string
	argv    []string // program and arguments
	dir     string
	console *Console
	guest   func(format string, args ...any) // the guest's own console lines

	mu sync.Mutex
	st ComponentStatus
}

func (s *supervisor) status() ComponentStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *supervisor) set(f func(st *ComponentStatus)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

// run starts the process and restarts it whenever it exits, until ctx
// ends; then it signals the process group with how (see shutdown) and
// returns once the process is gone.
func (s *supervisor) run(ctx context.Context, how func() shutdown) {
	backoff := restartMin
	for ctx.Err() == nil {
		started := time.Now()
		err := s.once(ctx, how)
		if ctx.Err() != nil {
			return
		}
		ran := time.Since(started)
		if ran >= restartReset {
			backoff = restartMin
		}
		s.guest("%s exited after %s: %v; restarting in %s", s.name, ran.Round(time.Millisecond), err, backoff)
		s.set(func(st *ComponentStatus) {
			st.State, st.PID, st.Since, st.LastExit = "restarting", 0, time.Now(), err.Error()
			st.Restarts++
		})
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, restartMax)
	}
}

// once runs the process to its end. When ctx ends first it waits for the
// shutdown order how gives and carries it out.
func (s *supervisor) once(ctx context.Context, how func() shutdown) error {
	s.set(func(st *ComponentStatus) { st.State, st.Since = "starting", time.Now() })
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = s.dir
	out := s.console.Line(s.name, func(line string) { s.set(func(st *ComponentStatus) { st.LastLine = line }) })
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	s.set(func(st *ComponentStatus) { st.State, st.PID, st.Since = "running", pid, time.Now() })
	s.guest("started %s (pid %d)", s.name, pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitErr(err)
	case <-ctx.Done():
	}
	sd := how()
	killGroup(pid, sd.signal)
	if sd.grace > 0 {
		t := time.NewTimer(sd.grace)
		select {
		case <-done:
			t.Stop()
			return nil
		case <-t.C:
			s.guest("%s did not stop within %s of SIGTERM; killing it", s.name, sd.grace)
			killGroup(pid, syscall.SIGKILL)
		}
	}
	<-done
	return nil
}

func exitErr(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// shutdown is how a boot ends for its processes: SIGKILL at once (stop,
// halt, zone DOWN, reset) or SIGTERM with a grace period before SIGKILL
// (delete).
type shutdown struct {
	signal syscall.Signal
	grace  time.Duration
}

// Shutdowns.
var (
	killNow = shutdown{signal: syscall.SIGKILL}
	// terminate is a delete's: GCE gives a guest a short graceful
	// shutdown; the apiserver would otherwise wait on its dead etcd for a
	// minute.
	terminate = shutdown{signal: syscall.SIGTERM, grace: 2 * time.Second}
)

func (sd shutdown) String() string {
	name := map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM"}[sd.signal]
	if sd.grace > 0 {
		return fmt.Sprintf("%s, SIGKILL after %s", name, sd.grace)
	}
	return name
}

// checkBinary verifies that path is an executable file.
func checkBinary(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
