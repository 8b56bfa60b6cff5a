// Package httpapi serves Coffer's JSON API over HTTP: the contract's
// envelope, statuses and field rules, sessions by cookie or bearer token,
// request logs and limits. It depends on the coffer domain only.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"coffer"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "coffer_session"

// Options configure the server.
type Options struct {
	Logger *slog.Logger
	// TrustProxy takes the client address from X-Forwarded-For's last hop,
	// for servers behind a load balancer that sets it.
	TrustProxy bool
}

type server struct {
	bank       *coffer.Bank
	log        *slog.Logger
	trustProxy bool
}

// NewServer returns the API as an http.Handler.
func NewServer(bank *coffer.Bank, opts Options) http.Handler {
	s := &server{bank: bank, log: opts.Logger, trustProxy: opts.TrustProxy}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	s.routes(mux)
	return s.logRequests(s.recoverPanics(s.canonicalPaths(mux)))
}

// canonicalPaths answers 404 in the envelope for paths that are not clean
// ("/api//pay", "/."), where ServeMux would answer a redirect without one.
func (s *server) canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
			s.writeError(w, r, &coffer.Error{Code: coffer.ErrRouteNotFound}, nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyLogInfo
)

// logInfo is filled in by handlers for the request log line.
type logInfo struct {
	user atomic.Int64
	code atomic.Value // coffer.Code
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

func setStatusCode(ctx context.Context, code coffer.Code) {
	if li, ok := ctx.Value(keyLogInfo).(*logInfo); ok {
		li.code.Store(code)
	}
}

func setLogUser(ctx context.Context, id coffer.UserID) {
	if li, ok := ctx.Value(keyLogInfo).(*logInfo); ok {
		li.user.Store(int64(id))
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// logRequests gives every request an id (echoed in X-Request-Id) and logs
// one line per request: method, path without the query string (it may hold
// a mobile number), status, error code, user and duration. Never a body,
// a token or a password.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		li := &logInfo{}
		ctx := context.WithValue(context.WithValue(r.Context(), keyRequestID, id), keyLogInfo, li)
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(ctx))
		code, _ := li.code.Load().(coffer.Code)
		s.log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.String("code", string(code)), slog.Int64("user", li.user.Load()),
			slog.Int("bytes", rec.bytes), slog.Duration("duration", time.Since(start)))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic", "request_id", requestID(r.Context()), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.writeError(w, r, coffer.Errorf(coffer.ErrInternal, "panic"), nil)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// clientAddr is the address login throttling counts against.
func (s *server) clientAddr(r *http.Request) string {
	if s.trustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			hops := strings.Split(xff, ",")
			return strings.TrimSpace(hops[len(hops)-1])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// secureRequest reports whether the client reached us over TLS: directly,
// or, behind a trusted load balancer that ends TLS, as its
// X-Forwarded-Proto says. The session cookie is then marked Secure.
func (s *server) secureRequest(r *http.Request) bool {
	return r.TLS != nil || s.trustProxy && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// sessionToken is the bearer token, else the session cookie's.
func sessionToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// sessionFirst answers a request that err refuses, unless it carries no
// live session: that is answered 401 first, as requireSession would have
// before the handler judged anything. Handlers that check the session in
// their own read transaction (InfoAs, WalletAs) call it for the refusals
// they make before that read.
func (s *server) sessionFirst(w http.ResponseWriter, r *http.Request, err error) {
	if _, aerr := s.authenticate(r); aerr != nil {
		err = aerr
	}
	s.writeError(w, r, err, nil)
}

// authenticate returns the user of the request's live session and names
// them in its log line.
func (s *server) authenticate(r *http.Request) (coffer.UserID, error) {
	user, err := s.bank.Authenticate(r.Context(), sessionToken(r))
	if err == nil {
		setLogUser(r.Context(), user)
	}
	return user, err
}

// authed is a handler that runs for a logged-in user.
type authed func(w http.ResponseWriter, r *http.Request, user coffer.UserID)

// requireSession answers 401 unless the request carries a live session.
func (s *server) requireSession(h authed) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err, nil)
			return
		}
		h(w, r, user)
	})
}
