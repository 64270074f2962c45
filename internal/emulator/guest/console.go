package guest

import (
	"bytes"
	"io"
	"sync"
)

// ConsoleSize is how much of a VM's serial console is kept: GCE keeps the
// last 1 MB of each port.
const ConsoleSize = 1 << 20

// Console is a VM's serial port 1: what the guest and its processes print,
// as instances.getSerialPortOutput reads it. Positions are byte offsets
// since the instance was created; the oldest output is discarded once more
// than the buffer's size was written. It lives as long as the instance and
// is safe for concurrent use.
type Console struct {
	mu    sync.Mutex
	buf   []byte // ring of at most size bytes
	size  int
	first int64 // offset of buf's oldest byte
	next  int64 // offset after the newest byte
	head  int   // index of the oldest byte in buf once it is full
}

// NewConsole keeps the last size bytes (ConsoleSize when size ≤ 0).
func NewConsole(size int) *Console {
	if size <= 0 {
		size = ConsoleSize
	}
	return &Console{size: size}
}

// Write appends p, discarding the oldest output beyond the buffer's size.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	c.next += int64(n)
	if n >= c.size {
		c.buf = append(c.buf[:0], p[n-c.size:]...)
		c.head = 0
		c.first = c.next - int64(c.size)
		return n, nil
	}
	if len(c.buf) < c.size {
		room := c.size - len(c.buf)
		if n <= room {
			c.buf = append(c.buf, p...)
			return n, nil
		}
		c.buf = append(c.buf, p[:room]...)
		p = p[room:]
	}
	// Full: overwrite from the oldest byte on.
	for len(p) > 0 {
		k := copy(c.buf[c.head:], p)
		p = p[k:]
		c.head = (c.head + k) % c.size
	}
	c.first = c.next - int64(len(c.buf))
	return n, nil
}

// Read returns the output from offset start, GCE's way: 0 (or a start
// before the oldest output kept) reads from the oldest byte kept, a
// negative start reads the last -start bytes, and a start past the end
// reads nothing. from is where contents begins; next is where the next
// read should start.
func (c *Console) Read(start int64) (contents []byte, from, next int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case start < 0:
		start = max(c.next+start, c.first)
	case start < c.first:
		start = c.first
	case start > c.next:
		start = c.next
	}
	ordered := c.ordered()
	return bytes.Clone(ordered[start-c.first:]), start, c.next
}

// ordered is the buffer oldest byte first (a fresh slice once it wrapped).
func (c *Console) ordered() []byte {
	if c.head == 0 {
		return c.buf
	}
	out := make([]byte, 0, len(c.buf))
	return append(append(out, c.buf[c.head:]...), c.buf[:c.head]...)
}

// Line returns a writer that prints whole lines to the console, each
// prefixed with "prefix: " (a component's name), as a VM's journal
// forwards its units' output to the serial port. last, when set, hears
// every line (without the prefix).
func (c *Console) Line(prefix string, last func(string)) io.WriteCloser {
	return &lineWriter{c: c, prefix: prefix + ": ", last: last}
}

// maxLine bounds a line kept whole: a longer one is cut into pieces.
const maxLine = 16 << 10

type lineWriter struct {
	mu      sync.Mutex
	c       *Console
	prefix  string
	last    func(string)
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= maxLine {
				w.flush()
			}
			break
		}
		w.partial = append(w.partial, p[:i]...)
		p = p[i+1:]
		w.flush()
	}
	return n, nil
}

// Close prints what is left of an unfinished line.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.flush()
	}
	return nil
}

func (w *lineWriter) flush() {
	line := bytes.TrimRight(w.partial, "\r")
	out := make([]byte, 0, len(w.prefix)+len(line)+1)
	out = append(append(append(out, w.prefix...), line...), '\n')
	_, _ = w.c.Write(out)
	if w.last != nil {
		w.last(string(line))
	}
	w.partial = w.partial[:0]
}
