package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

func init() { benchers["chat"] = benchChat }

// benchChatOpts are the flags of `liveroom bench chat`.
type benchChatOpts struct {
	url, room, token, secret string
	conns, senders, pid      int
	rate                     float64
	duration, drain, settle  time.Duration
}

// idMark starts every benchmark message id, so receivers find them with a byte scan
// instead of decoding every event (the generator must stay cheaper than the server).
const idMark = `"id":"b~`

func benchChat(args []string, stdout, stderr io.Writer) int {
	var o benchChatOpts
	fs := flag.NewFlagSet("liveroom bench chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of a running liveroom server")
	fs.StringVar(&o.room, "room", "bench", "room to load")
	fs.IntVar(&o.conns, "conns", 1000, "WebSocket connections (all of them receive)")
	fs.IntVar(&o.senders, "senders", 100, "how many of the connections also send danmaku")
	fs.Float64Var(&o.rate, "rate", 200, "danmaku per second, all senders together")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to send")
	fs.DurationVar(&o.drain, "drain", 3*time.Second, "how long to wait for deliveries after the last send")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "idle time after connecting, before memory is measured and sending starts")
	fs.StringVar(&o.token, "token", "", "one token for every connection (default: a guest token each, from POST /api/rooms/ROOM/guest)")
	fs.StringVar(&o.secret, "secret", "", "sign a viewer token per connection with this secret instead")
	fs.IntVar(&o.pid, "pid", 0, "pid of a local server: report its CPU-seconds per million deliveries and RSS per connection")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.conns < 1 || o.senders < 1 || o.senders > o.conns || o.rate <= 0 || o.duration <= 0 {
		fmt.Fprintln(stderr, "bench chat: need conns ≥ senders ≥ 1, rate > 0, duration > 0")
		return 2
	}
	if err := runBenchChat(context.Background(), o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench chat:", err)
		return 1
	}
	return 0
}

// delayHist counts fan-out delays in 100 µs buckets up to 30 s.
type delayHist struct {
	buckets [300001]atomic.Uint64
	max     atomic.Int64
}

func (h *delayHist) add(d time.Duration) {
	i := max(int(d/(100*time.Microsecond)), 0)
	if i >= len(h.buckets) {
		i = len(h.buckets) - 1
	}
	h.buckets[i].Add(1)
	for m := h.max.Load(); int64(d) > m && !h.max.CompareAndSwap(m, int64(d)); m = h.max.Load() {
	}
}

func (h *delayHist) quantile(q float64) time.Duration {
	var total uint64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	want, seen := uint64(q*float64(total)), uint64(0)
	for i := range h.buckets {
		if seen += h.buckets[i].Load(); seen > want {
			return time.Duration(i+1) * 100 * time.Microsecond
		}
	}
	return 0
}

type benchConn struct {
	ws   *websocket.Conn
	user string
}

