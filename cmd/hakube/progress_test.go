package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hakube/hakube/internal/cluster"
)

// TestProgressOffATerminalIsThrottled feeds the display a progress line per
// second per waiting step, as the waits send them, on a fake clock, and
// checks what reaches a log: the first line of a step, then one every 15 s.
func TestProgressOffATerminalIsThrottled(t *testing.T) {
	move := &cluster.Step{ID: "move static IP", Action: "move", Resource: "static IP"}
	verify := &cluster.Step{ID: "verify https://ip", Action: "wait", Resource: "api"}
	type event = progressEvent
	every := func(step *cluster.Step, from, to int) []event {
		var out []event
		for s := from; s <= to; s++ {
			out = append(out, event{at: s, step: step})
		}
		return out
	}
	tests := []struct {
		name   string
		events []event
		want   []string // "<step>@<elapsed>"
	}{
		{"one wait of a minute", every(move, 1, 60),
			[]string{"move static IP@1s", "move static IP@16s", "move static IP@31s", "move static IP@46s"}},
		{"two steps waiting at once are spaced independently",
			interleave(every(move, 1, 20), every(verify, 5, 20)),
			[]string{"move static IP@1s", "verify https://ip@5s", "move static IP@16s", "verify https://ip@20s"}},
		{"a step that finishes and runs again starts afresh",
			append(append(every(move, 1, 3), event{at: 3, step: move, done: true}), every(move, 4, 5)...),
			[]string{"move static IP@1s", "move static IP@4s"}},
	}
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				var buf bytes.Buffer
				core, logs := observer.New(zapcore.InfoLevel)
				clock := time.Unix(0, 0)
				p := &progress{w: &buf, json: format == "json", log: zap.New(core), now: func() time.Time { return clock },
					running: map[string]*cluster.Step{}, last: map[string]string{}, printed: map[string]time.Time{}}
				for _, e := range tt.events {
					clock = time.Unix(int64(e.at), 0)
					if e.done {
						p.StepDone(e.step, nil, time.Second)
						continue
					}
					p.StepStarted(e.step)
					p.stepProgress(e.step.ID, fmt.Sprintf("%s@%ds", e.step.ID, e.at))
				}
				var got []string
				if format == "json" {
					for _, l := range logs.FilterMessage("step progress").All() {
						got = append(got, l.ContextMap()["message"].(string))
					}
				} else {
					for _, l := range strings.Split(buf.String(), "\n") {
						if msg, ok := strings.CutPrefix(l, "   … "); ok {
							got = append(got, msg)
						}
					}
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("progress lines (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// progressEvent is one call into the display at a second of a fake clock.
type progressEvent struct {
	at   int
	step *cluster.Step
	done bool // the step finishes instead of reporting
}

// interleave merges event lists by time, keeping each list's order.
func interleave(a, b []progressEvent) []progressEvent {
	var out []progressEvent
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || (len(a) > 0 && a[0].at <= b[0].at) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}
