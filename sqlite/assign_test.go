package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"path/filepath"
	"reflect"
	"testing"

	"coffer"
)

// TestAssignFollowsDatabaseSQL scans each kind of value the driver returns
// into each kind of destination sqlstore uses, with database/sql's
// outcome: the value stored, or an error.
func TestAssignFollowsDatabaseSQL(t *testing.T) {
	type named string
	cases := []struct {
		src  driver.Value
		dest any // a pointer to a zero value
		want any // what *dest holds after; nil: an error
	}{
		{int64(42), new(int64), int64(42)},
		{int64(42), new(int), 42},
		{int64(42), new(coffer.UserID), coffer.UserID(42)},
		{int64(-7), new(int32), int32(-7)},
		{int64(300), new(int8), nil},  // overflow
		{int64(-1), new(uint32), nil}, // negative into unsigned
		{"17", new(int64), int64(17)}, // text into a number parses
		{int64(42), new(string), "42"},
		{"text", new(string), "text"},
		{[]byte("bytes"), new(string), "bytes"},
		{"text", new(named), named("text")},
		{"text", new([]byte), []byte("text")},
		{[]byte{1, 2}, new([]byte), []byte{1, 2}},
		{nil, new([]byte), []byte(nil)},
		{nil, new(string), nil},
		{nil, new(int64), nil},
		{int64(1), new(bool), true},
		{int64(3), new(float64), float64(3)},
		{"x", new(int64), nil},
		{nil, new(sql.NullString), sql.NullString{}},
		{"v", new(sql.NullString), sql.NullString{String: "v", Valid: true}},
		{int64(9), new(sql.NullInt64), sql.NullInt64{Int64: 9, Valid: true}},
		{int64(5), new(any), int64(5)},
	}
	for _, c := range cases {
		err := assign(c.dest, c.src)
		got := reflect.ValueOf(c.dest).Elem().Interface()
		switch {
		case c.want == nil && err == nil:
			t.Errorf("assign(%T, %#v) = %#v, want an error", c.dest, c.src, got)
		case c.want != nil && (err != nil || !reflect.DeepEqual(got, c.want)):
			t.Errorf("assign(%T, %#v) = %#v, %v; want %#v", c.dest, c.src, got, err, c.want)
		}
	}
}

// TestAssignCopiesBytes: the driver reuses its buffers; a scanned []byte
// must not change with them.
func TestAssignCopiesBytes(t *testing.T) {
	src := []byte("secret")
	var b []byte
	var a any
	if err := assign(&b, src); err != nil {
		t.Fatal(err)
	}
	if err := assign(&a, src); err != nil {
		t.Fatal(err)
	}
	src[0] = 'X'
	if string(b) != "secret" || string(a.([]byte)) != "secret" {
		t.Fatalf("scanned bytes changed with the source: %q %q", b, a)
	}
}

func TestAssignNeedsAPointer(t *testing.T) {
	var n int64
	if err := assign(n, int64(1)); err == nil {
		t.Fatal("assign into a value, not a pointer")
	}
	if err := assign((*coffer.UserID)(nil), int64(1)); err == nil {
		t.Fatal("assign into a nil pointer")
	}
}

// TestStatementArgumentsAreCounted: a prepared statement run with too few
// arguments fails, as through database/sql, instead of taking the
// previous run's values.
func TestStatementArgumentsAreCounted(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "args.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := <-s.readers
	defer func() { s.readers <- r }()
	err = r.within(func() error {
		var n int64
		if err := r.QueryRow(ctx, "SELECT ? + ?", int64(1), int64(2)).Scan(&n); err != nil || n != 3 {
			t.Errorf("SELECT 1 + 2: %d, %v", n, err)
		}
		if err := r.QueryRow(ctx, "SELECT ? + ?", int64(5)).Scan(&n); err == nil {
			t.Errorf("one argument for two placeholders: %d, no error", n)
		}
		if err := r.Exec(ctx, "SELECT ?", int64(1), int64(2)); err == nil {
			t.Error("two arguments for one placeholder: no error")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
