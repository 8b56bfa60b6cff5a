package password

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"sync"
	"time"

	"coffer"

	"golang.org/x/crypto/argon2"
)

// A Worker derives argon2id keys in a separate process, so that hashing
// neither holds the server's Go processors nor feeds its garbage collector
// 19 MiB a hash. The operating system then shares the cores between the
// two processes, and the worker runs at a lower priority (see ServeWorker):
// a request that needs no hash, an overload answer above all, takes a core
// within a scheduler tick instead of waiting out a Go time slice behind
// every hash in flight.
//
// A worker that dies fails the hashes in flight with ErrUnavailable and is
// started again by the next hash.
type Worker struct {
	newCmd func() *exec.Cmd

	mu        sync.Mutex
	proc      *workerProc // nil until started, and after it died
	nextID    uint32
	lastStart time.Time
	closed    bool
}

// restartBackoff is the least time between two starts of a worker, so that
// a worker that cannot start, or dies at once, does not cost a fork per
// login.
var restartBackoff = time.Second

type workerProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	wmu  sync.Mutex // one request frame at a time on in
	done chan struct{}

	mu      sync.Mutex
	pending map[uint32]chan []byte // closed without a value when the process died
	dead    bool
}

// NewWorker returns a Worker that runs the process newCmd describes when
// the first hash needs it. The process must run ServeWorker on its
// standard input and output; newCmd must not set them.
func NewWorker(newCmd func() *exec.Cmd) *Worker { return &Worker{newCmd: newCmd} }

// closeTimeout bounds the wait for a worker to finish the hashes it holds
// and exit at the end of its input; then it is killed.
const closeTimeout = 5 * time.Second

// Close stops the worker process and waits for it to exit. Hashes still in
// flight fail with ErrUnavailable.
func (w *Worker) Close() error {
	w.mu.Lock()
	p := w.proc
	w.proc, w.closed = nil, true
	w.mu.Unlock()
	if p == nil {
		return nil
	}
	p.in.Close() // the worker exits at the end of its input
	select {
	case <-p.done:
	case <-time.After(closeTimeout):
		p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

func (w *Worker) current() (*workerProc, uint32, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, 0, coffer.Errorf(coffer.ErrUnavailable, "password hashing worker closed")
	}
	if w.proc != nil && w.proc.isDead() {
		w.proc = nil
	}
	if w.proc == nil {
		if time.Since(w.lastStart) < restartBackoff {
			return nil, 0, coffer.Errorf(coffer.ErrUnavailable, "password hashing worker not running")
		}
		w.lastStart = time.Now()
		p, err := startWorker(w.newCmd())
		if err != nil {
			return nil, 0, coffer.Errorf(coffer.ErrUnavailable, "starting the password hashing worker: %v", err)
		}
		w.proc = p
	}
	w.nextID++
	return w.proc, w.nextID, nil
}

func startWorker(cmd *exec.Cmd) (*workerProc, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &workerProc{cmd: cmd, in: in, done: make(chan struct{}), pending: map[uint32]chan []byte{}}
	go p.readAnswers(out)
	return p, nil
}

// readAnswers hands each answer to its caller until the worker's output
// ends, then fails every hash still in flight.
func (p *workerProc) readAnswers(out io.Reader) {
	r := bufio.NewReader(out)
	for {
		id, key, err := readAnswer(r)
		if err != nil {
			break
		}
		p.mu.Lock()
		ch := p.pending[id]
		delete(p.pending, id)
		p.mu.Unlock()
		if ch != nil {
			ch <- key
		}
	}
	p.mu.Lock()
	p.dead = true
	for id, ch := range p.pending {
		close(ch)
		delete(p.pending, id)
	}
	p.mu.Unlock()
	p.in.Close()
	p.cmd.Wait()
	close(p.done)
}

func (p *workerProc) isDead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead
}

// hashDeadline is how long a worker may take to answer a hash before it
// is taken for hung and killed: far above a hash's time (tens of
// milliseconds, a few hashes queued per core).
var hashDeadline = 10 * time.Second

// deriveKey asks the worker for argon2id(pw, salt) with params. Once the
// request is sent, the caller's context is no longer watched: the caller
// holds its hashing slot until the worker answers, so that callers who
// give up (a client that disconnects) cannot queue more work in the worker
// than the slots allow. A worker that does not answer within hashDeadline
// is killed; the hashes in flight fail and the next one starts a new
// worker.
func (w *Worker) deriveKey(ctx context.Context, pw, salt []byte, params Params, keyLen uint32) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, coffer.Errorf(coffer.ErrOverloaded, "gave up before the password hash was sent")
	}
	p, id, err := w.current()
	if err != nil {
		return nil, err
	}
	ch := make(chan []byte, 1)
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return nil, coffer.Errorf(coffer.ErrUnavailable, "password hashing worker stopped")
	}
	p.pending[id] = ch
	p.mu.Unlock()
	frame := appendRequest(nil, id, pw, salt, params, keyLen)
	p.wmu.Lock()
	_, err = p.in.Write(frame)
	p.wmu.Unlock()
	if err != nil {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		return nil, coffer.Errorf(coffer.ErrUnavailable, "password hashing worker: %v", err)
	}
	deadline := time.NewTimer(hashDeadline)
	defer deadline.Stop()
	var key []byte
	ok := false
	select {
	case key, ok = <-ch:
	case <-deadline.C:
		p.cmd.Process.Kill() // readAnswers then fails every hash in flight
		key, ok = <-ch
	}
	if !ok {
		return nil, coffer.Errorf(coffer.ErrUnavailable, "password hashing worker stopped")
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("password hashing worker refused parameters %+v", params)
	}
	return key, nil
}

