package gateway_test

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/event"
)

// BenchmarkRoomFanout: one host sends b.N danmaku into a room of n connections over
// loopback; the figure that matters is deliveries/s (client and server share the CPU).
func BenchmarkRoomFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			cfg := fastSenders(testChatConfig())
			cfg.FlushInterval = 20 * time.Millisecond
			cfg.QueueFrames = 1 << 12
			cfg.ConnsPerAddr = 0
			h := newHarness(b, cfg, nil)
			var got atomic.Int64
			var readers sync.WaitGroup
			conns := make([]*websocket.Conn, n)
			for i := range conns {
				ws, _, err := h.dialRaw("bench", h.token(event.RoleViewer, "v"+strconv.Itoa(i), "bench"), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = ws
				readers.Go(func() {
					for {
						_, data, err := ws.ReadMessage()
						if err != nil {
							return
						}
						got.Add(int64(bytes.Count(data, []byte(`"id":"m`))))
					}
				})
			}
			host := h.dial("bench", event.RoleHost, "h", nil)
			go func() {
				for {
					if _, _, err := host.ws.NextReader(); err != nil {
						return
					}
				}
			}()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				host.send(map[string]any{"type": "danmaku", "text": "bench", "id": "m" + strconv.Itoa(i)})
			}
			want := int64(b.N) * int64(n)
			for got.Load() < want {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(want)/time.Since(start).Seconds(), "deliveries/s")
			for _, ws := range conns {
				ws.Close()
			}
			host.ws.Close()
			readers.Wait()
		})
	}
}
