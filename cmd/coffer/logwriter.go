package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logBufferBytes is the log's buffer: lines wait in it for at most the
// flush interval, or until it is full.
const logBufferBytes = 64 << 10

// flushingWriter buffers the server's log lines and writes them out every
// interval, so that a request does not cost a write system call of its
// own for its log line (see BENCHMARKS.md). What a crash can lose is the
// last interval's lines; the ledger's durability does not depend on them.
type flushingWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// newFlushingWriter writes to w through a buffer flushed every interval.
func newFlushingWriter(w io.Writer, interval time.Duration) *flushingWriter {
	f := &flushingWriter{buf: bufio.NewWriterSize(w, logBufferBytes), stop: make(chan struct{}), done: make(chan struct{})}
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
	return f.buf.Write(p)
}

// Flush writes out what is buffered.
func (f *flushingWriter) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.Flush()
}

// Close stops the periodic flush and flushes what is left.
func (f *flushingWriter) Close() error {
	close(f.stop)
	<-f.done
	return f.Flush()
}
