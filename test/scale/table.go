package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func printTable(out io.Writer, rows []row) {
	fmt.Fprintln(out, "hakube at --latency fast, real control plane; requests all/mutations/operation polls; peak RSS during the step")
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "nodes\tstep\twall\trequests\thakube RSS\temulator RSS\thakube CPU\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%.2f s\t%d/%d/%d\t%s\t%s\t%.2f s\t\n", r.nodes, r.step, r.wall.Seconds(),
			r.requests, r.mutations, r.ops, mib(r.hakubeRSS), mib(r.emulatorRSS), r.cpu.Seconds())
	}
	tw.Flush()
}

// perNodeLimit is the most requests a step may add per added node between
// the smallest and a larger cluster. A call per VM adds 1; paging through
// the VMs 500 at a time adds 1/500 per list, and the waits' polls add
// with their duration: one request per 20 nodes is far from either.
const perNodeLimit = 0.05

// checkRequests fails when a step's requests grow with the nodes rather
// than with pages.
func checkRequests(rows []row) error {
	first := map[string]row{}
	var bad []string
	for _, r := range rows {
		key := stepKind(r.step)
		f, ok := first[key]
		if !ok {
			first[key] = r
			continue
		}
		if added := r.nodes - f.nodes; added > 0 {
			if per := float64(r.requests-f.requests) / float64(added); per > perNodeLimit {
				bad = append(bad, fmt.Sprintf("%s: %d requests at %d nodes, %d at %d (%.3f per added node)", key, r.requests, r.nodes, f.requests, f.nodes, per))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("requests grow with the nodes:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// stepKind is a step's name without its sizes ("resize to 400" → "resize").
func stepKind(s string) string {
	k, _, _ := strings.Cut(s, " to ")
	return k
}
