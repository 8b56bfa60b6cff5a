package main

import (
	"fmt"
	"os"
	"testing"

	"coffer/internal/pgtest"
	"coffer/password"
)

// TestMain also serves as the password worker that serve starts: in tests
// this program is the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case passwordWorkerCommand:
			if err := password.ServeWorker(os.Stdin, os.Stdout); err != nil {
				os.Exit(1)
			}
			os.Exit(0)
		case upgradeThenStartWorker:
			os.Exit(replaceSelfThenRunWorkerProgram())
		case sayBuild:
			fmt.Println("the test build")
			os.Exit(0)
		}
	}
	quickRaceExit()
	pgtest.Main(m)
}

// quickRaceExit spares each password worker a test's server starts the
// race detector's second of sleep at exit, which the server's shutdown
// waits out.
func quickRaceExit() {
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
}
