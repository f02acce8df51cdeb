// Package token issues and verifies liveroom's signed access tokens: JWT, HS256, with
// the claims sub, name, role, room and exp (see docs/tokens.md). It knows nothing of
// HTTP; the gateway turns its errors into 401 and 403.
package token
