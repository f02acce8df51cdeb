package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/liveroom/liveroom/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testConfig(t testing.TB) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP = "127.0.0.1:0"
	cfg.Media.WebRTCUDP = "127.0.0.1:0"
	cfg.Media.WebRTCTCP = "127.0.0.1:0"
	cfg.Media.RTSP = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.DrainTimeout = 5 * time.Second
	return cfg
}

// startApp builds and starts a node for cfg, stopped when the test ends; it returns the
// node and its base URL.
func startApp(t testing.TB, cfg config.Config) (*App, string) {
	t.Helper()
	a := runningApp(t, cfg)
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return a, a.BaseURL()
}

// runningApp starts an App on cfg; the test stops it.
func runningApp(t testing.TB, cfg config.Config) *App {
	t.Helper()
	a, err := New(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	return a
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	s1, gen, err := LoadSecret("", dir)
	if err != nil || !gen || len(s1) < 32 {
		t.Fatalf("first: %q %v %v", s1, gen, err)
	}
	s2, gen, err := LoadSecret("", dir)
	if err != nil || gen || s2 != s1 {
		t.Fatalf("second: kept=%v gen=%v err=%v", s2 == s1, gen, err)
	}
	if s, _, _ := LoadSecret("explicit-secret-explicit-secret-xx", dir); s != "explicit-secret-explicit-secret-xx" {
		t.Fatal("explicit secret ignored")
	}
	// Concurrent first starts agree on one secret.
	dir2 := t.TempDir()
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() { got[i], _, _ = LoadSecret("", dir2) })
	}
	wg.Wait()
	for _, s := range got {
		if s != got[0] || s == "" {
			t.Fatalf("racing starts disagree: %q", got)
		}
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, SecretFile), []byte("short"), 0o600)
	if _, _, err := LoadSecret("", bad); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("short secret file: %v", err)
	}
}

// readSignal is a request body that calls read at its first Read.
type readSignal struct {
	io.ReadCloser
	read func()
}

func (r readSignal) Read(b []byte) (int, error) {
	r.read()
	return r.ReadCloser.Read(b)
}

// TestDrainWaitsForWorkInFlight: a request that started before the stop finishes and is
// answered; readiness is false meanwhile; new requests are refused; no goroutine leaks.
func TestDrainWaitsForWorkInFlight(t *testing.T) {
	a, err := New(testConfig(t), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	// The drain must start only once the slow request is in its handler, reading its
	// body: a request the server has begun to read but not yet let in is refused by the
	// drain (503 draining), as it should be, and the test would only show that.
	inside := make(chan struct{})
	var once sync.Once
	h := a.http.Handler
	a.http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/rooms/demo/guest" {
			r.Body = readSignal{r.Body, func() { once.Do(func() { close(inside) }) }}
		}
		h.ServeHTTP(w, r)
	})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + a.Addr().String()
	waitFor(t, func() bool { return httpStatus(base+"/healthz") == 200 })
	pr, pw := io.Pipe()
	slow := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/api/rooms/demo/guest", pr)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		slow <- res
	}()
	pw.Write([]byte(`{"name":`))
	<-inside // the request is now in flight, past the drain's door

	stopped := make(chan error, 1)
	go func() { stopped <- a.Shutdown(context.Background()) }()
	waitFor(t, func() bool { return a.gw.Draining() })
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned with a request in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	pw.Write([]byte(`"Zoe"}`))
	pw.Close()
	res := <-slow
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("in-flight request: %v", res)
	}
	res.Body.Close()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestDrainGraceKeepsAnswering: during --drain-grace the port stays open and /readyz
