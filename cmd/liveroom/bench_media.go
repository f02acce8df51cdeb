package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liveroom/liveroom/media/peer"
)

func init() { benchers["media"] = benchMedia }

// benchMedia publishes a generated H.264 stream over WHIP and opens N WHEP viewers
// against any WHIP/WHEP server, then prints delivery, loss, first-keyframe latency and,
// with --pid, the server's CPU and memory per viewer.
func benchMedia(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("liveroom bench media", flag.ContinueOnError)
	fs.SetOutput(stderr)
	whip := fs.String("whip", "", "WHIP endpoint to publish to (empty: watch a stream someone else publishes)")
	whep := fs.String("whep", "", "WHEP endpoint the viewers play")
	viewers := fs.Int("viewers", 100, "number of WHEP viewers")
	bitrate := fs.String("bitrate", "2500k", "video bitrate of the generated H.264 stream (needs ffmpeg; else a small embedded clip)")
	duration := fs.Duration("duration", 20*time.Second, "measurement window once every viewer has joined")
	tok := fs.String("token", "", "Bearer token for WHIP (and WHEP unless --viewer-token)")
	vtok := fs.String("viewer-token", "", "Bearer token for WHEP (default: --token)")
	pid := fs.Int("pid", 0, "server process id: report its CPU and memory per viewer")
	joinRate := fs.Int("join-rate", 25, "viewers joining per second")
	decryptAll := fs.Bool("decrypt-all", false, "viewers decrypt every packet, like a browser, instead of counting "+
		"packets from their RTP headers after the first keyframe (heavier: the generator then limits how many viewers one core can watch)")
	noGRO := fs.Bool("no-gro", false, "viewers' sockets take each datagram on its own instead of a server's segmented send whole "+
		"(UDP_GRO): on loopback the kernel then queues every datagram inside the server's own system call, charging the viewers' receive work to the server")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	bps, err := parseBitrate(*bitrate)
	if *whep == "" || *viewers < 1 || err != nil {
		fmt.Fprintln(stderr, "liveroom bench media: --whep and --viewers ≥ 1 are required; --bitrate like 2500k")
		return 2
	}
	if *vtok == "" {
		*vtok = *tok
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runMediaBench(ctx, stdout, mediaBench{
		whip: *whip, whep: *whep, viewers: *viewers, bps: bps, duration: *duration,
		token: *tok, viewerToken: *vtok, pid: *pid, joinRate: *joinRate, light: !*decryptAll, gro: !*noGRO,
	}); err != nil {
		fmt.Fprintln(stderr, "liveroom bench media:", err)
		return 1
	}
	return 0
}

type mediaBench struct {
	whip, whep         string
	viewers            int
	bps                int
	duration           time.Duration
	token, viewerToken string
	pid, joinRate      int
	light              bool // viewers count from RTP headers after their first keyframe
	gro                bool // viewers' sockets take segmented sends whole (UDP_GRO)
}

func parseBitrate(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1000, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "M"):
		mult, s = 1000000, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bitrate %q", s)
	}
	return n * mult, nil
}

