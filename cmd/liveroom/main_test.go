package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liveroom/liveroom/hugepage"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "liveroom-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "liveroom")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("build: " + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loopbackEnv binds every listener to a free loopback port; everything else stays default.
func loopbackEnv() []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIVEROOM_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"LIVEROOM_HTTP=127.0.0.1:0",
		"LIVEROOM_WEBRTC_UDP=127.0.0.1:0",
		"LIVEROOM_WEBRTC_TCP=127.0.0.1:0",
		"LIVEROOM_RTSP=127.0.0.1:0",
	)
}

type running struct {
	cmd    *exec.Cmd
	links  map[string]string
	stderr *bytes.Buffer
	done   chan error
}

// startServe runs a bare `liveroom serve` in dir and waits for its printed links.
func startServe(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = loopbackEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r := &running{cmd: cmd, links: map[string]string{}, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-r.done
		}
	})
	linkRE := regexp.MustCompile(`^\s+(\w+) \(\w+\):\s+(\S+)$`)
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			if m := linkRE.FindStringSubmatch(sc.Text()); m != nil {
				r.links[m[1]] = m[2]
				if n++; n == 4 {
					close(found)
				}
			}
		}
		io.Copy(io.Discard, stdout)
		r.done <- cmd.Wait()
	}()
	select {
	case <-found:
	case err := <-r.done:
		t.Fatalf("serve exited before printing links: %v\n%s", err, r.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("no links within 60s\n%s", r.stderr)
	}
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, r.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("did not stop after SIGTERM\n%s", r.stderr)
	}
}

func whoami(t *testing.T, link, room string) map[string]any {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", u.Scheme+"://"+u.Host+"/api/me?room="+room, nil)
	req.Header.Set("Authorization", "Bearer "+u.Query().Get("token"))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&m) != nil {
		t.Fatalf("%s: status %d", link, res.StatusCode)
	}
	return m
}

// With a secret of the operator's (production) the node prints its pages' links
// without tokens: its logs would keep an admin token for every room, a day long.
func TestServeWithASecretPrintsNoTokens(t *testing.T) {
	r := startServe(t, t.TempDir(), "--secret", "operator-secret-0123456789abcdef-0123")
	for name, link := range r.links {
		if strings.Contains(link, "token=") {
			t.Errorf("%s link carries a token: %s", name, link)
		}
	}
	r.stop(t)
}

// liveroom import's usage (--help, or after a mistyped flag) does not print the admin
// token it would read from LIVEROOM_TOKEN.
func TestImportUsageKeepsTheTokenSecret(t *testing.T) {
	const secret = "eyJhbGciOiJIUzI1NiJ9.ADMIN-TOKEN.sig"
	for _, args := range [][]string{{"import", "--help"}, {"import", "--bogus"}} {
		cmd := exec.Command(binary, args...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(loopbackEnv(), "LIVEROOM_TOKEN="+secret)
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), "ADMIN-TOKEN") || !strings.Contains(string(out), "--token") {
			t.Errorf("%v printed the token, or no usage:\n%s", args, out)
		}
	}
}

func TestBareServeInEmptyFolder(t *testing.T) {
	dir := t.TempDir()
	r := startServe(t, dir)

	info, err := os.Stat(filepath.Join(dir, "data", "secret"))
	if err != nil {
		t.Fatalf("no generated secret: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("secret mode %v", info.Mode().Perm())
	}
	for name, role := range map[string]string{"studio": "host", "console": "agent", "dashboard": "admin"} {
		if got := whoami(t, r.links[name], "demo")["role"]; got != role {
			t.Errorf("%s link token role %v, want %s", name, got, role)
		}
	}
	for name, link := range r.links {
		res, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s page %s: %d", name, link, res.StatusCode)
		}
	}
	checkHugeMetrics(t, r)
	studio := r.links["studio"]
	r.stop(t)
	if !strings.Contains(r.stderr.String(), "stopped") {
		t.Errorf("no clean stop in the log:\n%s", r.stderr)
	}
	checkHugeLog(t, r.stderr.String())

	// A second start keeps the secret: the first run's links still work.
	r2 := startServe(t, dir)
	u, _ := url.Parse(studio)
	u2, _ := url.Parse(r2.links["studio"])
	u.Host = u2.Host
	if got := whoami(t, u.String(), "demo")["id"]; got != "host" {
		t.Fatalf("old token after restart: %v", got)
	}
	r2.stop(t)
}

