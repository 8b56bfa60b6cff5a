//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package postgres

import (
	"errors"
	"net"
	"syscall"
)

// peerClosed reports whether the other end of c closed it: an end of
// stream, or a reset, waiting to be read. It peeks at the socket without
// waiting and without consuming anything, and outside the socket's read
// lock, which a background read of pgx's may hold. It answers false when
// it cannot tell.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	err = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0 // 0 bytes: end of stream; more: an answer waiting, read in order
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		default: // ECONNRESET and the like
			closed = true
		}
	})
	return closed || err != nil
}
