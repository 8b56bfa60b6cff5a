package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"coffer"
	"coffer/postgres"
	"coffer/sqlite"
)

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openStore opens the database named by dsn, migrates it and seeds the
// default catalog into a fresh one.
func openStore(ctx context.Context, dsn string, cfg coffer.Config) (coffer.Store, error) {
	var store coffer.Store
	var err error
	if isPostgres(dsn) {
		store, err = postgres.Open(ctx, dsn, postgres.Options{})
	} else {
		store, err = sqlite.Open(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	err = store.Update(ctx, func(tx coffer.Tx) error { return coffer.SeedCatalog(ctx, tx, time.Now(), cfg.Zone) })
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("seed catalog: %w", err)
	}
	return store, nil
}

// secretBytes is the size of a generated server secret.
const secretBytes = 32

// loadSecret returns the server secret that keys payment passwords: from
// COFFER_SECRET (hex), else from secretFile, else, for an SQLite database,
// from the file beside it, created on first start. Servers sharing one
// PostgreSQL must share one secret, so there it must be given.
func loadSecret(dsn, secretFile string, getenv func(string) string) ([]byte, error) {
	if v := getenv("COFFER_SECRET"); v != "" {
		b, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(b) < secretBytes {
			return nil, usageError{"COFFER_SECRET must be at least 32 bytes in hex"}
		}
		return b, nil
	}
	if secretFile == "" {
		if isPostgres(dsn) {
			return nil, usageError{"a PostgreSQL database needs the shared server secret: --secret-file or COFFER_SECRET"}
		}
		secretFile = dsn + ".secret"
		if err := createSecret(secretFile); err != nil {
			return nil, err
		}
	}
	raw, err := os.ReadFile(secretFile)
	if err != nil {
		return nil, fmt.Errorf("read server secret: %w", err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(b) < secretBytes {
		return nil, fmt.Errorf("server secret %s must hold at least 32 bytes in hex", secretFile)
	}
	return b, nil
}

func createSecret(path string) error {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create server secret: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(b) + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
