package main

import (
	"testing"

	"coffer/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
