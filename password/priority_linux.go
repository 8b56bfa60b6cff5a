package password

import (
	"os"
	"strconv"
	"syscall"
)

// workerNice is the worker's nice value: the kernel gives a thread at nice
// 10 about a tenth of the share of one at 0, so the server's threads win a
// contended core and the worker still has every idle one.
const workerNice = 10

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

// pollable returns the pipe or socket rw, when it is one, as a file the
// runtime waits on with its poller; else nil. A worker's standard input is
// a blocking pipe: a goroutine reading it holds a thread in read(2), and
// the processor that thread held is taken back only by the runtime's
// monitor, up to 10 ms later, while a hash waits to run on it. That left
// an eighth of the worker's cores idle.
func pollable(rw any) *os.File {
	f, ok := rw.(*os.File)
	if !ok {
		return nil
	}
	fd := f.Fd()
	if err := syscall.SetNonblock(int(fd), true); err != nil {
		return nil
	}
	return os.NewFile(fd, f.Name())
}
