package pgtest

import "syscall"

// sysProcAttr runs the child as cred (when set) and has the kernel send it
// SIGQUIT (PostgreSQL's immediate shutdown) if the test process dies
// without stopping it, so that no server outlives its tests.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
}
