package startup

import (
	"fmt"
	"strings"
)

// unit is a systemd service of a real VM.
type unit struct {
	Name        string // etcd: /etc/systemd/system/etcd.service
	Description string
	After       []string
	Wants       []string
	// MountsFor is a path the service must not start without (etcd's data
	// disk): systemd orders it after that mount and stops it if it goes.
	MountsFor string
	// EnvFile is a file of VAR=value lines the VM writes at boot; Expand
	// names its variables that Exec refers to as ${VAR}, which systemd
	// replaces (each reference stays within its word). Every other $ is
	// literal.
	EnvFile string
	Expand  []string
	Exec    []string // the program (absolute) and its arguments, verbatim but for Expand
}

func (u unit) path() string { return "/etc/systemd/system/" + u.Name + ".service" }

// render writes the unit file. Every argument is quoted for systemd, so
// what the process gets is exactly u.Exec.
func (u unit) render() string {
	var b strings.Builder
	b.WriteString("# Written by hakube's startup-script (internal/startup) at every boot: edits here do not last.\n")
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=hakube: %s\n", u.Description)
	b.WriteString("Documentation=https://github.com/hakube/hakube/blob/main/docs/vm-contract.md\n")
	if len(u.After) > 0 {
		fmt.Fprintf(&b, "After=%s\n", strings.Join(u.After, " "))
	}
	if len(u.Wants) > 0 {
		fmt.Fprintf(&b, "Wants=%s\n", strings.Join(u.Wants, " "))
	}
	if u.MountsFor != "" {
		fmt.Fprintf(&b, "RequiresMountsFor=%s\n", u.MountsFor)
	}
	b.WriteString("\n[Service]\n")
	if u.EnvFile != "" {
		// No "-": the service must not start without the file.
		fmt.Fprintf(&b, "EnvironmentFile=%s\n", u.EnvFile)
	}
	var keep []string
	for _, v := range u.Expand {
		keep = append(keep, "$${"+v+"}", "${"+v+"}")
	}
	expand := strings.NewReplacer(keep...)
	b.WriteString("ExecStart=" + systemdArg(u.Exec[0]))
	for _, a := range u.Exec[1:] {
		b.WriteString(" \\\n  " + expand.Replace(systemdArg(a)))
	}
	b.WriteString("\nRestart=always\nRestartSec=5\nLimitNOFILE=1048576\n")
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// systemdArg quotes one word of an ExecStart= line (systemd.service(5),
// "Command lines"): % and $ would be expanded (specifiers, environment) and
// are doubled; a word with white space, quotes or backslashes goes in double
// quotes with C escapes; a lone ";" would separate commands.
func systemdArg(s string) string {
	s = strings.NewReplacer("%", "%%", "$", "$$").Replace(s)
	switch {
	case s == ";":
		return `\;`
	case s != "" && !strings.ContainsAny(s, " \t\n\"'\\"):
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(s) + `"`
}
