package startup

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hakube/hakube/internal/vmcontract"
)

// The script's kube-env parser (lib.sh's parse_env) and vmcontract's
// ParseKubeEnv read every text alike: the same keys and values, or both
// refuse it.
func TestParserAgreesWithVMContract(t *testing.T) {
	nodeText := nodeEnv().String()
	tricky := vmcontract.NewKubeEnv()
	tricky.Set("QUOTES", `it's "quoted" ''`)
	tricky.Set("EMPTY", "")
	tricky.Set("SPACES", "  padded  ")
	tricky.Set("URL", "https://10.0.0.1:443/x?a=b#c")
	tricky.Set("SHELL", "$(touch pwned) `touch pwned` ${X:-y} \\ ; | & > <")
	texts := []string{
		nodeText,
		firstMaster.env().String(),
		testCerts().Encode(),
		tricky.String(),
		"A: 'x'\nA: 'y'\n",                   // the last one wins
		"A: plain\nB: 6443\nC: \"double\"\n", // bare and double-quoted
		"  A  :   ' spaced '   \n",
		"A: 'x'\r\nB: y\r\n", // CRLF
		"# a comment\n\n   # indented\nA: 'x'\n\n",
		"A: 'unbalanced\nB: unbalanced'\nC: '\n", // taken as they are
		"A: ''''\nB: 'a''b'\nC: ''\n",
		"A: 'x'",       // no final newline
		"K: a: b: c\n", // the first colon splits
		"KEY WITH SPACES: 'v'\n",
		"$(touch pwned): 'key'\n`touch pwned`: x\n",
		"A\t:\t'tabs'\t\n",
		"",
		"no colon\n", // refused
		"A: 'x'\n   : 'no key'\n",
		"A: 'x'\nB\n",
	}
	rng := rand.New(rand.NewPCG(11, 2026))
	alphabet := []string{"A", "b", "_", "1", ":", ":", "'", "'", "''", `"`, " ", " ", "\t", "\r", "#", "$", "\\", "=", "x"}
	for range 300 {
		var b strings.Builder
		for range rng.IntN(4) + 1 {
			for range rng.IntN(12) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			b.WriteString("\n")
		}
		texts = append(texts, b.String())
	}

	got := bashParse(t, texts)
	for i, text := range texts {
		e, err := vmcontract.ParseKubeEnv(text)
		switch {
		case err != nil && got[i] != nil:
			t.Errorf("%q: vmcontract refuses it (%v), the script reads %q", text, err, got[i])
		case err == nil && got[i] == nil:
			t.Errorf("%q: the script refuses it, vmcontract reads %q", text, asMap(e))
		case err == nil:
			if diff := cmp.Diff(asMap(e), got[i]); diff != "" {
				t.Errorf("%q (-vmcontract +script):\n%s", text, diff)
			}
		}
	}
}

func asMap(e *vmcontract.KubeEnv) map[string]string {
	m := map[string]string{}
	for _, k := range e.Keys() {
		m[k] = e.Get(k)
	}
	return m
}

// bashParse runs lib.sh's parse_env on each text, in one bash; a refused
// text is nil.
func bashParse(t *testing.T, texts []string) []map[string]string {
	t.Helper()
	dir := t.TempDir()
	lib, err := scripts.ReadFile("scripts/lib.sh")
	must(t, err)
	must(t, os.WriteFile(dir+"/lib.sh", lib, 0o644))
	var files []string
	for i, text := range texts {
		f := filepath.Join(dir, strconv.Itoa(i))
		must(t, os.WriteFile(f, []byte(text), 0o644))
		files = append(files, f)
	}
	driver := `
source "$1/lib.sh"
shift
mkdir -p "$RUN_DIR"
export LC_ALL=C
for f in "$@"; do
	(
		declare -A E=()
		parse_env E kube-env <"$f"
		for k in "${!E[@]}"; do printf '%s\0%s\0' "$k" "${E[$k]}"; done
	) >"$f.out" 3>/dev/null
	echo $? >"$f.rc"
done
`
	cmd := exec.Command("/bin/bash", append([]string{"-c", driver, "driver", dir}, files...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HAKUBE_ROOT=" + dir + "/root"}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := os.Stat(dir + "/pwned"); err == nil {
		t.Fatal("parsing kube-env ran a command")
	}
	out := make([]map[string]string, len(texts))
	for i, f := range files {
		rc, err := os.ReadFile(f + ".rc")
		must(t, err)
		if strings.TrimSpace(string(rc)) != "0" {
			continue
		}
		b, err := os.ReadFile(f + ".out")
		must(t, err)
		m := map[string]string{}
		parts := strings.Split(string(b), "\x00")
		if len(parts)%2 != 1 {
			t.Fatalf("%s: odd output %q", fmt.Sprint(i), b)
		}
		for j := 0; j+1 < len(parts); j += 2 {
			m[parts[j]] = parts[j+1]
		}
		out[i] = m
	}
	return out
}
