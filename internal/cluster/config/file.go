package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// readConfigFile decodes a config file strictly: every key must be a setting
// (a typo would otherwise silently fall back to a default) and every value a
// scalar. Viper alone would accept both. It returns each set value's text,
// exactly as written, by key (null and empty values are unset and left out),
// the problems that do not stop the other settings from being checked, and a
// fatal error when the file cannot be read or understood at all.
func readConfigFile(path string, specs []settingSpec) (map[string]string, []error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil, nil // an empty file sets nothing
	} else if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s: want one YAML document, found more", path)
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("%s:%d: want a mapping of settings, like \"zone: europe-west1-c\"", path, root.Line)
	}

	byKey := make(map[string]settingSpec)
	var known []string
	for _, s := range specs {
		if s.settable() {
			byKey[s.key] = s
			known = append(known, s.key)
		}
	}
	header := map[string]string{"apiVersion": APIVersion, "kind": Kind}

	file := make(map[string]string)
	var problems []error
	seen := make(map[string]int) // key → line
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		for v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		key := k.Value
		if line, dup := seen[key]; dup {
			problems = append(problems, fmt.Errorf("%s:%d: key %q is already set on line %d", path, k.Line, key, line))
			continue
		}
		seen[key] = k.Line
		if want, ok := header[key]; ok {
			if v.Kind != yaml.ScalarNode || v.Value != want {
				return nil, nil, fmt.Errorf("%s:%d: %s %q is not supported (want %s)", path, k.Line, key, v.Value, want)
			}
			continue
		}
		s, ok := byKey[key]
		if !ok {
			problems = append(problems, unknownKey(path, k.Line, key, known))
			continue
		}
		name := path + ":" + key
		if v.Kind != yaml.ScalarNode {
			problems = append(problems, fmt.Errorf("%s: want %s, got a %s (line %d)", name, s.kind.describe(), nodeKind(v), v.Line))
			continue
		}
		if v.Tag == "!!null" || v.Value == "" {
			continue // unset, like an empty environment variable
		}
		file[key] = v.Value
	}
	return file, problems, nil
}

func unknownKey(path string, line int, key string, known []string) error {
	hint := ""
	best, bestDist := "", 3 // suggest only close matches
	for _, k := range known {
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		hint = fmt.Sprintf("; did you mean %q?", best)
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	return fmt.Errorf("%s: unknown key %q on line %d%s (known keys: apiVersion, kind, %s)",
		path, key, line, hint, strings.Join(sorted, ", "))
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	}
	return "non-scalar"
}

func (k kind) describe() string {
	switch k {
	case kindBool:
		return "true or false"
	case kindInt:
		return "a whole number"
	case kindDuration:
		return "a duration like 90s"
	case kindDiskSize:
		return "a disk size like 100GB"
	}
	return "a string"
}

func (k kind) yamlTag() string {
	switch k {
	case kindBool:
		return "!!bool"
	case kindInt:
		return "!!int"
	}
	return "!!str"
}

// MarshalYAML renders the settable settings in config-file shape, so the
// output of `config view` (or `up --dry-run -o yaml`) can be fed back with
// --config. Derived values (master disk sizes) are left out: they are not keys.
// It has a value receiver so that both Config and *Config marshal this way.
func (c Config) MarshalYAML() (any, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key, tag, value string) {
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value})
	}
	add("apiVersion", "!!str", APIVersion)
	add("kind", "!!str", Kind)
	for _, s := range settingSpecs() {
		if s.settable() {
			add(s.key, s.kind.yamlTag(), s.display(&c))
		}
	}
	return m, nil
}

// View renders the effective settings as a config file.
func (c *Config) View() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
