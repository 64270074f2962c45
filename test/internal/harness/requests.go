package harness

import (
	"fmt"
	"sort"
	"strings"
)

// Classify splits request counts per API method (the emulator's control
// API's RequestCounts) into all, mutations and operation polls.
func Classify(counts map[string]int64) (all, mutations, polls int64) {
	for method, n := range counts {
		all += n
		verb := method[strings.LastIndexByte(method, '.')+1:]
		switch {
		case strings.Contains(method, "Operations."):
			polls += n
		case strings.HasPrefix(verb, "get") || strings.HasPrefix(verb, "list") || strings.HasPrefix(verb, "aggregatedList"):
		default:
			mutations += n
		}
	}
	return all, mutations, polls
}

// PerMethod lists the counts, most first.
func PerMethod(counts map[string]int64) string {
	type mc struct {
		m string
		n int64
	}
	var l []mc
	for m, n := range counts {
		l = append(l, mc{strings.TrimPrefix(m, "compute."), n})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n || l[i].n == l[j].n && l[i].m < l[j].m })
	var b strings.Builder
	for i, x := range l {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", x.m, x.n)
	}
	return b.String()
}
