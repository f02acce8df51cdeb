// Package shopify reads Shopify's orders/create webhook: it verifies the
// X-Shopify-Hmac-Sha256 signature over the raw body and decodes the order into an
// event.Event of type order. It knows no HTTP status codes (errors carry a
// problem.Kind) and stores nothing: the caller keeps the idempotency keys (the
// webhook id and the order id) and answers 2xx only once the order is durable.
//
// Shopify's webhook documentation:
// https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
package shopify
