package password

import (
	"os"
	"strconv"
	"syscall"
)

// lowerPriority sets every thread of this process to workerNice. On Linux
// a nice value belongs to a thread, and threads started later inherit it
// from the thread that starts them, so all of them are changed; a second
// pass catches threads started during the first.
func lowerPriority() {
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return
		}
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				syscall.Setpriority(syscall.PRIO_PROCESS, tid, workerNice)
			}
		}
	}
}

// pollable returns a duplicate of the pipe or socket rw, when it is one,
// that the runtime waits on with its poller; else nil. The caller still
// owns rw. A worker's standard input is a blocking pipe: a goroutine
// reading it holds a thread in read(2), and the processor that thread held
// is taken back only by the runtime's monitor, up to 10 ms later, while a
// hash waits to run on it. That left an eighth of the worker's cores idle.
// (Non-blocking mode belongs to the open file, so rw becomes non-blocking
// too, which is why a terminal, a device or a regular file is left as it
// is: a terminal left non-blocking would break the shell that ran
// `coffer password-worker` by hand.)
func pollable(rw any) *os.File {
	f, ok := rw.(*os.File)
	if !ok {
		return nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil
	}
	if kind := st.Mode & syscall.S_IFMT; kind != syscall.S_IFIFO && kind != syscall.S_IFSOCK {
		return nil
	}
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), f.Name())
}
