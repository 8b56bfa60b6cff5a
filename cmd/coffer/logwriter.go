package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBufferBytes is the log's buffer: lines wait in it for at most the
// flush interval, or until it is full.
const logBufferBytes = 64 << 10

// flushingWriter buffers the server's log lines and writes them out every
// interval, so that a request does not cost a write system call of its
// own for its log line (see BENCHMARKS.md). What a crash can lose is the
// last interval's lines; the ledger's durability does not depend on them,
// and warnings and errors are written out at once (urgentFlush).
type flushingWriter struct {
	mu     sync.Mutex
	out    io.Writer
	buf    *bufio.Writer
	closed bool // after Close, lines go straight to out
	stop   chan struct{}
	done   chan struct{}
}

// newFlushingWriter writes to w through a buffer flushed every interval.
func newFlushingWriter(w io.Writer, interval time.Duration) *flushingWriter {
	f := &flushingWriter{out: w, buf: bufio.NewWriterSize(w, logBufferBytes), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				f.Flush()
			case <-f.stop:
				return
			}
		}
	}()
	return f
}

// Write implements io.Writer; slog handlers write a whole line at a time.
func (f *flushingWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.out.Write(p)
	}
	n, err := f.buf.Write(p)
	if err != nil {
		f.buf.Reset(f.out) // a bufio.Writer keeps its first error: start afresh
	}
	return n, err
}

// Flush writes out what is buffered. After a failed write the buffer
// starts afresh: the lines in it are lost, the log goes on.
func (f *flushingWriter) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.buf.Flush()
	if err != nil {
		f.buf.Reset(f.out)
	}
	return err
}

// Close stops the periodic flush and writes out what is left; lines
// written after it go out one write each.
func (f *flushingWriter) Close() error {
	close(f.stop)
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return f.buf.Flush()
}

// urgentFlush is a log handler that writes the buffered log out right
// after a record at Warn or above, so that a problem does not wait for
// the interval (or die with the process).
type urgentFlush struct {
	slog.Handler
	flush func()
}

// Handle implements slog.Handler.
func (h urgentFlush) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.flush()
	}
	return err
}

// WithAttrs implements slog.Handler.
func (h urgentFlush) WithAttrs(attrs []slog.Attr) slog.Handler {
	return urgentFlush{h.Handler.WithAttrs(attrs), h.flush}
}

// WithGroup implements slog.Handler.
func (h urgentFlush) WithGroup(name string) slog.Handler {
	return urgentFlush{h.Handler.WithGroup(name), h.flush}
}
