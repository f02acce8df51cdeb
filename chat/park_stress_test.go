package chat

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Many clients send messages in bursts, split at random points, with pongs between,
// pausing so that their readers park between bursts: every message must arrive (no
// lost wake-up) and the race detector must see no two readers on one gorilla Conn.
func TestParkWakeStress(t *testing.T) {
	cfg := parkConfig()
	cfg.DanmakuRate, cfg.DanmakuBurst = 1000, 1000
	cfg.PongWait = 30 * time.Second // no timeouts under load: a lost wake-up shows as a missing message
	rs := startTCPHub(t, cfg, 0)
	const n, per = 60, 15
	start := time.Now()
	var mu sync.Mutex
	seen := map[string]bool{}
	obsErr := make(chan error, 1)
	obs := rs.dial(t, "r1", "observer", 0)
	go func() {
		for {
			_, data, err := obs.ReadMessage()
			if err != nil {
				obsErr <- err
				return
			}
			var evs []struct{ Type, Text string }
			_ = json.Unmarshal(data, &evs)
			mu.Lock()
			for _, e := range evs {
				if e.Type == "danmaku" {
					seen[e.Text] = true
				}
			}
			mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	lastWrite := make([]atomic.Int64, n)
	for i := range n {
		ws := rs.dial(t, "r1", fmt.Sprint("v", i), 0)
		ws.SetPingHandler(func(string) error { return nil }) // no pong writes between our raw writes
		done := make(chan struct{})
		go func() {
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					select {
					case <-done:
					default:
						t.Errorf("client %d at %v (last write at %v): %v", i, time.Since(start).Round(time.Millisecond), time.Duration(lastWrite[i].Load()).Round(time.Millisecond), err)
					}
					return
				}
			}
		}()
		raw := ws.NetConn()
		wg.Go(func() {
			defer close(done)
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for k := range per {
				b := maskedFrame(opText, fmt.Sprintf(`{"type":"danmaku","text":"%d-%d"}`, i, k))
				if rng.IntN(2) == 0 {
					b = append(maskedFrame(opPong, "p"), b...)
				}
				for len(b) > 0 {
					cut := 1 + rng.IntN(len(b))
					if _, err := raw.Write(b[:cut]); err != nil {
						t.Errorf("client %d write: %v", i, err)
						return
					}
					lastWrite[i].Store(int64(time.Since(start)))
					b = b[cut:]
					if rng.IntN(3) == 0 {
						time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
					}
				}
				time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	t.Logf("senders done after %v", time.Since(start).Round(time.Millisecond))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		if got == n*per {
			return
		}
		select {
		case err := <-obsErr:
			t.Fatalf("observer: %v after %d of %d", err, got, n*per)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages arrived", got, n*per)
		}
	}
}
