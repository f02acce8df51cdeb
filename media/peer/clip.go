package peer

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Clip is media ready to packetize: H.264 access units (Annex-B, SPS/PPS with each
// IDR) at FPS, and 20 ms Opus packets.
type Clip struct {
	Video [][]byte
	FPS   int
	Audio [][]byte
}

//go:embed testdata/clip.h264
var clipH264 []byte

//go:embed testdata/clip.ogg
var clipOgg []byte

// DefaultClip is a small embedded clip: 2 s of 320x240 at 30 fps, baseline H.264
// without B-frames, a keyframe every second, and a 440 Hz Opus tone.
func DefaultClip() (*Clip, error) { return ParseClip(clipH264, clipOgg, 30) }

// EncodeClip encodes a clip with ffmpeg: a 1280x720 test pattern at 30 fps and the
// given video bitrate (bits/s), baseline H.264, no B-frames, keyframe every 2 s.
func EncodeClip(ctx context.Context, bitrate int, seconds int) (*Clip, error) {
	return EncodeClipSize(ctx, 1280, 720, bitrate, seconds)
}

// EncodeClipSize is EncodeClip at another picture size (a simulcast layer's, say).
func EncodeClipSize(ctx context.Context, width, height, bitrate int, seconds int) (*Clip, error) {
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, fmt.Errorf("ffmpeg is needed to encode a clip: %w", err)
	}
	dir, err := os.MkdirTemp("", "liveroom-clip")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	v, a := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.ogg")
	br := fmt.Sprint(bitrate)
	cmd := exec.CommandContext(ctx, ff, "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30:duration=%d", width, height, seconds),
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000:duration=%d", seconds),
		"-map", "0:v", "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "60", "-bf", "0",
		"-b:v", br, "-maxrate", br, "-bufsize", br, "-x264-params", "nal-hrd=cbr:slices=1", "-bsf:v", "h264_mp4toannexb", "-f", "h264", v,
		"-map", "1:a", "-c:a", "libopus", "-b:a", "48k", "-page_duration", "20000", a)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, out)
	}
	vb, err := os.ReadFile(v)
	if err != nil {
		return nil, err
	}
	ab, err := os.ReadFile(a)
	if err != nil {
		return nil, err
	}
	return ParseClip(vb, ab, 30)
}

// ParseClip groups an Annex-B stream into access units (parameter sets travel with
// the next slice) and reads the Opus packets of an Ogg file.
func ParseClip(h264 []byte, ogg []byte, fps int) (*Clip, error) {
	c := &Clip{FPS: fps}
	r, err := h264reader.NewReader(bytes.NewReader(h264))
	if err != nil {
		return nil, err
	}
	var au []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		if t := nal.UnitType; t == h264reader.NalUnitTypeCodedSliceNonIdr || t == h264reader.NalUnitTypeCodedSliceIdr {
			c.Video = append(c.Video, au)
			au = nil
		}
	}
	if len(c.Video) == 0 {
		return nil, errors.New("clip: no H.264 frames")
	}
	if len(ogg) > 0 {
		or, _, err := oggreader.NewWith(bytes.NewReader(ogg))
		if err != nil {
			return nil, err
		}
		for {
			page, hdr, err := or.ParseNextPage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			if hdr.GranulePosition == 0 { // OpusHead / OpusTags
				continue
			}
			c.Audio = append(c.Audio, page)
		}
	}
	return c, nil
}
