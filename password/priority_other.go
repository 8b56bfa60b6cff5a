//go:build !linux

package password

import "os"

// lowerPriority leaves the priority alone where threads cannot be set one
// by one as on Linux.
func lowerPriority() {}

// pollable leaves files as they are where the worker's pipes are not made
// pollable.
func pollable(any) *os.File { return nil }
