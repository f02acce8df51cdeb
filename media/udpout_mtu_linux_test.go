//go:build linux

package media

import (
	"os"
	"os/exec"
	"testing"

	"github.com/pion/rtp"
)

// A run whose segments do not fit the route's MTU (a path MTU learned for one viewer,
// a tunnel) is refused by the kernel as a whole. Its datagrams must then go one by
// one (the kernel fragments them, as it did pion's writes) and segmentation must stay
// on for everyone else. The test runs itself again in a network namespace whose
// loopback MTU is 1280 (as root; unshare and ip from util-linux and iproute2).
func TestUDPBatchRunAboveRouteMTU(t *testing.T) {
	if os.Getenv("LIVEROOM_TEST_NETNS") == "" {
		cmd := exec.Command("unshare", "-n", "sh", "-c", `ip link set lo mtu 1280 up && exec "$0" -test.run '^TestUDPBatchRunAboveRouteMTU$' -test.v`, os.Args[0])
		cmd.Env = append(os.Environ(), "LIVEROOM_TEST_NETNS=1")
		out, err := cmd.CombinedOutput()
		if err != nil && os.Getuid() != 0 && os.Getenv("LIVEROOM_REQUIRE_ALL") != "1" {
			t.Skipf("needs root for a network namespace: %v\n%s", err, out)
		}
		if err != nil {
			t.Fatalf("in a network namespace: %v\n%s", err, out)
		}
		return
	}
	r := newDirectRig(t)
	var a viewerCounters
	for i := range 4 {
		hdr := rtp.Header{Version: 2, SSRC: 2, SequenceNumber: uint16(i)}
		if err := r.q.add(r.o, &a, &hdr, make([]byte, 1300)); err != nil {
			t.Fatal(err)
		}
	}
	r.q.flush()
	got := r.receive(t, 4) // fragmented on the way, reassembled, decrypted
	for i, p := range got {
		if p.SequenceNumber != uint16(i) || len(p.Payload) != 1300 {
			t.Fatalf("datagram %d: seq %d, %d bytes", i, p.SequenceNumber, len(p.Payload))
		}
	}
	if a.sent.Load() != 4 || a.dropped.Load() != 0 {
		t.Fatalf("sent %d dropped %d, want 4 and 0", a.sent.Load(), a.dropped.Load())
	}
	if r.out.sys.noGSO.Load() {
		t.Fatal("one route's MTU turned segmentation off for the whole socket")
	}
	// small packets still leave as one run on the same socket
	w := r.out.writes.Load()
	r.sendFrame(&a, &rtp.Header{Version: 2, SSRC: 2, SequenceNumber: 100}, make([]byte, 500), 4)
	if r.out.writes.Load()-w != 1 {
		t.Fatalf("%d writes for a run of 4 small packets", r.out.writes.Load()-w)
	}
}
