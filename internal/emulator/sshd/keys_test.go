package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func testPub(t *testing.T) (ssh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func TestParseMetadata(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	inst, instLine := testPub(t)
	proj, projLine := testPub(t)
	legacy, legacyLine := testPub(t)
	soon, soonLine := testPub(t)
	gone, goneLine := testPub(t)
	gcloudExpiry := func(line, user string, at time.Time) string {
		return user + ":" + line + ` google-ssh {"userName":"` + user + `@example.com","expireOn":"` + at.UTC().Format("2006-01-02T15:04:05+0000") + `"}`
	}
	tests := []struct {
		name       string
		md         Metadata
		user       string
		key        ssh.PublicKey
		wantAccept bool
	}{
		{"instance key", Metadata{Instance: map[string]string{"ssh-keys": "alice:" + instLine + " alice"}}, "alice", inst, true},
		{"another user's key", Metadata{Instance: map[string]string{"ssh-keys": "alice:" + instLine + " alice"}}, "bob", inst, false},
		{"project key", Metadata{Project: map[string]string{"ssh-keys": "hakube:" + projLine + " hakube"}}, "hakube", proj, true},
		{"project key blocked", Metadata{Instance: map[string]string{"block-project-ssh-keys": "TRUE"},
			Project: map[string]string{"ssh-keys": "hakube:" + projLine}}, "hakube", proj, false},
		{"block-project-ssh-keys false", Metadata{Instance: map[string]string{"block-project-ssh-keys": "false"},
			Project: map[string]string{"ssh-keys": "hakube:" + projLine}}, "hakube", proj, true},
		{"legacy instance sshKeys count and block the project's", Metadata{Instance: map[string]string{"sshKeys": "old:" + legacyLine},
			Project: map[string]string{"ssh-keys": "hakube:" + projLine}}, "hakube", proj, false},
		{"legacy instance sshKeys", Metadata{Instance: map[string]string{"sshKeys": "old:" + legacyLine}}, "old", legacy, true},
		{"google-ssh not expired", Metadata{Project: map[string]string{"ssh-keys": gcloudExpiry(soonLine, "carol", now.Add(time.Minute))}}, "carol", soon, true},
		{"google-ssh expired", Metadata{Project: map[string]string{"ssh-keys": gcloudExpiry(goneLine, "carol", now.Add(-time.Minute))}}, "carol", gone, false},
		{"google-ssh RFC 3339", Metadata{Project: map[string]string{"ssh-keys": "carol:" + soonLine + ` google-ssh {"userName":"c","expireOn":"` + now.Add(time.Hour).Format(time.RFC3339) + `"}`}}, "carol", soon, true},
		{"google-ssh without expiry", Metadata{Project: map[string]string{"ssh-keys": "carol:" + soonLine + " google-ssh"}}, "carol", soon, false},
		{"malformed lines skipped", Metadata{Instance: map[string]string{"ssh-keys": "no colon here\n:" + instLine + "\nalice:ssh-ed25519 !!!\n\n  alice:" + instLine + "  \n"}}, "alice", inst, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseMetadata(tt.md, now).Allows(tt.user, tt.key); got != tt.wantAccept {
				t.Errorf("Allows(%s) = %v, want %v", tt.user, got, tt.wantAccept)
			}
		})
	}
}
