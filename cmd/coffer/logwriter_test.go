package main

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFlushingWriterWritesLinesOutWithinTheInterval(t *testing.T) {
	out := &syncBuffer{}
	w := newFlushingWriter(out, 20*time.Millisecond)
	w.Write([]byte("first line\n"))
	if out.String() != "" {
		t.Fatalf("a line was written at once: %q", out.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if out.String() != "first line\n" {
		t.Fatalf("after the interval the output is %q", out.String())
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
