package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	compute "google.golang.org/api/compute/v1"
)

// knownHosts remembers the SSH host keys the masters published across
// runs, as gcloud's google_compute_known_hosts does, under gcloud's alias
// compute.<instance id>: a run that reaches etcd then reads no guest
// attributes for a master an earlier run already met. The file is a cache,
// never the authority: a key it does not hold is checked against what the
// VM publishes now (an id can come back, an emulator's state reset), and
// the file follows.
type knownHosts struct {
	file string // "" remembers nothing
	mu   sync.Mutex
}

// alias names a VM in the file, as gcloud compute ssh's HostKeyAlias.
func alias(in *compute.Instance) string { return "compute." + strconv.FormatUint(in.Id, 10) }

// lookup returns the keys remembered for the VM (none when the file is
// missing or unreadable: the VM's published keys are read instead).
func (k *knownHosts) lookup(in *compute.Instance) []ssh.PublicKey {
	if k.file == "" || in.Id == 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b, err := os.ReadFile(k.file)
	if err != nil {
		return nil
	}
	var keys []ssh.PublicKey
	eachLine(b, func(line []byte) {
		if hosts, key, ok := parseLine(line); ok && slices.Contains(hosts, alias(in)) {
			keys = append(keys, key)
		}
	})
	return keys
}

// eachLine calls f with each line of b, without its newline.
func eachLine(b []byte, f func(line []byte)) {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		f(line)
		b = rest
	}
}

// parseLine reads one known_hosts line: its hosts and key (ok false for a
// comment, a blank line or one that does not parse).
func parseLine(line []byte) (hosts []string, key ssh.PublicKey, ok bool) {
	_, hosts, key, _, _, err := ssh.ParseKnownHosts(line)
	return hosts, key, err == nil
}

// remember replaces the VM's keys in the file: written to a temporary file
// and renamed, 0600, so a reader never sees half of it. A failure only
// costs the next run a read of the guest attributes.
func (k *knownHosts) remember(in *compute.Instance, keys []ssh.PublicKey) error {
	if k.file == "" || in.Id == 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old, err := os.ReadFile(k.file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var out bytes.Buffer
	eachLine(old, func(line []byte) {
		if hosts, _, ok := parseLine(line); !ok || !slices.Equal(hosts, []string{alias(in)}) {
			out.Write(line)
			out.WriteByte('\n')
		}
	})
	for _, key := range keys {
		out.WriteString(knownhosts.Line([]string{alias(in)}, key) + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(k.file), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(k.file), ".known_hosts-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), k.file); err != nil {
		return fmt.Errorf("remember the SSH host keys of %s: %w", in.Name, err)
	}
	return nil
}
