//go:build !race

package httpapi_test

// raceEnabled reports whether the race detector is on; it slows the
// production password hashing down about twentyfold.
const raceEnabled = false
