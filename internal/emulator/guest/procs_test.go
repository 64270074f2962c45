//go:build linux

package guest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newTestSupervisor(c *Console, argv ...string) *supervisor {
	s := &supervisor{name: "sleeper", argv: argv, console: c,
		guest: func(f string, a ...any) { _, _ = fmt.Fprintf(c, "hakube-guest: "+f+"\n", a...) }}
	s.st.Name = s.name
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSupervisorRestarts: a process that exits is started again after a
// backoff, its exit and its last words reported; ending the context kills
// its process group.
func TestSupervisorRestarts(t *testing.T) {
	c := NewConsole(0)
	s := newTestSupervisor(c, "/bin/sh", "-c", "echo starting up; echo giving up >&2; exit 3")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, func() shutdown { return killNow }) }()
	waitUntil(t, "two restarts", func() bool { return s.status().Restarts >= 2 })
	st := s.status()
	if st.LastExit != "exit status 3" || st.LastLine != "giving up" {
		t.Errorf("status %+v", st)
	}
	cancel()
	<-done
	out, _, _ := c.Read(0)
	for _, want := range []string{"sleeper: starting up\n", "sleeper: giving up\n", "hakube-guest: started sleeper (pid ",
		"hakube-guest: sleeper exited after ", ": exit status 3; restarting in 500ms\n", "restarting in 1s\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}

	// A shutdown signals the whole group: the shell's child goes too.
	s = newTestSupervisor(c, "/bin/sh", "-c", "sleep 60 & echo child $!; wait")
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { defer close(done); s.run(ctx, func() shutdown { return terminate }) }()
	var child int
	waitUntil(t, "the child's pid on the console", func() bool {
		_, err := fmt.Sscanf(s.status().LastLine, "child %d", &child)
		return err == nil
	})
	cancel()
	<-done
	waitUntil(t, "the child gone with its group", func() bool { return errors.Is(syscall.Kill(child, 0), syscall.ESRCH) })
}

// TestProcessesDieWithTheEmulator: when the process that started the
// components dies without cleaning up (a test binary that panics or is
// killed at its timeout), the kernel kills them (PR_SET_PDEATHSIG).
func TestProcessesDieWithTheEmulator(t *testing.T) {
	if os.Getenv("GUEST_TEST_ORPHAN_PARENT") == "1" {
		s := newTestSupervisor(NewConsole(0), "/bin/sleep", "60")
		go s.run(context.Background(), func() shutdown { return killNow })
		for s.status().PID == 0 {
			time.Sleep(time.Millisecond)
		}
		fmt.Println("pid", s.status().PID)
		os.Exit(3) // no cleanup at all
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessesDieWithTheEmulator$")
	cmd.Env = append(os.Environ(), "GUEST_TEST_ORPHAN_PARENT=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Wait()
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil {
		t.Fatalf("child said %q", line)
	}
	waitUntil(t, fmt.Sprintf("the component (pid %d) killed with its parent", pid), func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
}
