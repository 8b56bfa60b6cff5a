package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Clients: how the load's requests are sent.
const (
	// ClientRaw writes HTTP/1.1 requests and reads the answers on a plain
	// keep-alive connection: a few microseconds of CPU per request, so
	// that a load generator sharing the machine takes little from the
	// server it measures.
	ClientRaw = "raw"
	// ClientStd uses net/http's client with a tuned Transport: two
	// goroutines per connection and more allocations per request.
	ClientStd = "std"
)

// call is one request of the load.
type call struct {
	method string
	path   string
	token  string // bearer token, "" for none
	key    string // Idempotency-Key, "" for none
	body   []byte // JSON, nil for none
}

// answer is what a sender reports of an answer: its status (0 when there
// was none) and the wait its Retry-After asks for (0 when none).
type answer struct {
	status     int
	retryAfter time.Duration
}

// sender sends calls one at a time on one connection.
type sender interface {
	send(ctx context.Context, c call) answer
	close()
}

// maxRetryAfter bounds the wait a Retry-After header can impose.
const maxRetryAfter = time.Minute

// parseRetryAfter reads a Retry-After value in seconds (the HTTP-date
// form is not used by the servers measured, and counts as none).
func parseRetryAfter(v []byte) time.Duration {
	n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) || err == nil && n > uint64(maxRetryAfter/time.Second):
		return maxRetryAfter // compared before multiplying, which could overflow
	case err != nil:
		return 0
	}
	return time.Duration(n) * time.Second
}

// stdSender sends through the run's shared net/http client.
type stdSender struct{ r *Runner }

func (s *stdSender) send(ctx context.Context, c call) answer {
	resp, err := s.r.client.Do(s.r.httpRequest(ctx, c))
	if err != nil {
		return answer{}
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return answer{}
	}
	return answer{resp.StatusCode, parseRetryAfter([]byte(resp.Header.Get("Retry-After")))}
}

func (s *stdSender) close() {}

// maxHeaderLines bounds the header lines read of one answer.
const maxHeaderLines = 100

// rawSender speaks HTTP/1.1 on one keep-alive connection of its own,
// reconnecting after an error or a "Connection: close".
type rawSender struct {
	addr string // host:port
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	head []byte // the request being written
}

func newRawSender(base string) (*rawSender, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	return &rawSender{addr: u.Host}, nil
}

func (s *rawSender) send(ctx context.Context, c call) answer {
	if s.conn == nil {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", s.addr)
		if err != nil {
			return answer{}
		}
		s.conn, s.r, s.w = conn, bufio.NewReaderSize(conn, 16<<10), bufio.NewWriterSize(conn, 4<<10)
	}
	s.conn.SetDeadline(time.Now().Add(requestTimeout))
	a, keep, err := s.roundTrip(c)
	if err != nil || !keep {
		s.close()
	}
	if err != nil {
		return answer{}
	}
	return a
}

func (s *rawSender) roundTrip(c call) (a answer, keep bool, err error) {
	h := append(s.head[:0], c.method...)
	h = append(h, ' ')
	h = append(h, c.path...)
	h = append(h, " HTTP/1.1\r\nHost: "...)
	h = append(h, s.addr...)
	h = append(h, "\r\n"...)
	if c.token != "" {
		h = append(h, "Authorization: Bearer "...)
		h = append(h, c.token...)
		h = append(h, "\r\n"...)
	}
	if c.key != "" {
		h = append(h, "Idempotency-Key: "...)
		h = append(h, c.key...)
		h = append(h, "\r\n"...)
	}
	if c.body != nil {
		h = append(h, "Content-Type: application/json\r\nContent-Length: "...)
		h = strconv.AppendInt(h, int64(len(c.body)), 10)
		h = append(h, "\r\n"...)
	}
	h = append(h, "\r\n"...)
	h = append(h, c.body...)
	s.head = h
	if _, err := s.w.Write(h); err != nil {
		return answer{}, false, err
	}
	if err := s.w.Flush(); err != nil {
		return answer{}, false, err
	}
	return s.readAnswer(c.method)
}

// readAnswer reads the answer to a request of method: the status line,
// the headers, and a body of Content-Length bytes or chunks, which it
// discards.
func (s *rawSender) readAnswer(method string) (a answer, keep bool, err error) {
	line, err := s.r.ReadSlice('\n')
	if err != nil {
		return answer{}, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return answer{}, false, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return answer{}, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keep := int64(-1), false, true
	for i := 0; ; i++ {
		if i == maxHeaderLines {
			return answer{}, false, errors.New("too many header lines")
		}
		line, err := s.r.ReadSlice('\n')
		if err != nil {
			return answer{}, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			if length, err = strconv.ParseInt(string(value), 10, 64); err != nil || length < 0 {
				return answer{}, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "Connection"):
			keep = !asciiEqualFold(value, "close")
		case asciiEqualFold(name, "Retry-After"):
			a.retryAfter = parseRetryAfter(value)
		}
	}
	switch {
	case status == http.StatusNoContent || status == http.StatusNotModified || status < 200 || method == http.MethodHead:
		// no body
	case chunked:
		err = s.discardChunks()
	case length >= 0:
		_, err = s.r.Discard(int(length))
	default: // the body runs to the end of the connection
		_, err = io.Copy(io.Discard, s.r)
		keep = false
	}
	a.status = status
	return a, keep, err
}

// discardChunks reads a chunked body to its end.
func (s *rawSender) discardChunks() error {
	for {
		line, err := s.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		sizeText, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		size, err := strconv.ParseInt(string(sizeText), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			for { // trailers up to the blank line
				line, err := s.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimSpace(line)) == 0 {
					return nil
				}
			}
		}
		if _, err := s.r.Discard(int(size) + 2); err != nil { // the chunk and its CRLF
			return err
		}
	}
}

func (s *rawSender) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// asciiEqualFold compares a header name or value to want, ignoring ASCII case.
func asciiEqualFold(b []byte, want string) bool {
	if len(b) != len(want) {
		return false
	}
	for i := range b {
		x, y := b[i], want[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
