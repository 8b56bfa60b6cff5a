package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"coffer"
)

// routes lists the whole API, a line a route.
func (s *server) routes(mux *http.ServeMux) {
	s.route(mux, "/api/user", methods{"POST": s.handleRegister()})
	s.route(mux, "/api/login", methods{"POST": s.handleLogin()})
	s.route(mux, "/api/logout", methods{"POST": s.requireSession(s.handleLogout)})
	s.route(mux, "/api/info", methods{"GET": http.HandlerFunc(s.handleInfo)})     // checks the session itself
	s.route(mux, "/api/wallet", methods{"GET": http.HandlerFunc(s.handleWallet)}) // checks the session itself
	s.route(mux, "/api/mobile", methods{"POST": s.requireSession(s.handleMobile)})
	s.route(mux, "/api/paypassword", methods{"POST": s.requireSession(s.handlePayPassword)})
	s.route(mux, "/api/pay", methods{"POST": http.HandlerFunc(s.handlePay)}) // checks the session itself
	s.route(mux, "/api/products", methods{"GET": s.requireSession(s.handleProducts)})
	s.route(mux, "/healthz", methods{"GET": s.handleHealth()})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &coffer.Error{Code: coffer.ErrRouteNotFound}, nil)
	}))
}

type methods map[string]http.Handler

// route serves path with a handler per method, answering other methods
// 405 in the envelope with an Allow header. HEAD is served as GET.
func (s *server) route(mux *http.ServeMux, path string, m methods) {
	allowed := make([]string, 0, len(m))
	for method := range m {
		allowed = append(allowed, method)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if method == http.MethodHead {
			method = http.MethodGet
		}
		h, ok := m[method]
		if !ok {
			w.Header().Set("Allow", allow)
			s.writeError(w, r, &coffer.Error{Code: coffer.ErrMethodNotAllowed}, nil)
			return
		}
		h.ServeHTTP(w, r)
	}))
}