func runBenchChat(ctx context.Context, o benchChatOpts, stdout, stderr io.Writer) error {
	base, err := url.Parse(strings.TrimRight(o.url, "/"))
	if err != nil {
		return err
	}
	rss0, mem0 := procRSS(o.pid), goMemory(base)
	conns, err := dialAll(ctx, o, base, stderr)
	defer func() {
		for _, c := range conns {
			c.ws.Close()
		}
	}()
	if err != nil {
		return err
	}
	// Receivers run from the start: they answer the server's pings while idle.
	var hist benchDelays
	var delivered, refused atomic.Uint64
	stopReceivers, err := startReceivers(conns, &hist, &delivered, &refused)
	if err != nil {
		return err
	}
	time.Sleep(o.settle) // let welcomes, presence and the GC settle before measuring memory
	rss1, mem1 := procRSS(o.pid), goMemory(base)
	cpu0, self0, m0 := procCPU(o.pid), procCPU(os.Getpid()), metricsText(base)
	start := time.Now()
	var sent atomic.Uint64
	var senders sync.WaitGroup
	interval := time.Duration(float64(time.Second) * float64(o.senders) / o.rate)
	for s := range o.senders {
		c := conns[s]
		senders.Go(func() {
			// Stagger senders over one interval so the load is smooth.
			time.Sleep(time.Duration(int64(interval) * int64(s) / int64(o.senders)))
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for n := 0; time.Since(start) < o.duration; n++ {
				msg := fmt.Sprintf(`{"type":"danmaku","text":"bench message %d","id":"b~%d~%d~%d"}`, n, s, n, time.Now().UnixNano())
				if err := c.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					return
				}
				sent.Add(1)
				<-tick.C
			}
		})
	}
	senders.Wait()
	sendTime := time.Since(start)
	time.Sleep(o.drain)
	cpu1, self1, m1 := procCPU(o.pid), procCPU(os.Getpid()), metricsText(base)
	stopReceivers()
	for _, c := range conns {
		c.ws.Close()
	}

	// A refused message (rate_limited) was never broadcast: it is not expected anywhere.
	n, d := sent.Load(), delivered.Load()
	expected := (n - min(refused.Load(), n)) * uint64(len(conns))
	fmt.Fprintf(stdout, "chat bench: %d connections, %d senders, %.0f msg/s target, %s sending + %s drain\n",
		len(conns), o.senders, o.rate, sendTime.Round(time.Millisecond), o.drain)
	fmt.Fprintf(stdout, "sent %d messages (%.1f/s), refused by the server %d\n", n, float64(n)/sendTime.Seconds(), refused.Load())
	fmt.Fprintf(stdout, "deliveries %d of %d expected: %.0f deliveries/s; lost %d\n",
		d, expected, float64(d)/sendTime.Seconds(), int64(expected)-int64(d))
	fmt.Fprintf(stdout, "fan-out delay: p50 %s  p99 %s  max %s\n",
		hist.total.quantile(0.50), hist.total.quantile(0.99), time.Duration(hist.total.max.Load()).Round(100*time.Microsecond))
	fmt.Fprintf(stdout, "  split at the event's server time (one message in 16, ms resolution): sender → room p50 %s p99 %s; room → receiver p50 %s p99 %s\n",
		hist.toRoom.quantile(0.50), hist.toRoom.quantile(0.99), hist.fromRoom.quantile(0.50), hist.fromRoom.quantile(0.99))
	printServerHist(stdout, m0, m1, "liveroom_chat_fanout_delay_seconds", "server-side fan-out delay (event to socket write, from /metrics)")
	printServerHist(stdout, m0, m1, "liveroom_chat_cycle_seconds", "server fan-out cycle (every connection of the room visited once)")
	fmt.Fprintf(stdout, "generator CPU: %.2f s over the run\n", self1-self0)
	if o.pid > 0 && cpu1 >= cpu0 && d > 0 {
		cpu := cpu1 - cpu0
		fmt.Fprintf(stdout, "server CPU: %.2f s over the run = %.2f CPU-s per million deliveries (%.0f deliveries per CPU-second)\n",
			cpu, cpu/float64(d)*1e6, float64(d)/cpu)
		fmt.Fprintf(stdout, "server RSS: %.1f MiB before, %.1f MiB with %d idle connections = %.1f KiB per connection\n",
			float64(rss0)/(1<<20), float64(rss1)/(1<<20), len(conns), float64(rss1-rss0)/1024/float64(len(conns)))
	}
	if mem0 > 0 && mem1 > 0 {
		fmt.Fprintf(stdout, "server Go heap+stacks in use (from /metrics): %.1f KiB per idle connection\n",
			(mem1-mem0)/1024/float64(len(conns)))
	}
	return nil
}

// readEach reads each of conns on a goroutine of its own, through gorilla; stop
// closes them and waits for the readers.
func readEach(conns []benchConn, d *benchDelays, delivered, refused *atomic.Uint64) (stop func()) {
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { readBench(c.ws, d, delivered, refused) })
	}
	return func() {
		for _, c := range conns {
			c.ws.Close() // their readers end on it
		}
		wg.Wait()
	}
}

