module coffer

go 1.26.0

require (
	github.com/mattn/go-sqlite3 v1.14.32
	golang.org/x/crypto v0.58.0
)

require golang.org/x/sys v0.49.0 // indirect