func runMediaBench(ctx context.Context, out io.Writer, b mediaBench) error {
	api, err := peer.NewAPI(false, b.gro)
	if err != nil {
		return err
	}
	if b.whip != "" {
		clip, err := peer.EncodeClip(ctx, b.bps, 10)
		if err != nil {
			fmt.Fprintf(out, "encoding with ffmpeg failed (%v); using the small embedded clip\n", err)
			if clip, err = peer.DefaultClip(); err != nil {
				return err
			}
		}
		pub, err := (&peer.Client{API: api, Token: b.token}).Publish(ctx, b.whip, clip)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		defer pub.Close(context.Background(), true)
		time.Sleep(2 * time.Second) // let the stream go live and a GOP fill the caches
	}
	rssBase := procRSS(b.pid)
	vc := &peer.Client{API: api, Token: b.viewerToken, Light: b.light}
	var vs []*peer.Viewer
	defer func() {
		for _, v := range vs {
			_ = v.Close(context.Background(), true)
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(max(b.joinRate, 1)))
	defer tick.Stop()
	for i := 0; i < b.viewers; i++ {
		v, err := vc.Watch(ctx, b.whep)
		if err != nil {
			return fmt.Errorf("viewer %d: %w", i, err)
		}
		vs = append(vs, v)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	fmt.Fprintf(out, "%d viewers joined; warming up 3s, then measuring for %s\n", len(vs), b.duration)
	time.Sleep(3 * time.Second)
	before := snapshot(vs)
	cpu0, gen0, at0 := procCPU(b.pid), procCPU(os.Getpid()), time.Now()
	udp0 := udpCounters()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(b.duration):
	}
	after := snapshot(vs)
	cpu1, gen1, window := procCPU(b.pid), procCPU(os.Getpid()), time.Since(at0).Seconds()
	rssEnd := procRSS(b.pid)
	udp1 := udpCounters()

	var pk, exp, lost, conn, light, gro uint64
	var firsts, reads []time.Duration
	for i := range vs {
		a, z := before[i], after[i]
		pk += z.Video.Packets + z.Audio.Packets - a.Video.Packets - a.Audio.Packets
		e := z.Video.Expected + z.Audio.Expected - a.Video.Expected - a.Audio.Expected
		l := z.Video.Lost() + z.Audio.Lost() - min(a.Video.Lost()+a.Audio.Lost(), z.Video.Lost()+z.Audio.Lost())
		exp, lost = exp+e, lost+l
		if z.Connected {
			conn++
		}
		if z.Light {
			light++
		}
		if z.GRO {
			gro++
		}
		if z.KeyframeSeen {
			firsts = append(firsts, z.FirstKeyframe)
			reads = append(reads, z.FirstKeyframeRead)
		}
	}
	slices.Sort(firsts)
	slices.Sort(reads)
	fmt.Fprintf(out, "viewers:                 %d (%d connected, %d counting from RTP headers, %d of them taking segmented sends whole)\n", len(vs), conn, light, gro)
	fmt.Fprintf(out, "packets delivered/s:     %.0f total, %.1f per viewer\n", float64(pk)/window, float64(pk)/window/float64(len(vs)))
	if exp > 0 {
		how := "after NACK repair"
		if b.light {
			how = "raw: light viewers send no NACKs"
		}
		fmt.Fprintf(out, "loss (sequence gaps):    %.4f%% (%d of %d; %s)\n", 100*float64(lost)/float64(exp), lost, exp, how)
	}
	fmt.Fprintf(out, "first keyframe:          p50 %s  p99 %s  (%d of %d viewers saw one; from the viewer's connection to the packet's arrival at its socket)\n",
		pct(firsts, 0.50), pct(firsts, 0.99), len(firsts), len(vs))
	fmt.Fprintf(out, "  ... once decrypted:    p50 %s  p99 %s  (later by the generator's own lag)\n", pct(reads, 0.50), pct(reads, 0.99))
	fmt.Fprintf(out, "kernel UDP drops:        %d receive-buffer, %d send-buffer (whole host, during the window)\n",
		udp1["RcvbufErrors"]-udp0["RcvbufErrors"], udp1["SndbufErrors"]-udp0["SndbufErrors"])
	fmt.Fprintf(out, "generator CPU:           %.1f%% of a core (near 100%% means the viewers, not the server, limit delivery)\n", 100*(gen1-gen0)/window)
	if b.pid > 0 {
		cpu := (cpu1 - cpu0) / window
		fmt.Fprintf(out, "server CPU:              %.1f%% of a core, %.3f ms CPU per viewer-second, %.1f µs per packet sent\n",
			100*cpu, 1000*cpu/float64(len(vs)), 1e6*(cpu1-cpu0)/max(float64(pk), 1))
		fmt.Fprintf(out, "server RSS:              %.1f MiB before viewers, %.1f MiB with them, %.1f KiB per viewer\n",
			float64(rssBase)/(1<<20), float64(rssEnd)/(1<<20), float64(rssEnd-rssBase)/1024/float64(len(vs)))
	}
	return nil
}

func snapshot(vs []*peer.Viewer) []peer.ViewerStats {
	out := make([]peer.ViewerStats, len(vs))
	for i, v := range vs {
		out[i] = v.Stats()
	}
	return out
}

func pct(d []time.Duration, p float64) string {
	if len(d) == 0 {
		return "n/a"
	}
	return d[min(int(float64(len(d))*p), len(d)-1)].Round(time.Millisecond).String()
}

// udpCounters reads the host's UDP counters from /proc/net/snmp: receive-buffer
// drops there mean a receiving socket (here: the load generator's viewers) was full.
func udpCounters() map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return out
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				out[names[i]], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return out
}