// readBench counts benchmark messages and their delays in every frame until the
// connection ends; error events (refusals) are counted too.
func readBench(ws *websocket.Conn, hist *benchDelays, delivered, refused *atomic.Uint64) {
	var buf bytes.Buffer // reused: the generator must not spend its core on garbage
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return
		}
		n, errors := scanBench(buf.Bytes(), time.Now().UnixNano(), hist)
		delivered.Add(n)
		refused.Add(errors)
	}
}

// benchDelays are the fan-out delays of benchmark messages: whole (sender's clock to
// the receiver's), and split at the server's event time ("at", in milliseconds) into
// sender → room and room → receiver, which tells the server's share from the network's
// and the generator's.
type benchDelays struct {
	total, toRoom, fromRoom delayHist
}

// scanBench finds the benchmark messages in a frame, notes each one's delays and
// returns how many there were, and how many error events the frame holds. One pass
// of IndexByte for '~' (a benchmark id is "b~S~N~T", and nothing else the server
// sends has a '~'): the generator reads a million events a second on one core, and
// searching each for a longer pattern took a third of it. Errors are unicast frames,
// never in a frame of room events, so only a frame without '~' is searched for them.
func scanBench(data []byte, now int64, d *benchDelays) (n, errors uint64) {
	i := bytes.IndexByte(data, '~')
	if i < 0 {
		return 0, uint64(bytes.Count(data, []byte(`"type":"error"`)))
	}
	for i >= 0 {
		if i+1 < len(idMark) || !bytes.Equal(data[i+1-len(idMark):i+1], []byte(idMark)) {
			data = data[i+1:]
		} else {
			j := i + 1 // sender~n~sentAt"
			for range 2 {
				k := bytes.IndexByte(data[j:], '~')
				if k < 0 {
					return n, 0
				}
				j += k + 1
			}
			end := bytes.IndexByte(data[j:], '"')
			if end < 0 {
				return n, 0
			}
			if sentAt, ok := parseDigits(data[j : j+end]); ok {
				d.total.add(time.Duration(now - sentAt))
				// The split costs a backward search: one message in 16 is enough.
				if sentAt&0xf == 0 {
					if at, ok := eventAt(data[:i]); ok {
						d.toRoom.add(time.Duration(at - sentAt))
						d.fromRoom.add(time.Duration(now - at))
					}
				}
				n++
			}
			data = data[j+end:]
		}
		i = bytes.IndexByte(data, '~')
	}
	return n, 0
}

// eventAt reads the "at" (Unix milliseconds) of the event that obj ends inside, in
// nanoseconds: chat writes it after the type and before the id.
func eventAt(obj []byte) (int64, bool) {
	obj = obj[max(bytes.LastIndex(obj, []byte(`{"type":`)), 0):]
	k := bytes.LastIndex(obj, []byte(`"at":`))
	if k < 0 {
		return 0, false
	}
	digits := obj[k+len(`"at":`):]
	if e := bytes.IndexByte(digits, ','); e >= 0 {
		digits = digits[:e]
	}
	ms, ok := parseDigits(digits)
	return ms * int64(time.Millisecond), ok
}

