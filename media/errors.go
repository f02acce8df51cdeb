package media

import (
	"errors"

	"github.com/liveroom/liveroom/problem"
)

// Sentinel errors. The exported problem errors below wrap them so the gateway can map
// each to its status while callers still test with errors.Is.
var (
	ErrBadSDP       = errors.New("bad SDP offer")
	ErrBadFrag      = errors.New("bad trickle-ice-sdpfrag")
	ErrNotLive      = errors.New("room is not live")
	ErrLive         = errors.New("room already has a publisher")
	ErrNoSession    = errors.New("no such session")
	ErrNotYours     = errors.New("session belongs to another user")
	ErrNoCodec      = errors.New("no codec in common")
	ErrClosed       = errors.New("media service closed")
	ErrTrackTooMany = errors.New("too many tracks")
	ErrNoMedia      = errors.New("no audio or video section")
	ErrStaleETag    = errors.New("If-Match is not the session's entity tag")
)

func badSDP(err error) error {
	return problem.Wrap(problem.BadRequest, err, "the SDP offer cannot be used").WithCode("bad_sdp")
}

func noCommonCodec(msg string) error {
	return problem.Wrap(problem.BadRequest, ErrNoCodec, msg).WithCode("no_common_codec")
}

func staleETag() error {
	return problem.Wrap(problem.PreconditionFailed, ErrStaleETag, "precondition failed (an ICE restart renews the session's entity tag)").WithCode("etag_mismatch")
}

func notLive(room string) error {
	return problem.Wrap(problem.NotFound, ErrNotLive, "room "+room+" is not live").WithCode("room_not_live")
}

func alreadyLive(room string) error {
	return problem.Wrap(problem.Conflict, ErrLive, "room "+room+" already has a publisher").WithCode("already_live")
}

func noSession() error {
	return problem.Wrap(problem.NotFound, ErrNoSession, "no such session").WithCode("no_session")
}

func notYours() error {
	return problem.Wrap(problem.Forbidden, ErrNotYours, "this session belongs to another user")
}

func closed() error {
	return problem.Wrap(problem.Unavailable, ErrClosed, "media is shutting down").WithCode("draining")
}
