package sqlite

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// assign stores src, a value as the driver returns it (int64, float64,
// bool, []byte, string, time.Time or nil), in dest, with database/sql's
// rules for the kinds sqlstore scans into: bytes are copied, numbers and
// text convert into one another, NULL goes only where it can be held, and
// a sql.Scanner takes src as it is. Fast paths cover the destinations
// scanned on every request; named types (coffer.UserID, ...) go through
// reflection by kind.
func assign(dest any, src driver.Value) error {
	switch d := dest.(type) {
	case *int64:
		if v, ok := src.(int64); ok {
			*d = v
			return nil
		}
	case *string:
		switch v := src.(type) {
		case string:
			*d = v
			return nil
		case []byte:
			*d = string(v)
			return nil
		}
	case *[]byte:
		switch v := src.(type) {
		case []byte:
			*d = append([]byte(nil), v...)
			return nil
		case string:
			*d = []byte(v)
			return nil
		case nil:
			*d = nil
			return nil
		}
	case *int:
		if v, ok := src.(int64); ok {
			*d = int(v)
			return nil
		}
	case *any:
		if v, ok := src.([]byte); ok {
			*d = append([]byte(nil), v...)
		} else {
			*d = src
		}
		return nil
	case sql.Scanner:
		return d.Scan(src)
	}
	return assignByKind(dest, src)
}

// assignByKind is assign's slow path.
func assignByKind(dest any, src driver.Value) error {
	dv := reflect.ValueOf(dest)
	if dv.Kind() != reflect.Pointer || dv.IsNil() {
		return fmt.Errorf("destination %T is not a non-nil pointer", dest)
	}
	if src == nil {
		return fmt.Errorf("NULL into %T", dest)
	}
	v := dv.Elem()
	text, isText := textOf(src)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := int64Of(src, text, isText)
		if err != nil || v.OverflowInt(n) {
			return fmt.Errorf("%v does not fit %T", src, dest)
		}
		v.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := int64Of(src, text, isText)
		if err != nil || n < 0 || v.OverflowUint(uint64(n)) {
			return fmt.Errorf("%v does not fit %T", src, dest)
		}
		v.SetUint(uint64(n))
		return nil
	case reflect.Float32, reflect.Float64:
		switch s := src.(type) {
		case float64:
			v.SetFloat(s)
			return nil
		case int64:
			v.SetFloat(float64(s))
			return nil
		}
	case reflect.Bool:
		switch s := src.(type) {
		case bool:
			v.SetBool(s)
			return nil
		case int64:
			v.SetBool(s != 0)
			return nil
		}
	case reflect.String:
		if isText {
			v.SetString(text)
			return nil
		}
		switch s := src.(type) {
		case int64:
			v.SetString(strconv.FormatInt(s, 10))
			return nil
		case float64:
			v.SetString(strconv.FormatFloat(s, 'g', -1, 64))
			return nil
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 && isText {
			v.SetBytes([]byte(text))
			return nil
		}
	case reflect.Struct:
		if t, ok := src.(time.Time); ok && v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(t))
			return nil
		}
	}
	return fmt.Errorf("cannot store %T into %T", src, dest)
}

// textOf is src as text, when it is text or bytes.
func textOf(src driver.Value) (string, bool) {
	switch s := src.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	return "", false
}

func int64Of(src driver.Value, text string, isText bool) (int64, error) {
	if n, ok := src.(int64); ok {
		return n, nil
	}
	if isText {
		return strconv.ParseInt(text, 10, 64)
	}
	return 0, fmt.Errorf("not an integer: %T", src)
}
