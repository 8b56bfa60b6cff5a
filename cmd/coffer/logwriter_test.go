package main

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFlushingWriterHoldsLinesUntilTheInterval(t *testing.T) {
	out := &syncBuffer{}
	w := newFlushingWriter(out, time.Hour)
	w.Write([]byte("held\n"))
	if out.String() != "" {
		t.Fatalf("a line was written before the interval: %q", out.String())
	}
	w.Close()
	if out.String() != "held\n" {
		t.Fatalf("after Close the output is %q", out.String())
	}
	w.Write([]byte("late\n")) // e.g. a background goroutine after shutdown
	if out.String() != "held\nlate\n" {
		t.Errorf("a line written after Close: output %q", out.String())
	}
}

func TestFlushingWriterWritesOutEveryInterval(t *testing.T) {
	out := &syncBuffer{}
	const interval = 20 * time.Millisecond
	w := newFlushingWriter(out, interval)
	defer w.Close()
	start := time.Now()
	w.Write([]byte("first line\n"))
	for out.String() == "" && time.Since(start) < 2*time.Second {
		time.Sleep(time.Millisecond)
	}
	if out.String() != "first line\n" {
		t.Fatalf("output %q two seconds after a write with a %s interval", out.String(), interval)
	}
}

func TestFlushingWriterLosesNoLineOnClose(t *testing.T) {
	out := &syncBuffer{}
	w := newFlushingWriter(out, time.Hour) // only Close and a full buffer write out
	var wg sync.WaitGroup
	const writers, lines = 8, 2000
	line := strings.Repeat("x", 99) + "\n"
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range lines {
				w.Write([]byte(line))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if len(got) != writers*lines*len(line) || strings.Count(got, "\n") != writers*lines || strings.Trim(got, "x\n") != "" {
		t.Errorf("wrote %d bytes, %d lines; want %d lines of %d bytes, whole", len(got), strings.Count(got, "\n"), writers*lines, len(line))
	}
}

// failingOnce fails its first write.
type failingOnce struct {
	syncBuffer
	failed bool
}

func (f *failingOnce) Write(p []byte) (int, error) {
	if !f.failed {
		f.failed = true
		return 0, errors.New("disk full")
	}
	return f.syncBuffer.Write(p)
}

func TestFlushingWriterGoesOnAfterAFailedWrite(t *testing.T) {
	out := &failingOnce{}
	w := newFlushingWriter(out, time.Hour)
	w.Write([]byte("lost\n"))
	if err := w.Flush(); err == nil {
		t.Fatal("the failed write was not reported")
	}
	w.Write([]byte("kept\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("the log stayed broken: %v", err)
	}
	if out.String() != "kept\n" {
		t.Errorf("output %q, want the line after the failure", out.String())
	}
}

func TestUrgentFlushWritesWarningsOutAtOnce(t *testing.T) {
	out := &syncBuffer{}
	w := newFlushingWriter(out, time.Hour)
	defer w.Close()
	log := slog.New(urgentFlush{slog.NewTextHandler(w, nil), func() { w.Flush() }}).With("server", "a")
	log.Info("request")
	if out.String() != "" {
		t.Fatalf("an info line was written at once: %q", out.String())
	}
	log.Warn("janitor failed")
	if got := out.String(); !strings.Contains(got, "msg=request") || !strings.Contains(got, "janitor failed") || !strings.Contains(got, "server=a") {
		t.Errorf("after a warning the output is %q, want both lines", got)
	}
}