// answers 503 "draining" (a load balancer sees the node leave), new sessions are
// refused with 503 draining, and only then does the node stop.
func TestDrainGraceKeepsAnswering(t *testing.T) {
	cfg := testConfig(t)
	cfg.DrainGrace = 2 * time.Second
	a := runningApp(t, cfg)
	base := "http://" + a.Addr().String()
	stopped := make(chan error, 1)
	go func() { stopped <- a.Shutdown(context.Background()) }()
	waitFor(t, func() bool { return a.gw.Draining() })
	if got := httpStatus(base + "/readyz"); got != 503 {
		t.Errorf("/readyz during the grace period: %d, want 503", got)
	}
	res, err := http.Post(base+"/api/rooms/demo/guest", "application/json", strings.NewReader(`{"name":"Zoe"}`))
	if err != nil {
		t.Fatalf("a new request during the grace period: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || !strings.Contains(string(body), "draining") {
		t.Errorf("a new session during the grace period: %d %s", res.StatusCode, body)
	}
	select {
	case err := <-stopped:
		t.Fatalf("stopped within the grace period: %v", err)
	default:
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the port still answers after the drain")
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestDrainTimeoutCutsStragglers(t *testing.T) {
	cfg := testConfig(t)
	cfg.DrainTimeout = 300 * time.Millisecond
	a := runningApp(t, cfg)
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("POST", "http://"+a.Addr().String()+"/api/rooms/demo/guest", pr)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	pw.Write([]byte("{"))
	time.Sleep(100 * time.Millisecond)
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF) // the client gives up its upload too
	<-done
	http.DefaultClient.CloseIdleConnections()
}

func TestTLSWithOwnCertificate(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLSCert, cfg.TLSKey = selfSigned(t)
	a := runningApp(t, cfg)
	defer a.Shutdown(context.Background())
	if !strings.HasPrefix(a.BaseURL(), "https://127.0.0.1:") {
		t.Fatalf("base URL %s", a.BaseURL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	res, err := client.Get("https://" + a.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Strict-Transport-Security") == "" || res.TLS == nil {
		t.Fatalf("%d %v", res.StatusCode, res.Header)
	}
	bad := testConfig(t)
	bad.TLSCert, bad.TLSKey = filepath.Join(t.TempDir(), "none.pem"), filepath.Join(t.TempDir(), "none.key")
	b, err := New(bad, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil || !strings.Contains(err.Error(), "tls-cert") {
		t.Fatalf("missing cert file: %v", err)
	}
	b.stop(context.Background())
}

// TestACMEServesOnlyItsDomain: the automatic-certificate TLS config is wired and refuses
// names other than --acme-domain without asking any CA (no network here).
func TestACMEServesOnlyItsDomain(t *testing.T) {
	cfg := testConfig(t)
	cfg.ACMEDomain = "live.example.com"
	tc := ACMEConfig(cfg.Core)
	if tc.GetCertificate == nil || !containsProto(tc.NextProtos, "acme-tls/1") {
		t.Fatalf("not an ACME TLS config: %+v", tc.NextProtos)
	}
	_, err := tc.GetCertificate(&tls.ClientHelloInfo{ServerName: "evil.example.org"})
	if err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("other host: %v", err)
	}
}

func containsProto(list []string, p string) bool {
	for _, x := range list {
		if x == p {
			return true
		}
	}
	return false
}

func TestListenFailureIsClear(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.HTTP = ln.Addr().String()
	a, err := New(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err == nil || !strings.Contains(err.Error(), "--http") {
		t.Fatalf("busy port: %v", err)
	}
	a.stop(context.Background())
}

func httpStatus(u string) int {
	res, err := http.Get(u)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestReadyFollowsTheStores: /readyz is 200 with the stores open and 503 once one is
// closed under the node.
func TestReadyFollowsTheStores(t *testing.T) {
	a, base := startApp(t, testConfig(t))
	if code := httpStatus(base + "/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	// Stop the services (stores closed) while the HTTP side still answers.
	if err := a.stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := httpStatus(base + "/readyz"); code != 503 {
		t.Fatalf("readyz with the stores closed: %d", code)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestSecondNodeOnTheSameData: a second node started on a --data that a running one
// holds stops with an error that says so (chat's store, opened first, said only
// "timeout").
func TestSecondNodeOnTheSameData(t *testing.T) {
	cfg := testConfig(t)
	startApp(t, cfg)
	b, err := New(cfg, quietLog())
	if err == nil {
		b.Shutdown(context.Background())
		t.Fatal("a second node started on the same --data")
	}
	if !strings.Contains(err.Error(), "another liveroom") || !strings.Contains(err.Error(), cfg.Data) {
		t.Fatalf("the second node's error: %v", err)
	}
}
