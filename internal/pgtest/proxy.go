package pgtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections from an address of 127.0.0.1 to a
// target, and can go down (cutting every connection without a word from
// PostgreSQL, as a network failure or a load balancer does, and refusing
// new ones) and come back up on the same address.
type Proxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port), stopped when the test
// ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{target: target, addr: FreeAddr(t), conns: map[net.Conn]struct{}{}}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Down(); p.wg.Wait() })
	return p
}

// DSNThroughProxy creates an empty database for the test, as DSN does, and
// returns its URL, the URL of the same database through a new proxy, and
// the proxy.
func DSNThroughProxy(t testing.TB) (direct, proxied string, p *Proxy) {
	t.Helper()
	direct = DSN(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	p = NewProxy(t, u.Host)
	u.Host = p.Addr()
	return direct, u.String(), p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.addr }

// Up listens again on the proxy's address, after Down; not after the test
// ended.
func (p *Proxy) Up() error {
	var ln net.Listener
	var err error
	for try := 0; try < 50; try++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() { p.serve(ln) })
	return nil
}

// Down stops listening and cuts every connection.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// track records c, accepted on ln, for Down to cut; it reports false when
// ln is no longer the proxy's listener (Down came since), so that a
// connection accepted before a cut does not outlive it.
func (p *Proxy) track(ln net.Listener, c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != ln {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// serve accepts until the listener is closed.
func (p *Proxy) serve(ln net.Listener) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(ln, in) || !p.track(ln, out) {
			in.Close()
			out.Close()
			continue
		}
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(out, in) })
		p.wg.Go(func() { pipe(in, out) })
	}
}

// FreeAddr returns an address of 127.0.0.1 with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
