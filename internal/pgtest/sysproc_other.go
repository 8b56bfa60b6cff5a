//go:build unix && !linux

package pgtest

import "syscall"

// sysProcAttr runs the child as cred (when set). Outside Linux there is no
// parent-death signal: a server whose test process was killed is left for
// the next run's removeStale to find once it has exited.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
