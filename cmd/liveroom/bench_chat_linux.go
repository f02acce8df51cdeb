package main

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// startReceivers reads every connection's frames on one goroutine that waits on an
// epoll instance (see bench_chat_frames.go for why). It returns a function that stops
// it and waits; the connections stay open. Connections whose socket cannot be had
// (TLS) are read by a goroutine each, as before.
func startReceivers(conns []benchConn, d *benchDelays, delivered, refused *atomic.Uint64) (stop func(), err error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	byFD := map[int32]*rawReceiver{}
	var others []benchConn
	for _, c := range conns {
		fd, ok := socketFD(c)
		if !ok {
			others = append(others, c)
			continue
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			syscall.Close(epfd)
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
		byFD[int32(fd)] = &rawReceiver{pong: pongTo(c.ws)}
	}
	var quit atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		defer syscall.Close(epfd)
		evs := make([]syscall.EpollEvent, 256)
		buf := make([]byte, 256<<10)
		for !quit.Load() {
			n, err := syscall.EpollWait(epfd, evs, 100)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench chat: epoll_wait:", err)
				return
			}
			for _, ev := range evs[:n] {
				r := byFD[ev.Fd]
				if r == nil || r.done {
					continue
				}
				got, err := syscall.Read(int(ev.Fd), buf)
				if err == syscall.EAGAIN || err == syscall.EINTR {
					continue
				}
				if got > 0 {
					r.feed(buf[:got], time.Now().UnixNano(), d, delivered, refused)
				}
				if got <= 0 || r.done {
					// Ended: stop watching it (the bench closes the socket itself).
					r.done = true
					_ = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, int(ev.Fd), nil)
				}
			}
		}
	})
	stopOthers := readEach(others, d, delivered, refused)
	return func() {
		quit.Store(true)
		stopOthers()
		wg.Wait()
	}, nil
}

// socketFD is the descriptor of c's TCP socket, when the generator may read it
// directly: a plain connection whose handshake left nothing in the dialer's buffer.
func socketFD(c benchConn) (int, bool) {
	bc, ok := c.ws.NetConn().(*byteConn)
	if !ok {
		return 0, false
	}
	tcp, ok := bc.Conn.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd := -1
	if raw.Control(func(s uintptr) { fd = int(s) }) != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}
