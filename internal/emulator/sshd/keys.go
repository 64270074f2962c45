package sshd

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hakube/hakube/internal/vmcontract"
)

// keyLegacySSHKeys is ssh-keys' deprecated form; on an instance it also
// blocks the project's keys, as the guest agent reads it.
const keyLegacySSHKeys = "sshKeys"

// Metadata is what a VM's guest agent reads at each login: the instance's
// metadata items and the project's common instance metadata items.
type Metadata struct {
	Instance, Project map[string]string
}

// AuthorizedKeys is who may log in: user → keys.
type AuthorizedKeys map[string][]ssh.PublicKey

// Allows reports whether user may log in with key.
func (a AuthorizedKeys) Allows(user string, key ssh.PublicKey) bool {
	want := key.Marshal()
	for _, k := range a[user] {
		if string(k.Marshal()) == string(want) {
			return true
		}
	}
	return false
}

// ParseMetadata turns metadata into authorized keys as GCE's guest agent
// does: the instance's ssh-keys (and legacy sshKeys) and, unless the
// instance sets block-project-ssh-keys (or legacy sshKeys), the project's;
// lines of `user:key-type base64 [comment]`; a key whose comment is
// `google-ssh {"userName":...,"expireOn":...}` counts until it expires, and
// one whose expiry cannot be read does not count. Malformed lines are
// skipped, as the agent skips them.
func ParseMetadata(md Metadata, now time.Time) AuthorizedKeys {
	lines := splitLines(md.Instance[vmcontract.KeySSHKeys])
	block, _ := strconv.ParseBool(md.Instance[vmcontract.KeyBlockProjectSSHKeys])
	if legacy := md.Instance[keyLegacySSHKeys]; legacy != "" {
		lines = append(lines, splitLines(legacy)...)
		block = true
	}
	if !block {
		lines = append(lines, splitLines(md.Project[vmcontract.KeySSHKeys])...)
		lines = append(lines, splitLines(md.Project[keyLegacySSHKeys])...)
	}
	out := AuthorizedKeys{}
	for _, line := range lines {
		user, key, ok := parseKeyLine(line, now)
		if ok {
			out[user] = append(out[user], key)
		}
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseKeyLine reads one `user:key-type base64 [comment]` line.
func parseKeyLine(line string, now time.Time) (string, ssh.PublicKey, bool) {
	user, rest, ok := strings.Cut(line, ":")
	if !ok || user == "" || strings.ContainsAny(user, " \t") {
		return "", nil, false
	}
	fields := strings.SplitN(strings.TrimSpace(rest), " ", 4)
	if len(fields) < 2 {
		return "", nil, false
	}
	if len(fields) >= 3 && fields[2] == "google-ssh" {
		if len(fields) < 4 || expired(fields[3], now) {
			return "", nil, false
		}
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(fields[0] + " " + fields[1]))
	if err != nil {
		return "", nil, false
	}
	return user, key, true
}

// expired reads a google-ssh comment's expireOn, in gcloud's format
// (2006-01-02T15:04:05+0000) or RFC 3339; unreadable counts as expired.
func expired(comment string, now time.Time) bool {
	var c struct {
		ExpireOn string `json:"expireOn"`
	}
	if err := json.Unmarshal([]byte(comment), &c); err != nil {
		return true
	}
	t, err := time.Parse("2006-01-02T15:04:05-0700", c.ExpireOn)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, c.ExpireOn); err != nil {
			return true
		}
	}
	return !t.After(now)
}
