package guest

import (
	"fmt"
	"strings"
	"testing"
)

func TestConsoleRead(t *testing.T) {
	c := NewConsole(16)
	read := func(start int64) string {
		b, from, next := c.Read(start)
		return fmt.Sprintf("%q %d %d", b, from, next)
	}
	if got := read(0); got != `"" 0 0` {
		t.Errorf("empty console: %s", got)
	}
	_, _ = c.Write([]byte("0123456789"))
	for _, tt := range []struct {
		start int64
		want  string
	}{
		{0, `"0123456789" 0 10`},
		{4, `"456789" 4 10`},
		{-3, `"789" 7 10`},
		{-30, `"0123456789" 0 10`},
		{10, `"" 10 10`},
		{99, `"" 10 10`},
	} {
		if got := read(tt.start); got != tt.want {
			t.Errorf("before wrapping, Read(%d) = %s, want %s", tt.start, got, tt.want)
		}
	}
	// 26 bytes written into 16: the oldest 10 are gone, and a start among
	// them reads from the oldest kept, saying so.
	_, _ = c.Write([]byte("abcdefghijklmnop"))
	for _, tt := range []struct {
		start int64
		want  string
	}{
		{0, `"abcdefghijklmnop" 10 26`},
		{3, `"abcdefghijklmnop" 10 26`},
		{20, `"klmnop" 20 26`},
		{-4, `"mnop" 22 26`},
	} {
		if got := read(tt.start); got != tt.want {
			t.Errorf("after wrapping, Read(%d) = %s, want %s", tt.start, got, tt.want)
		}
	}
	_, _ = c.Write([]byte("XYZ"))
	if got := read(0); got != `"defghijklmnopXYZ" 13 29` {
		t.Errorf("wrapped twice: %s", got)
	}
	_, _ = c.Write([]byte(strings.Repeat("z", 40)))
	if got := read(0); got != fmt.Sprintf("%q 53 69", strings.Repeat("z", 16)) {
		t.Errorf("a write larger than the buffer: %s", got)
	}
}

func TestConsoleLines(t *testing.T) {
	c := NewConsole(0)
	var last string
	w := c.Line("etcd", func(l string) { last = l })
	_, _ = w.Write([]byte("first li"))
	_, _ = w.Write([]byte("ne\r\nsecond\nthi"))
	if b, _, _ := c.Read(0); string(b) != "etcd: first line\netcd: second\n" {
		t.Errorf("console %q", b)
	}
	_ = w.Close()
	if b, _, _ := c.Read(0); !strings.HasSuffix(string(b), "etcd: thi\n") || last != "thi" {
		t.Errorf("after close: console %q, last %q", b, last)
	}
}
