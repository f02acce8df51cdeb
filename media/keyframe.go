package media

import "strings"

// Codec families the relay understands for keyframe detection.
const (
	codecOther = iota
	codecH264
	codecVP8
)

func codecFamily(mime string) int {
	switch {
	case strings.EqualFold(mime, "video/H264"):
		return codecH264
	case strings.EqualFold(mime, "video/VP8"):
		return codecVP8
	}
	return codecOther
}

// IsKeyframe reports whether an RTP payload of codec mime (video/H264, video/VP8)
// starts or carries a keyframe.
func IsKeyframe(mime string, payload []byte) bool {
	return isKeyframe(codecFamily(mime), payload)
}

// isKeyframe reports whether an RTP payload starts or carries a keyframe.
func isKeyframe(family int, p []byte) bool {
	switch family {
	case codecH264:
		return h264Keyframe(p)
	case codecVP8:
		return vp8Keyframe(p)
	}
	return false
}

// h264Keyframe finds an IDR slice or SPS in a single NAL, STAP-A or the first FU-A
// fragment (RFC 6184 §5.6–5.8).
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; {
	case t == 5 || t == 7:
		return true
	case t == 24: // STAP-A: 16-bit size, then a NAL
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if i+2 >= len(p) || size == 0 {
				return false
			}
			if nt := p[i+2] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += 2 + size
		}
	case t == 28: // FU-A: start bit and the fragmented NAL's type
		return len(p) >= 2 && p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}

// vp8Keyframe reads the payload descriptor (RFC 7741 §4.2) and the first byte of the
// frame header: P bit 0 on the first partition's start means a keyframe.
func vp8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	i := 1
	if x {
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L
			i++
		}
		if ext&0x30 != 0 { // T or K
			i++
		}
	}
	return s && pid == 0 && len(p) > i && p[i]&0x01 == 0
}

// videoSize reads the picture size from a keyframe's payload when the codec carries
// it there: VP8's keyframe header, or the SPS of H.264 (single NAL or STAP-A).
func videoSize(family int, p []byte) (w, h int, ok bool) {
	switch family {
	case codecVP8:
		return vp8Size(p)
	case codecH264:
		if len(p) < 1 {
			return 0, 0, false
		}
		switch p[0] & 0x1f {
		case 7:
			return h264SPSSize(p)
		case 24:
			for i := 1; i+2 < len(p); {
				size := int(p[i])<<8 | int(p[i+1])
				if size == 0 || i+2+size > len(p) {
					return 0, 0, false
				}
				if p[i+2]&0x1f == 7 {
					return h264SPSSize(p[i+2 : i+2+size])
				}
				i += 2 + size
			}
		}
	}
	return 0, 0, false
}

func vp8Size(p []byte) (int, int, bool) {
	if !vp8Keyframe(p) {
		return 0, 0, false
	}
	i := 1
	if p[0]&0x80 != 0 {
		ext := p[1]
		i = 2
		if ext&0x80 != 0 {
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 {
			i++
		}
		if ext&0x30 != 0 {
			i++
		}
	}
	f := p[i:]
	// 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
	if len(f) < 10 || f[3] != 0x9d || f[4] != 0x01 || f[5] != 0x2a {
		return 0, 0, false
	}
	return int(f[6]) | int(f[7]&0x3f)<<8, int(f[8]) | int(f[9]&0x3f)<<8, true
}
