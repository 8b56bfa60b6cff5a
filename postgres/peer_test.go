//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package postgres

import (
	"net"
	"testing"
	"time"
)

// TestQuiet: only a socket open at the other end with nothing waiting is
// quiet; bytes waiting (untouched by the look), an end of stream and a
// reset are not.
func TestQuiet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (local, remote *net.TCPConn) {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		r, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); r.Close() })
		return c.(*net.TCPConn), r.(*net.TCPConn)
	}
	// The other end's bytes or close reach the socket a moment after the
	// call that sent them returns; on the loopback, well within this.
	const arrival = 50 * time.Millisecond

	idle, _ := pair()
	if !quiet(idle) {
		t.Error("an idle open connection reported not quiet")
	}

	waiting, remote := pair()
	if _, err := remote.Write([]byte("E")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(arrival)
	if quiet(waiting) {
		t.Error("a connection with a byte waiting reported quiet")
	}
	buf := make([]byte, 16)
	if n, err := waiting.Read(buf); err != nil || string(buf[:n]) != "E" {
		t.Errorf("after the look, read %q, %v: want the byte untouched", buf[:n], err)
	}

	ended, remote := pair()
	remote.Close()
	time.Sleep(arrival)
	if quiet(ended) {
		t.Error("a connection whose other end closed it reported quiet")
	}

	// The first look at a reset socket meets the error (ECONNRESET), which
	// it clears; a second would see an end of stream.
	reset, remote := pair()
	remote.SetLinger(0) // close with a reset
	remote.Close()
	time.Sleep(arrival)
	if quiet(reset) {
		t.Error("a connection reset by its other end reported quiet")
	}

	closed, _ := pair()
	closed.Close()
	if quiet(closed) {
		t.Error("a connection closed on this side reported quiet")
	}
}
