// Package pgbin finds the folder of a PostgreSQL installation's programs
// (initdb, postgres, pgbench), which distribution packages keep outside
// the PATH.
package pgbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// EnvDir names the environment variable that points at the folder of
// PostgreSQL's programs, for machines where they are not found by
// themselves.
const EnvDir = "COFFER_PG_BINDIR"

// Dir returns a folder holding every one of names: the one EnvDir names
// when it is set; else the folder of the first of names found in the
// PATH, pg_config's, or a distribution's versioned folder, the newest
// major version first.
func Dir(names ...string) (string, error) {
	has := func(dir string) bool {
		for _, name := range names {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	list := strings.Join(names, ", ")
	if dir := os.Getenv(EnvDir); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%s=%s holds no %s", EnvDir, dir, list)
	}
	var candidates []string
	if p, err := exec.LookPath(names[0]); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real // a link in the PATH to the versioned folder
		}
		candidates = append(candidates, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	// Distribution packages keep the programs outside the PATH, one folder
	// per major version: Debian and Ubuntu, the PGDG packages of Red Hat
	// and its kin, a source build, Homebrew.
	var installed []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/opt/postgresql*/bin", "/usr/local/opt/postgresql*/bin"} {
		m, _ := filepath.Glob(pattern)
		installed = append(installed, m...)
	}
	sort.SliceStable(installed, func(i, j int) bool { return majorVersion(installed[i]) > majorVersion(installed[j]) })
	candidates = append(candidates, installed...)
	for _, dir := range candidates {
		if has(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL programs (%s) found; install PostgreSQL or set %s", list, EnvDir)
}

// majorVersion is the first number in path (15 in .../postgresql/15/bin).
func majorVersion(path string) int {
	start := strings.IndexAny(path, "0123456789")
	if start < 0 {
		return 0
	}
	end := start
	for end < len(path) && path[end] >= '0' && path[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(path[start:end])
	return n
}
