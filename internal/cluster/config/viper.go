package config

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// newViper builds the precedence engine of one Load: a fresh viper, never the
// global one, so that loads share nothing. For every setting it holds the
// default for cmd, the setting's flag, its environment variables and the
// config file's value, and resolves them as flag (only when Changed) >
// environment > config file > default.
//
// Environment variables are bound in the table's order. For a key bound to
// several names, viper takes the first name that is set and non-empty
// (AllowEmptyEnv stays off, so an empty variable is unset, as in kube-up's
// ${VAR:-default}): the table's own rule, so PROJECT beats
// CLOUDSDK_CORE_PROJECT and the right ENABLE_ETCD_QUORUM_READ beats the
// misspelt one.
//
// The config file reaches viper through MergeConfigMap, as the text that
// readConfigFile's strict pass read, rather than through ReadInConfig:
// viper's own YAML decoding is not strict, turns "3.0" into 3 and "0x10" into
// 16 (so messages would not quote what the user wrote), and would let an empty
// value hide the default.
func newViper(specs []settingSpec, cmd string, fs *pflag.FlagSet, file map[string]string) (*viper.Viper, error) {
	v := viper.New()
	for _, s := range specs {
		if s.derive == nil {
			v.SetDefault(s.key, s.defaultFor(cmd))
		}
		if !s.settable() || !s.readBy(cmd) {
			continue
		}
		if fs != nil {
			if f := fs.Lookup(s.flag); f != nil { // a caller may register only some flags
				if err := v.BindPFlag(s.key, f); err != nil {
					return nil, fmt.Errorf("setting %s: %w", s.key, err)
				}
			}
		}
		if len(s.env) > 0 { // BindEnv with the key alone would bind an env name made from the key
			if err := v.BindEnv(append([]string{s.key}, s.env...)...); err != nil {
				return nil, fmt.Errorf("setting %s: %w", s.key, err)
			}
		}
	}
	if len(file) > 0 {
		m := make(map[string]any, len(file))
		for _, s := range specs {
			if raw, ok := file[s.key]; ok && s.readBy(cmd) {
				m[s.key] = raw
			}
		}
		if err := v.MergeConfigMap(m); err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
	}
	return v, nil
}

// source says which input gives s its value, which viper does not report:
// the flag if Changed, else the first of the setting's environment variables
// that is set and non-empty, else the config file if viper holds the key
// there. The returned input's raw is what that layer itself holds, so Load can
// check that viper resolved the same value. ok is false when the user gave no
// value and the default (or derivation) applies.
//
// source also warns about kube-up's misspelt ENABLE_ETCD_QUORUM_READS, whether
// it is honoured or ignored.
func (s settingSpec) source(v *viper.Viper, fs *pflag.FlagSet, path string, file map[string]string, warn func(string)) (in input, ok bool) {
	if !s.settable() {
		return input{}, false
	}
	if fs != nil {
		if f := fs.Lookup(s.flag); f != nil && f.Changed {
			in, ok = input{raw: f.Value.String(), origin: Origin{Source: SourceFlag, Name: "--" + s.flag}}, true
		}
	}
	for _, name := range s.env {
		val, set := os.LookupEnv(name)
		if !set || val == "" {
			continue
		}
		if right, isMisspelt := s.misspelt[name]; isMisspelt {
			if ok {
				warn(fmt.Sprintf("%s is ignored: it is a misspelling of %s (from kube-up's HA guide), and %s is set", name, right, in.name()))
			} else {
				warn(fmt.Sprintf("%s is a misspelling of %s (from kube-up's HA guide, where kube-up ignored it); hakube honours it, but set %s instead", name, right, right))
			}
		}
		if !ok {
			in, ok = input{raw: val, origin: Origin{Source: SourceEnv, Name: name}}, true
		}
	}
	if !ok && v.InConfig(s.key) {
		in, ok = input{raw: file[s.key], origin: Origin{Source: SourceFile, Name: path + ":" + s.key}}, true
	}
	return in, ok
}

// warnUnread reports a flow switch set in the environment for a command that
// does not read it: kube-up's scripts ignored such variables silently, and a
// CI job that exports KUBE_REPLICA_NAME for `up` probably meant something.
func (s settingSpec) warnUnread(cmd string, warn func(string)) {
	if !s.selectsFlow {
		return
	}
	for _, name := range s.env {
		if val := os.Getenv(name); val != "" {
			warn(fmt.Sprintf("%s=%s is set, but hakube %s does not read it (%s)", name, shellQuote(val), cmd, s.help))
		}
	}
}

// disagree reports a value viper resolved that is not the one the origin
// holds: a bug in newViper or source, never the user's mistake, so it does
// not wrap ErrInvalidConfig.
func disagree(key, resolved string, origin input) error {
	return fmt.Errorf("setting %s: viper resolved %q, but its origin (%v) holds %q: newViper and source disagree on precedence",
		key, resolved, origin.origin, origin.raw)
}
