//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package postgres

import (
	"errors"
	"net"
	"syscall"
)

// quiet reports whether c's socket is open at the other end with nothing
// waiting to be read, as a connection idle in the pool must be.
//
// On such a connection whatever waits was sent unasked: a FATAL that ends
// the session (a terminated backend, a shutdown, an idle timeout), or,
// under TLS, the close_notify of a peer closing; and an end of stream, a
// reset or a pending error (which the look clears) says the connection is
// lost. So any of them is not quiet, and so is an error of the look
// itself: a connection dropped in doubt costs a reconnection, one used in
// doubt may cost a payment's outcome.
//
// It peeks at the socket without waiting and without consuming a byte,
// outside the socket's read lock, which a background read of pgx's may
// hold. A connection without a socket counts as quiet: it cannot tell.
func quiet(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	idle := false
	var b [1]byte
	err = rc.Control(func(fd uintptr) {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Without an error, a byte waiting or the end of stream (0 bytes).
		idle = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
	})
	return idle && err == nil
}
