package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"coffer"
)

// MaxBodyBytes bounds a request body; past it the answer is 413.
const MaxBodyBytes = 64 << 10

// MaxFieldBytes bounds any one string field.
const MaxFieldBytes = 1024

// envelope is every response body but POST /api/mobile's success.
type envelope struct {
	Success bool   `json:"success"`
	Error   string `json:"error"`
	Data    any    `json:"data"`
	Code    string `json:"code,omitempty"`
	Token   string `json:"token,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"success":false,"error":"服务器内部错误","data":null,"code":"INTERNAL"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

func writeOK(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, envelope{Success: true, Data: data})
}

// writeError answers err in the envelope with data (null when nil).
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error, data any) {
	if r.Context().Err() != nil && coffer.ErrorCode(err) == coffer.ErrInternal {
		// The client gave up (or the server is stopping): no bug to log,
		// and nobody to read the answer.
		err = &coffer.Error{Code: coffer.ErrUnavailable, Detail: "request canceled"}
	}
	status, code, text := describe(err, english(r))
	if code == coffer.ErrInternal {
		s.log.ErrorContext(r.Context(), "internal error", "err", err.Error(), "request_id", requestID(r.Context()))
	}
	setStatusCode(r.Context(), code)
	if status == http.StatusServiceUnavailable {
		// Overloaded or unable to write: say when to come back, so that
		// well-behaved clients spread out instead of asking again at once.
		w.Header().Set("Retry-After", retryAfterUnavailableS)
	}
	writeJSON(w, status, envelope{Error: text, Data: data, Code: string(code)})
}

// retryAfterUnavailableS is the Retry-After, in seconds, of a 503: the
// hashing queue drains within it, and a restarting database is back or
// still refusing.
const retryAfterUnavailableS = "1"

func english(r *http.Request) bool {
	lang := strings.ToLower(strings.TrimSpace(r.Header.Get("Accept-Language")))
	return strings.HasPrefix(lang, "en")
}

// fields are a request's parameters: a JSON object body, and for GET the
// query string too (which wins).
type fields struct {
	body  map[string]json.RawMessage
	query url.Values
}

// decode reads the request's parameters. The body, when there is one, must
// be a JSON object of at most MaxBodyBytes. Only GET (and HEAD) requests
// read the query string: a POST's fields come from its body alone, so that
// a query parameter can never override what the body says (POST
// /api/pay?money=...) and passwords are not taken from URLs, which proxies
// and browsers keep.
func decode(w http.ResponseWriter, r *http.Request) (fields, error) {
	var f fields
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		f.query = r.URL.Query()
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json") && mt != "text/plain") {
			return f, &coffer.Error{Code: coffer.ErrUnsupportedMedia}
		}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return f, &coffer.Error{Code: coffer.ErrBodyTooLarge}
		}
		return f, &coffer.Error{Code: coffer.ErrInvalidJSON, Detail: err.Error()}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return f, nil
	}
	if !utf8.Valid(raw) {
		return f, &coffer.Error{Code: coffer.ErrInvalidJSON, Detail: "not UTF-8"}
	}
	body, err := decodeObject(raw)
	if err != nil {
		return f, err
	}
	f.body = body
	return f, nil
}

// decodeObject decodes one JSON object into its members, refusing a
// member named twice ({"money":"1","money":"1000"}): a proxy that reads
// the first and a server that reads the last must not disagree about a
// payment. A body that is valid JSON is split by hand: 0.8 µs for a
// transfer's body against 3.7 by json.Decoder's tokens, which were a
// tenth of a payment's CPU in the server (8 clients, PostgreSQL); any
// other is left to
// decodeObjectTokens, whose error says what is wrong. The two agree on
// every body (FuzzDecodeObjectAgrees). Invalid UTF-8 goes to the tokens
// too, which read it in a name as U+FFFD.
func decodeObject(raw []byte) (map[string]json.RawMessage, error) {
	if !utf8.Valid(raw) || !json.Valid(raw) {
		return decodeObjectTokens(raw)
	}
	// raw is one JSON value with space around it: the members are found
	// by their strings and brackets alone.
	i := skipSpace(raw, 0)
	if raw[i] != '{' {
		return decodeObjectTokens(raw)
	}
	body := make(map[string]json.RawMessage, 8)
	i = skipSpace(raw, i+1)
	if raw[i] == '}' {
		return body, nil
	}
	for {
		end := stringEnd(raw, i)
		if bytes.IndexByte(raw[i:end], '\\') >= 0 { // a name with escapes: rare, left to the tokens
			return decodeObjectTokens(raw)
		}
		key := string(raw[i+1 : end-1])
		i = skipSpace(raw, end) // at the colon
		i = skipSpace(raw, i+1) // at the value
		end = valueEnd(raw, i)
		if _, dup := body[key]; dup {
			return nil, &coffer.Error{Code: coffer.ErrInvalidJSON, Detail: "member " + strconv.Quote(key) + " named twice"}
		}
		body[key] = json.RawMessage(raw[i:end:end])
		i = skipSpace(raw, end) // at a comma or the closing brace
		if raw[i] == '}' {
			return body, nil
		}
		i = skipSpace(raw, i+1)
	}
}

// skipSpace returns the index of the first byte of raw from i on that is
// not JSON's white space.
func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts at
// raw[i], a valid one.
func stringEnd(raw []byte, i int) int {
	for i++; raw[i] != '"'; i++ {
		if raw[i] == '\\' {
			i++ // the escaped byte; \uXXXX's hex digits are no quote
		}
	}
	return i + 1
}

// valueEnd returns the index just past the JSON value that starts at
// raw[i], in a valid document.
func valueEnd(raw []byte, i int) int {
	switch raw[i] {
	case '"':
		return stringEnd(raw, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch raw[i] {
			case '"':
				i = stringEnd(raw, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for ; i < len(raw); i++ { // a number, true, false or null
		switch raw[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// decodeObjectTokens is decodeObject by json.Decoder's tokens.
func decodeObjectTokens(raw []byte) (map[string]json.RawMessage, error) {
	bad := func(detail string) error { return &coffer.Error{Code: coffer.ErrInvalidJSON, Detail: detail} }
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad("not an object")
	}
	body := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		key, ok := tok.(string)
		if err != nil || !ok {
			return nil, bad("bad member name")
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, bad("bad member value")
		}
		if _, dup := body[key]; dup {
			return nil, bad("member " + strconv.Quote(key) + " named twice")
		}
		body[key] = value
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, bad("unterminated object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("data after the object")
	}
	return body, nil
}

// lookup returns the raw JSON of name, with query parameters as strings;
// JSON null counts as absent.
func (f fields) lookup(name string) (json.RawMessage, bool) {
	if vs, ok := f.query[name]; ok && len(vs) > 0 {
		b, _ := json.Marshal(vs[0])
		return b, true
	}
	raw, ok := f.body[name]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// str returns the string field name; a required field that is absent or
// empty is ErrMissingField, a non-string ErrInvalidField. Strings are
// bounded and must not contain NUL.
func (f fields) str(name string, required bool) (string, error) {
	raw, ok := f.lookup(name)
	if !ok {
		if required {
			return "", coffer.FieldError(coffer.ErrMissingField, name)
		}
		return "", nil
	}
	var s string
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		// What json.Unmarshal gives, without its reflection, for valid
		// UTF-8: decode refuses a body that is not, and json.Marshal
		// escapes a query value that is not.
		s = string(raw[1 : len(raw)-1])
	} else if err := json.Unmarshal(raw, &s); err != nil {
		return "", coffer.FieldError(coffer.ErrInvalidField, name)
	}
	if len(s) > MaxFieldBytes || strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		return "", coffer.FieldError(coffer.ErrInvalidField, name)
	}
	if s == "" && required {
		return "", coffer.FieldError(coffer.ErrMissingField, name)
	}
	return s, nil
}

// digits returns a field that may come as a string or as a JSON integer
// (a mobile, a user id).
func (f fields) digits(name string, required bool) (string, error) {
	raw, ok := f.lookup(name)
	if ok && len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
		for _, c := range raw {
			if c < '0' || c > '9' {
				return "", coffer.FieldError(coffer.ErrInvalidField, name)
			}
		}
		return string(raw), nil
	}
	return f.str(name, required)
}

// number returns a decimal field given as a string or a plain JSON number,
// as text for coffer's parsers.
func (f fields) number(name string, required bool) (string, bool, error) {
	raw, ok := f.lookup(name)
	if !ok {
		if required {
			return "", false, coffer.FieldError(coffer.ErrMissingField, name)
		}
		return "", false, nil
	}
	if len(raw) > 0 && raw[0] != '"' {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", false, coffer.FieldError(coffer.ErrInvalidField, name)
		}
		return string(n), true, nil
	}
	s, err := f.str(name, required)
	return s, s != "", err
}

// amount returns a money field: positive, at most two decimals, at most
// coffer.MaxAmount.
func (f fields) amount(name string) (coffer.Amount, error) {
	s, _, err := f.number(name, true)
	if err != nil {
		return 0, err
	}
	a, ok := coffer.ParseAmount(s)
	if !ok {
		return 0, coffer.FieldError(coffer.ErrInvalidField, name)
	}
	return a, nil
}

// decimal returns a positive decimal field with scale decimals, at most max.
func (f fields) decimal(name string, scale int, max int64) (int64, error) {
	s, _, err := f.number(name, true)
	if err != nil {
		return 0, err
	}
	v, ok := coffer.ParseDecimal(s, scale)
	if !ok || v <= 0 || v > max {
		return 0, coffer.FieldError(coffer.ErrInvalidField, name)
	}
	return v, nil
}
