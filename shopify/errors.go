package shopify

import (
	"errors"

	"github.com/liveroom/liveroom/problem"
)

var (
	// ErrSignature: the signature is missing or wrong (problem.Unauthorized → 401).
	ErrSignature = errors.New("bad or missing Shopify signature")
	// ErrPayload: the body is not a usable orders/create payload (problem.BadRequest).
	ErrPayload = errors.New("bad Shopify order payload")
)

func badSignature(msg string) error {
	return &problem.Error{Kind: problem.Unauthorized, Code: "bad_signature", Message: msg, Err: ErrSignature}
}

func badPayload(msg string) error {
	return &problem.Error{Kind: problem.BadRequest, Message: msg, Err: ErrPayload}
}
