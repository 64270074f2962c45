package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/briandowns/spinner"
	"go.uber.org/zap"

	"github.com/hakube/hakube/internal/cluster"
)

// progress shows a run on stderr: one line per finished step with its
// duration; on a terminal, a spinner naming what is running meanwhile. With
// --log-format json it emits structured log events instead.
type progress struct {
	w       io.Writer
	tty     bool
	json    bool
	log     *zap.Logger
	now     func() time.Time
	mu      sync.Mutex
	spin    *spinner.Spinner
	running map[string]*cluster.Step
	last    map[string]string    // latest progress line per step
	printed map[string]time.Time // when a step's last line was written (off a terminal)
}

// progressEvery spaces the progress lines of one step off a terminal: a
// wait reports about once a second, which a CI log does not need (the
// spinner on a terminal shows every update).
const progressEvery = 15 * time.Second

func newProgress(g *globalOptions) *progress {
	p := &progress{w: g.streams.err, tty: isTTY(g.streams.err) && g.logFormat == "text", json: g.logFormat == "json",
		log: g.log, now: time.Now, running: map[string]*cluster.Step{}, last: map[string]string{}, printed: map[string]time.Time{}}
	if p.tty {
		p.spin = spinner.New(spinner.CharSets[14], 120*time.Millisecond, spinner.WithWriter(g.streams.err))
	}
	return p
}

func (p *progress) StepStarted(s *cluster.Step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[s.ID] = s
	if p.json {
		p.log.Info("step started", zap.String("step", s.ID), zap.String("action", s.Action), zap.String("resource", s.Resource))
		return
	}
	p.refresh()
}

func (p *progress) StepDone(s *cluster.Step, err error, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, s.ID)
	delete(p.last, s.ID)
	delete(p.printed, s.ID)
	if p.json {
		fields := []zap.Field{zap.String("step", s.ID), zap.Duration("took", took)}
		if err != nil {
			p.log.Error("step failed", append(fields, zap.Error(err))...)
		} else {
			p.log.Info("step done", fields...)
		}
		return
	}
	p.pause()
	mark := "✓"
	if err != nil {
		mark = "✗"
	}
	fmt.Fprintf(p.w, " %s %s %s (%s)\n", mark, s.Action, s.Resource, round(took))
	if err != nil {
		fmt.Fprint(p.w, indent(err.Error(), "     "))
	}
	p.refresh()
}

// stepProgress shows what a long wait is doing: on a terminal at once, in
// the spinner's line; elsewhere the first line of a step and then at most
// one every progressEvery (each line carries elapsed time and deadline).
func (p *progress) stepProgress(step, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[step] = msg
	if p.tty {
		p.refresh()
		return
	}
	now := p.now()
	if at, ok := p.printed[step]; ok && now.Sub(at) < progressEvery {
		return
	}
	p.printed[step] = now
	if p.json {
		p.log.Info("step progress", zap.String("step", step), zap.String("message", msg))
		return
	}
	fmt.Fprintf(p.w, "   … %s\n", msg)
}

// refresh updates the spinner's line to what runs now. Called with mu held.
func (p *progress) refresh() {
	if !p.tty {
		return
	}
	if len(p.running) == 0 {
		p.pause()
		return
	}
	var ids []string
	for id := range p.running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var parts []string
	for _, id := range ids {
		if msg := p.last[id]; msg != "" {
			parts = append(parts, msg)
		} else {
			s := p.running[id]
			parts = append(parts, s.Action+" "+s.Resource)
		}
	}
	line := strings.Join(parts, "; ")
	if len(line) > 110 {
		line = line[:107] + "..."
	}
	p.spin.Suffix = " " + line
	if !p.spin.Active() {
		p.spin.Start()
	}
}

func (p *progress) pause() {
	if p.spin != nil && p.spin.Active() {
		p.spin.Stop()
	}
}

// stop ends the live display.
func (p *progress) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pause()
}

func round(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
