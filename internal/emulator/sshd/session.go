package sshd

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// result is what one command did: its output and exit status, and what it
// asks the machine for once the status is sent.
type result struct {
	stdout, stderr string
	status         uint32
	then           func()
}

// gcloudIDCheck is the line gcloud compute ssh --internal-ip runs first to
// check it reached the right VM (when it has no host key to trust): the
// metadata server's instance id compared with the one gcloud read.
var gcloudIDCheck = regexp.MustCompile("^\\[ `curl \"http://metadata\\.google\\.internal/computeMetadata/v1/instance/id\" -H \"Metadata-Flavor: Google\" -q` = ([0-9]+) \\] \\|\\| exit 23$")

// run runs one command line the way bash -c would on the VM, for the
// commands an emulated VM has.
func (s *Server) run(line string) result {
	if m := gcloudIDCheck.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
		if id, err := strconv.ParseUint(m[1], 10, 64); err == nil && id == s.cfg.InstanceID && id != 0 {
			return result{}
		}
		return result{status: 23}
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return result{}
	}
	if f[0] != "sudo" {
		return s.builtin(f, "bash: %s: command not found\n", 127)
	}
	if len(f) == 1 {
		return result{stderr: "usage: sudo -h | -K | -k | -V\nusage: sudo [command [arg ...]]\n", status: 1}
	}
	switch f[1] {
	case "halt", "poweroff":
		return result{then: s.cfg.Halt}
	case "reboot":
		return result{then: s.cfg.Reboot}
	}
	return s.builtin(f[1:], "sudo: %s: command not found\n", 1)
}

// builtin runs what needs no privilege; anything else is not found.
func (s *Server) builtin(f []string, notFound string, status uint32) result {
	switch f[0] {
	case "true":
		return result{}
	case "hostname":
		return result{stdout: s.cfg.Hostname + "\n"}
	}
	return result{stderr: fmt.Sprintf(notFound, f[0]), status: status}
}

// session serves one session channel: exec runs a command, shell a prompt
// over the same commands; pty-req and env are accepted, subsystems (sftp)
// are not.
func (s *Server) session(sc *ssh.ServerConn, nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	pty := false
	for req := range reqs {
		switch req.Type {
		case "pty-req":
			pty = true
			_ = req.Reply(true, nil)
		case "env", "window-change":
			_ = req.Reply(true, nil)
		case "exec":
			var m struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &m); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			s.finish(ch, s.run(m.Command))
			return
		case "shell":
			_ = req.Reply(true, nil)
			go ssh.DiscardRequests(reqs)
			s.shell(sc.User(), ch, pty)
			return
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// finish writes a command's output and exit status and closes the
// channel; what the command asks the machine for happens after, as a halt
// ends the connection only once the command has returned.
func (s *Server) finish(ch ssh.Channel, r result) {
	_, _ = io.WriteString(ch, r.stdout)
	_, _ = io.WriteString(ch.Stderr(), r.stderr)
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{r.status}))
	_ = ch.Close()
	if r.then != nil {
		go r.then()
	}
}

// shell is a minimal interactive prompt over the same commands, with line
// editing when the client asked for a terminal.
func (s *Server) shell(user string, ch ssh.Channel, pty bool) {
	prompt := user + "@" + s.cfg.Hostname + ":~$ "
	var readLine func() (string, error)
	var out, errOut io.Writer = ch, ch.Stderr()
	if pty {
		t := term.NewTerminal(ch, prompt)
		readLine, out, errOut = t.ReadLine, t, t
	} else {
		r := bufio.NewReader(ch)
		readLine = func() (string, error) {
			l, err := r.ReadString('\n')
			if err != nil && l == "" {
				return "", err
			}
			return strings.TrimRight(l, "\r\n"), nil
		}
	}
	var last uint32
	for {
		line, err := readLine()
		if err != nil {
			s.finish(ch, result{status: last})
			return
		}
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "exit" || f[0] == "logout") {
			s.finish(ch, result{status: last})
			return
		}
		r := s.run(line)
		_, _ = io.WriteString(out, r.stdout)
		_, _ = io.WriteString(errOut, r.stderr)
		last = r.status
		if r.then != nil {
			s.finish(ch, result{status: 0, then: r.then})
			return
		}
	}
}