// Bounds on the parameters hashed: far above those in use, low enough
// that a garbled stored hash or frame cannot ask for gigabytes.
const (
	maxInput     = 4096 // bytes of password or salt
	maxKey       = 1024 // bytes of derived key
	maxMemoryKiB = 1 << 20
	maxTimeCost  = 64
)

func (p Params) withinBounds(keyLen uint32) bool {
	return p.MemoryKiB > 0 && p.MemoryKiB <= maxMemoryKiB && p.TimeCost > 0 && p.TimeCost <= maxTimeCost &&
		p.Parallelism > 0 && keyLen > 0 && keyLen <= maxKey
}

// A request frame, integers little-endian:
// id u32 | time u32 | memory KiB u32 | parallelism u8 | key length u32 |
// password length u32 | password | salt length u32 | salt.
// An answer: id u32 | key length u32 | key; length 0 refuses the request.

func appendRequest(b []byte, id uint32, pw, salt []byte, p Params, keyLen uint32) []byte {
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint32(b, p.TimeCost)
	b = binary.LittleEndian.AppendUint32(b, p.MemoryKiB)
	b = append(b, p.Parallelism)
	b = binary.LittleEndian.AppendUint32(b, keyLen)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pw)))
	b = append(b, pw...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(salt)))
	return append(b, salt...)
}

type workerRequest struct {
	id       uint32
	params   Params
	keyLen   uint32
	pw, salt []byte
}

var errFrame = errors.New("malformed password hashing frame")

func readRequest(r *bufio.Reader) (workerRequest, error) {
	var q workerRequest
	var head [17]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return q, err
	}
	q.id = binary.LittleEndian.Uint32(head[0:])
	q.params.TimeCost = binary.LittleEndian.Uint32(head[4:])
	q.params.MemoryKiB = binary.LittleEndian.Uint32(head[8:])
	q.params.Parallelism = head[12]
	q.keyLen = binary.LittleEndian.Uint32(head[13:])
	var err error
	if q.pw, err = readBytes(r); err != nil {
		return q, err
	}
	q.salt, err = readBytes(r)
	return q, err
}

func readBytes(r *bufio.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, errFrame
	}
	size := binary.LittleEndian.Uint32(n[:])
	if size > maxInput {
		return nil, errFrame
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, errFrame
	}
	return b, nil
}

func appendAnswer(b []byte, id uint32, key []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
	return append(b, key...)
}

func readAnswer(r *bufio.Reader) (uint32, []byte, error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	size := binary.LittleEndian.Uint32(head[4:])
	if size > maxKey {
		return 0, nil, errFrame
	}
	key := make([]byte, size)
	if _, err := io.ReadFull(r, key); err != nil {
		return 0, nil, errFrame
	}
	return binary.LittleEndian.Uint32(head[:4]), key, nil
}

// workerNice is the worker's nice value: the kernel gives a thread at nice
// 10 about a tenth of the share of one at 0, so the server's threads win a
// contended core and the worker still has every idle one.
const workerNice = 10

// ServeWorker is a worker process's whole work: it reads requests from in
// until it ends, derives their keys on one goroutine per processor, and
// writes the answers to out. The goroutines live as long as the worker: a
// goroutine started for each hash cost a fifth more CPU a hash on the
// development machine (BENCHMARKS.md). It first lowers the process's
// scheduling priority, where the system allows, so that the server's
// threads run before it whenever both want a core.
func ServeWorker(in io.Reader, out io.Writer) error {
	lowerPriority()
	if f := pollable(in); f != nil {
		in = f
	}
	if f := pollable(out); f != nil {
		out = f
	}
	return serveRequests(in, out)
}

// serveRequests is ServeWorker's loop, without its changes to the process
// and its files.
func serveRequests(in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	w := bufio.NewWriter(out)
	var wmu sync.Mutex
	var wg sync.WaitGroup
	var writeErr error
	// The server keeps at most two requests per core in flight; a bigger
	// queue only holds back the reading of a misbehaving one.
	queue := make(chan workerRequest, 64)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range queue {
				var key []byte
				if q.params.withinBounds(q.keyLen) {
					key = argon2.IDKey(q.pw, q.salt, q.params.TimeCost, q.params.MemoryKiB, q.params.Parallelism, q.keyLen)
				}
				wmu.Lock()
				_, err := w.Write(appendAnswer(nil, q.id, key))
				if err == nil {
					err = w.Flush()
				}
				if err != nil && writeErr == nil {
					writeErr = err
				}
				wmu.Unlock()
			}
		}()
	}
	for {
		q, err := readRequest(r)
		if err != nil {
			close(queue)
			wg.Wait()
			if errors.Is(err, io.EOF) {
				return writeErr
			}
			return err
		}
		queue <- q
	}
}
