package vmcontract

import (
	"fmt"
	"sort"
	"strings"
)

// KubeEnv is the kube-env metadata of a VM: YAML of `KEY: 'value'` lines, as
// kube-up writes it. Order is kept so a rewritten kube-env reads like the
// original.
type KubeEnv struct {
	keys   []string
	values map[string]string
}

// NewKubeEnv returns an empty kube-env.
func NewKubeEnv() *KubeEnv { return &KubeEnv{values: map[string]string{}} }

// ParseKubeEnv reads kube-env text. Values are single-quoted (” escapes a
// quote), double-quoted or bare.
func ParseKubeEnv(text string) (*KubeEnv, error) {
	e := NewKubeEnv()
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("kube-env line %d: want KEY: 'value', got %q", i+1, line)
		}
		v = strings.TrimSpace(v)
		switch {
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = strings.ReplaceAll(v[1:len(v)-1], "''", "'")
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = v[1 : len(v)-1]
		}
		e.Set(strings.TrimSpace(k), v)
	}
	return e, nil
}

// Set adds or replaces a key, keeping its position when it exists.
func (e *KubeEnv) Set(key, value string) {
	if _, ok := e.values[key]; !ok {
		e.keys = append(e.keys, key)
	}
	e.values[key] = value
}

// Has reports whether the key is set.
func (e *KubeEnv) Has(key string) bool { _, ok := e.values[key]; return ok }

// Get returns a value ("" when absent).
func (e *KubeEnv) Get(key string) string { return e.values[key] }

// Keys returns the keys in order.
func (e *KubeEnv) Keys() []string { return append([]string(nil), e.keys...) }

// String renders kube-env text.
func (e *KubeEnv) String() string {
	var b strings.Builder
	for _, k := range e.keys {
		fmt.Fprintf(&b, "%s: '%s'\n", k, strings.ReplaceAll(e.values[k], "'", "''"))
	}
	return b.String()
}

// SplitList parses a comma-separated list, dropping empties.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// JoinList renders a comma-separated list of the names, sorted and unique
// (INITIAL_ETCD_CLUSTER).
func JoinList(names ...string) string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