// checkHugeMetrics checks that a running server shows its huge pages in /metrics
// (the hugepage package's tests check the collapsing in the kernel's account; an idle
// server's heap is too sparse for it).
func checkHugeMetrics(t *testing.T, r *running) {
	t.Helper()
	u, err := url.Parse(r.links["studio"])
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(u.Scheme + "://" + u.Host + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, series := range []string{"liveroom_huge_pages_bytes ", "liveroom_huge_pages_collapses_total ", "liveroom_huge_pages_refusals_total "} {
		if !strings.Contains(string(body), "\n"+series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

// checkHugeLog checks that a stopped server's log said whether it collapsed its heap
// into huge pages.
func checkHugeLog(t *testing.T, log string) {
	t.Helper()
	want := "huge pages on"
	// The server, a child of this process, decides as Start does here: same kernel,
	// same inherited process setting.
	if w, err := hugepage.Start(time.Hour); err != nil {
		want = "huge pages off"
	} else {
		w.Stop()
	}
	if !strings.Contains(log, want) {
		t.Errorf("the log does not say %q:\n%s", want, log)
	}
}

func TestTokenCommandMatchesServer(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(binary, "token", "--role", "agent", "--room", "shop1", "--user", "a7", "--name", "Lin", "--data", filepath.Join(dir, "data")).Output()
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(out))
	r := startServe(t, dir)
	u, _ := url.Parse(r.links["player"])
	m := whoami(t, u.Scheme+"://"+u.Host+"/?token="+url.QueryEscape(tok), "shop1")
	if m["id"] != "a7" || m["name"] != "Lin" || m["role"] != "agent" {
		t.Fatalf("claims %v", m)
	}
	r.stop(t)
}

// TestTokenCommandReadsTheConfigFile: with the secret set in the server's YAML file, the
// token command signs with it too.
func TestTokenCommandReadsTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	secret := "config-file-secret-0123456789abcdef"
	cfgFile := filepath.Join(dir, "liveroom.yml")
	if err := os.WriteFile(cfgFile, []byte("secret: "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "token", "--config", cfgFile, "--role", "admin", "--room", "*", "--user", "a1")
	cmd.Dir = dir
	cmd.Env = loopbackEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	r := startServe(t, dir, "--config", cfgFile)
	u, _ := url.Parse(r.links["player"])
	if m := whoami(t, u.Scheme+"://"+u.Host+"/?token="+url.QueryEscape(strings.TrimSpace(string(out))), "any"); m["id"] != "a1" {
		t.Fatalf("claims %v", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "secret")); err == nil {
		t.Fatal("a secret was generated although the config file has one")
	}
	r.stop(t)
}

func TestUsageAndExitCodes(t *testing.T) {
	run := func(env []string, args ...string) (string, string, int) {
		cmd := exec.Command(binary, args...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(loopbackEnv(), env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	out, _, code := run(nil, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, flag := range []string{"--http", "--redis", "--secret", "--webrtc-udp", "--stay-threshold", "--drain-timeout", "LIVEROOM_HTTP", "token", "bench"} {
		if !strings.Contains(out, flag) {
			t.Errorf("--help lacks %s", flag)
		}
	}
	for name := range commands { // the sub-commands registered by their own files
		if !strings.Contains(out, "liveroom "+name+" ") {
			t.Errorf("--help does not list the %s command", name)
		}
	}
	if out, _, code = run(nil, "serve", "--help"); code != 0 || !strings.Contains(out, "--acme-domain") {
		t.Fatalf("serve --help: %d", code)
	}
	if out, _, code = run(nil, "token", "--help"); code != 0 || !strings.Contains(out, "-role") {
		t.Fatalf("token --help: %d %s", code, out)
	}
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"serve", "--log-level", "loud"}, "log-level"},
		{[]string{"LIVEROOM_DRAIN_TIMEOUT=forever"}, []string{"serve"}, "LIVEROOM_DRAIN_TIMEOUT"},
		{nil, []string{"frobnicate"}, "unknown command"},
		{nil, []string{"token", "--role", "king", "--room", "r", "--user", "u"}, "role"},
		{nil, []string{"token", "--role", "host", "--user", "u"}, "room"},
		{nil, []string{"bench", "nothing"}, "nothing"},
		// A word left over (a name with a space not quoted, an unquoted * the shell
		// expanded) stopped the flags' parsing: those after it were dropped (here --ttl,
		// a token valid 24 h) and the command succeeded.
		{nil, []string{"token", "--role", "viewer", "--room", "shop1", "--user", "v1", "--name", "Ann", "Lee", "--ttl", "1h"}, `"Lee"`},
	} {
		_, stderr, code := run(tc.env, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q (want 2 and %q)", tc.env, tc.args, code, stderr, tc.want)
		}
	}
}

func TestParseDigits(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "42": 42, "1795677725123456789": 1795677725123456789, "9223372036854775799": 9223372036854775799} {
		if got, ok := parseDigits([]byte(in)); !ok || got != want {
			t.Errorf("%q: %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "12a", "-1", "99999999999999999999", "9223372036854775808"} {
		if _, ok := parseDigits([]byte(in)); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

// scanBench finds every benchmark message of a frame and its delay, and counts error
// events only in frames of no benchmark message.
func TestScanBench(t *testing.T) {
	var h benchDelays
	ms := int64(time.Millisecond)
	frame := []byte(`[{"type":"danmaku","seq":1,"at":3,"from":{"id":"u"},"text":"bench message 1","id":"b~3~1~1000000"},` +
		`{"type":"presence","at":4,"viewers":2},{"type":"danmaku","text":"a~b","id":"b~12~7~1600000"},{"type":"danmaku","id":"x~1~2~3"}]`)
	n, errs := scanBench(frame, 10*ms, &h)
	if n != 2 || errs != 0 || h.total.max.Load() != 9*ms {
		t.Fatalf("found %d messages (max delay %d), %d errors; want 2 (9 ms), 0", n, h.total.max.Load(), errs)
	}
	// The split (sampled: send times ≡ 0 mod 16, as both are here): the first was 2 ms to the room ("at"
	// 3 ms) and 7 ms from it; the second has no "at" of its own, so it is not in it.
	if h.toRoom.max.Load() != 2*ms || h.fromRoom.max.Load() != 7*ms || h.toRoom.quantile(0.99) != 2100*time.Microsecond {
		t.Fatalf("split: to room max %d, from room max %d", h.toRoom.max.Load(), h.fromRoom.max.Load())
	}
	if n, errs := scanBench([]byte(`[{"type":"error","code":"rate_limited"},{"type":"error"}]`), 0, &h); n != 0 || errs != 2 {
		t.Fatalf("error frame: %d messages, %d errors", n, errs)
	}
}

// bench chat against a real server: every message sent reaches every connection,
// read by the generator's own receivers (epoll on Linux), welcome included.
func TestBenchChatCountsEveryDelivery(t *testing.T) {
	const secret = "bench-test-secret-0123456789abcdef0123"
	srv := startServe(t, t.TempDir(), "serve", "--secret", secret, "--chat-conns-per-addr", "0")
	u, err := url.Parse(srv.links["player"])
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "bench", "chat", "--url", "http://"+u.Host, "--room", "benchtest",
		"--conns", "40", "--senders", "4", "--rate", "40", "--duration", "2s", "--settle", "500ms", "--drain", "1s", "--secret", secret).CombinedOutput()
	if err != nil {
		t.Fatalf("bench chat: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`deliveries (\d+) of (\d+) expected: .*; lost (-?\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no deliveries line:\n%s", out)
	}
	if string(m[1]) != string(m[2]) || string(m[3]) != "0" || string(m[1]) == "0" {
		t.Fatalf("deliveries %s of %s, lost %s:\n%s", m[1], m[2], m[3], out)
	}
	if !regexp.MustCompile(`fan-out delay: p50 [0-9.]+[µm]?s`).Match(out) {
		t.Fatalf("no delays measured:\n%s", out)
	}
}

// bench media against a real serve: every viewer connects, sees a keyframe, goes light,
// and nothing is lost on loopback.
func TestBenchMediaAgainstServe(t *testing.T) {
	const secret = "bench-test-secret-0123456789abcdef0123"
	srv := startServe(t, t.TempDir(), "serve", "--secret", secret)
	u, err := url.Parse(srv.links["player"])
	if err != nil {
		t.Fatal(err)
	}
	tok, err := exec.Command(binary, "token", "--secret", secret, "--role", "host", "--room", "benchtest", "--user", "host").Output()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + u.Host
	// Linux: the viewers' sockets take the relay's segmented sends whole, unless told
	// not to (--no-gro)
	for _, noGRO := range []bool{false, true} {
		args := []string{"bench", "media", "--whip", base + "/whip/benchtest", "--whep", base + "/whep/benchtest",
			"--viewers", "5", "--bitrate", "500k", "--duration", "3s", "--token", strings.TrimSpace(string(tok))}
		gro := "5"
		if noGRO {
			args = append(args, "--no-gro")
		}
		if noGRO || runtime.GOOS != "linux" {
			gro = "0"
		}
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("bench media: %v\n%s", err, out)
		}
		for _, want := range []string{
			`viewers: +5 \(5 connected, 5 counting from RTP headers, ` + gro + ` of them taking segmented sends whole\)`,
			`packets delivered/s: +[1-9][0-9]* total`,
			`loss \(sequence gaps\): +0\.0000%`,
			`\(5 of 5 viewers saw one;`,
		} {
			if !regexp.MustCompile(want).Match(out) {
				t.Errorf("no-gro %v: no %q in:\n%s", noGRO, want, out)
			}
		}
	}
}
