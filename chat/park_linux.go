package chat

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// parker watches parked connections' sockets on one epoll instance. The epoll file
// descriptor is itself pollable, so its loop waits in Go's own network poller
// instead of holding a thread in epoll_wait, and closing it ends the loop.
type parker struct {
	ep   *os.File
	raw  syscall.RawConn // ep's, to hold its descriptor open while polling
	epfd int

	pollMu  sync.Mutex // one poll at a time; the others skip theirs
	pollEvs []syscall.EpollEvent

	mu    sync.Mutex
	conns map[uint64]*conn // by parkID, from a connection's first park to its end
	done  chan struct{}
}

var errForgotten = errors.New("chat: the connection has ended")

func newParker() (*parker, error) {
	p, err := openParker()
	if err != nil {
		return nil, err
	}
	go p.run(p.raw)
	return p, nil
}

// openParker makes the epoll instance; its loop (run) is not started.
func openParker() (*parker, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil { // os.NewFile polls only a non-blocking fd
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	p := &parker{ep: os.NewFile(uintptr(fd), "epoll"), epfd: fd, conns: map[uint64]*conn{}, done: make(chan struct{})}
	raw, err := p.ep.SyscallConn()
	if err != nil {
		p.ep.Close()
		return nil, err
	}
	p.raw, p.pollEvs = raw, make([]syscall.EpollEvent, 64)
	return p, nil
}

// arm watches c's socket for one readable event (one-shot: the reader that event
// starts arms it again when it parks). Level-triggered, so bytes that arrived before
// arming wake it at once.
func (p *parker) arm(c *conn) error {
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(c.parkID)),
		Pad:    int32(uint32(c.parkID >> 32)),
	}
	p.mu.Lock()
	if c.forgotten { // ended meanwhile (a wake-up started the reader that ended it)
		p.mu.Unlock()
		return errForgotten
	}
	p.conns[c.parkID] = c
	p.mu.Unlock()
	var err error
	// Control holds the socket open meanwhile: its number cannot be another's. The
	// first park adds the socket to the set; later ones re-arm it.
	cerr := c.raw.Control(func(fd uintptr) {
		if err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev); err == syscall.ENOENT {
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if cerr != nil {
		return cerr
	}
	if err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// forget drops c, which has ended (closing its socket took it out of the epoll set).
func (p *parker) forget(c *conn) {
	p.mu.Lock()
	delete(p.conns, c.parkID)
	c.forgotten = true
	p.mu.Unlock()
}

func (p *parker) run(raw syscall.RawConn) {
	defer close(p.done)
	evs := make([]syscall.EpollEvent, 256)
	for {
		err := raw.Read(func(fd uintptr) bool {
			for {
				n, err := syscall.EpollWait(int(fd), evs, 0)
				if err == syscall.EINTR {
					continue
				}
				if err != nil {
					return true // closed: Read reports it
				}
				p.wake(evs[:n])
				if n < len(evs) {
					return false // drained: wait for the epoll fd to be readable again
				}
			}
		})
		if err != nil {
			return
		}
	}
}

// poll wakes, without waiting, the parked connections whose clients have sent
// something. The fan-out calls it between connections: while a cycle keeps the
// scheduler busy, Go's own poller looks at the network only about every 10 ms
// (sysmon), and a viewer's message waited that long, or longer, to reach its room.
func (p *parker) poll() {
	if !p.pollMu.TryLock() {
		return
	}
	defer p.pollMu.Unlock()
	_ = p.raw.Control(func(fd uintptr) { // Control: the descriptor cannot be closed meanwhile
		for {
			n, err := syscall.EpollWait(int(fd), p.pollEvs, 0)
			if err == syscall.EINTR {
				continue
			}
			if err != nil || n <= 0 {
				return
			}
			p.wake(p.pollEvs[:n])
			if n < len(p.pollEvs) {
				return
			}
		}
	})
}

func (p *parker) wake(evs []syscall.EpollEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range evs {
		if c := p.conns[uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32]; c != nil {
			c.resume()
		}
	}
}

// close stops the loop; every connection has ended by then.
func (p *parker) close() {
	p.ep.Close()
	<-p.done
}