// parseDigits reads a non-negative decimal number without allocating (a million a
// second here: the generator must not spend its core on garbage).
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' || v > (math.MaxInt64-9)/10 {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// dialAll opens o.conns connections, 64 at a time, each with its own token.
func dialAll(ctx context.Context, o benchChatOpts, base *url.URL, stderr io.Writer) ([]benchConn, error) {
	var signer *token.Signer
	if o.secret != "" {
		s, err := token.NewSigner(o.secret)
		if err != nil {
			return nil, err
		}
		signer = s
	}
	ws := *base
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[base.Scheme]
	ws.Path = "/ws/" + o.room
	conns := make([]benchConn, o.conns)
	var failed atomic.Value
	var next atomic.Int64
	var wg sync.WaitGroup
	// A 16 KiB read buffer takes a whole batched frame in one read syscall (when
	// gorilla reads: TLS, or not Linux).
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 16 << 10, WriteBufferSize: 1024}
	if ws.Scheme == "ws" {
		var nd net.Dialer
		dialer.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &byteConn{Conn: c}, nil
		}
	}
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.conns || failed.Load() != nil {
					return
				}
				tok, user, err := benchToken(ctx, o, signer, base, i)
				if err == nil {
					u := ws
					u.RawQuery = url.Values{"token": {tok}}.Encode()
					var c *websocket.Conn
					c, _, err = dialer.DialContext(ctx, u.String(), nil)
					if err == nil {
						if bc, ok := c.NetConn().(*byteConn); ok {
							bc.whole.Store(true) // the handshake is over
						}
					}
					conns[i] = benchConn{ws: c, user: user}
				}
				if err != nil {
					failed.Store(fmt.Errorf("connection %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	var ok []benchConn
	for _, c := range conns {
		if c.ws != nil {
			ok = append(ok, c)
		}
	}
	if err, _ := failed.Load().(error); err != nil {
		return ok, err
	}
	fmt.Fprintf(stderr, "bench chat: %d connections open\n", len(ok))
	return ok, nil
}

func benchToken(ctx context.Context, o benchChatOpts, signer *token.Signer, base *url.URL, i int) (string, string, error) {
	switch {
	case o.token != "":
		return o.token, "", nil
	case signer != nil:
		user := "bench-" + strconv.Itoa(i)
		t, err := signer.Issue(token.Spec{User: user, Role: event.RoleViewer, Room: o.room, TTL: 24 * time.Hour})
		return t, user, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.String()+"/api/rooms/"+url.PathEscape(o.room)+"/guest", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var g struct {
		Token    string `json:"token"`
		ViewerID string `json:"viewer_id"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return "", "", fmt.Errorf("guest token: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil {
		return "", "", err
	}
	return g.Token, g.ViewerID, nil
}

// bucketCounts is a cumulative Prometheus histogram: upper bound (seconds) → count.
type bucketCounts map[float64]float64

func (b bucketCounts) sub(a bucketCounts) bucketCounts {
	out := bucketCounts{}
	for le, n := range b {
		out[le] = n - a[le]
	}
	return out
}

// quantile is the upper bound of the bucket holding quantile q.
func (b bucketCounts) quantile(q float64) string {
	les := make([]float64, 0, len(b))
	for le := range b {
		les = append(les, le)
	}
	slices.Sort(les)
	if len(les) == 0 || b[les[len(les)-1]] == 0 {
		return "n/a"
	}
	want := q * b[les[len(les)-1]]
	for _, le := range les {
		if b[le] >= want {
			if math.IsInf(le, 1) {
				return "+Inf"
			}
			return time.Duration(le * float64(time.Second)).String()
		}
	}
	return "n/a"
}

// printServerHist prints the median and p99 of what a server histogram counted
// between two readings of /metrics (bucket bounds: Prometheus keeps no more).
func printServerHist(w io.Writer, before, after, name, label string) {
	if h := serverHist(after, name).sub(serverHist(before, name)); len(h) > 0 {
		fmt.Fprintf(w, "%s: p50 ≤ %s  p99 ≤ %s\n", label, h.quantile(0.5), h.quantile(0.99))
	}
}

// serverHist reads one of the server's histograms from its /metrics text.
func serverHist(metrics, name string) bucketCounts {
	if metrics == "" {
		return nil
	}
	out := bucketCounts{}
	prefix := name + `_bucket{le="`
	for _, line := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		le, val, _ := strings.Cut(rest, `"} `)
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err1 == nil && err2 == nil {
			out[bound] = n
		}
	}
	return out
}

func metricsText(base *url.URL) string {
	resp, err := http.Get(base.String() + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// goMemory is the server's Go heap and stack bytes in use, from its /metrics.
func goMemory(base *url.URL) float64 {
	var sum float64
	for _, line := range strings.Split(metricsText(base), "\n") {
		for _, name := range []string{"go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes "} {
			if v, ok := strings.CutPrefix(line, name); ok {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				sum += f
			}
		}
	}
	return sum
}
