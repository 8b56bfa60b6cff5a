//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package postgres

import "net"

// peerClosed cannot tell on this system: the connection is used as it is.
func peerClosed(net.Conn) bool { return false }
