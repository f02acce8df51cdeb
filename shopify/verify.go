package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// Headers Shopify sends with every webhook.
const (
	HMACHeader      = "X-Shopify-Hmac-Sha256"
	WebhookIDHeader = "X-Shopify-Webhook-Id"
	TopicHeader     = "X-Shopify-Topic"
	ShopHeader      = "X-Shopify-Shop-Domain"
)

// Verify checks header (base64 of the HMAC-SHA256 of the raw body keyed with the
// shop's secret) in constant time. An empty secret verifies nothing: every request
// is refused until one is configured.
func Verify(secret, body []byte, header string) error {
	if len(secret) == 0 {
		return badSignature("no shop secret is configured")
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return badSignature("missing " + HMACHeader)
	}
	got, err := base64.StdEncoding.DecodeString(header)
	if err != nil || len(got) != sha256.Size {
		return badSignature(HMACHeader + " is not a base64 SHA-256 HMAC")
	}
	if !hmac.Equal(got, Sign(secret, body)) {
		return badSignature(HMACHeader + " does not match the body")
	}
	return nil
}

// Sign is the raw HMAC a correct header carries (base64-encoded), for tests and
// load generators.
func Sign(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// Header is Sign encoded as Shopify sends it.
func Header(secret, body []byte) string {
	return base64.StdEncoding.EncodeToString(Sign(secret, body))
}
