//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package postgres

import (
	"net"
	"testing"
	"time"
)

// TestPeerClosed: a socket whose other end is open, idle or with bytes
// waiting, is not closed; one whose other end closed it, with an end of
// stream or a reset, is; and looking consumes nothing.
func TestPeerClosed(t *testing.T) {
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
	// eventually polls, since the other end's close reaches the socket
	// after Close returns.
	eventually := func(c net.Conn) bool {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if peerClosed(c) {
				return true
			}
		}
		return false
	}

	idle, _ := pair()
	if peerClosed(idle) {
		t.Error("an idle open connection reported closed")
	}

	waiting, remote := pair()
	if _, err := remote.Write([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if peerClosed(waiting) {
		t.Error("a connection with bytes waiting reported closed")
	}
	buf := make([]byte, 16)
	if n, err := waiting.Read(buf); err != nil || string(buf[:n]) != "answer" {
		t.Errorf("after the look, read %q, %v: want the bytes untouched", buf[:n], err)
	}

	ended, remote := pair()
	remote.Close()
	if !eventually(ended) {
		t.Error("a connection whose other end closed it not reported closed")
	}

	reset, remote := pair()
	remote.SetLinger(0) // close with a reset
	remote.Close()
	if !eventually(reset) {
		t.Error("a connection reset by its other end not reported closed")
	}
}
