package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/liveroom/liveroom/event"
)

// Sentinel errors. ErrInvalid and ErrExpired mean "who are you?" (401); ErrForbidden
// means "you may not" (403).
var (
	ErrInvalid   = errors.New("token invalid")
	ErrExpired   = errors.New("token expired")
	ErrForbidden = errors.New("token does not grant this")
	ErrNotGuest  = errors.New("not a guest token")
)

// AnyRoom is the room claim that grants every room.
const AnyRoom = "*"

// GuestRenewWindow is how long after expiry a guest token can still be traded for a
// fresh one with the same viewer id (the contract's 90 days).
const GuestRenewWindow = 90 * 24 * time.Hour

// MaxUserLen is the longest user id (a token's sub), in bytes. Whatever names a user
// (chat's mute, ban and DM fields, the gateway's paths) takes ids up to it, so that
// every user a token admits can be moderated and written to.
const MaxUserLen = 128

// MinSecretLen is the shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
const MinSecretLen = 32

// Roles lists the valid role claims.
var Roles = []string{event.RoleHost, event.RoleViewer, event.RoleAgent, event.RoleAdmin}

// Claims are liveroom's JWT claims.
type Claims struct {
	Name  string `json:"name,omitempty"`
	Role  string `json:"role"`
	Room  string `json:"room"`
	Guest bool   `json:"guest,omitempty"`
	jwt.RegisteredClaims
}

// User is the identity the claims describe.
func (c *Claims) User() event.User {
	return event.User{ID: c.Subject, Name: c.Name, Role: c.Role}
}

// AllowsRoom reports whether the token is valid for room.
func (c *Claims) AllowsRoom(room string) bool { return c.Room == AnyRoom || c.Room == room }

// Signer issues and verifies tokens with one secret.
type Signer struct {
	secret []byte
	now    func() time.Time
}

// NewSigner returns a Signer for secret, which must be at least MinSecretLen bytes.
func NewSigner(secret string) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("secret must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	return &Signer{secret: []byte(secret), now: time.Now}, nil
}

// Spec is what a new token says.
type Spec struct {
	User  string
	Name  string
	Role  string
	Room  string
	TTL   time.Duration
	Guest bool
}

// Validate checks a Spec before signing.
func (s Spec) Validate() error {
	if !slices.Contains(Roles, s.Role) {
		return fmt.Errorf("role %q: must be one of %s", s.Role, strings.Join(Roles, ", "))
	}
	if err := ValidRoom(s.Room); err != nil && s.Room != AnyRoom {
		return err
	}
	if s.User == "" || len(s.User) > MaxUserLen {
		return fmt.Errorf("user %q: must be 1-%d bytes", s.User, MaxUserLen)
	}
	if err := validUser(s.User); err != nil {
		return fmt.Errorf("user %q: %w", s.User, err)
	}
	if s.TTL <= 0 {
		return fmt.Errorf("ttl %s: must be positive", s.TTL)
	}
	return nil
}

// Issue signs a token for spec.
func (s *Signer) Issue(spec Spec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	now := s.now()
	c := Claims{
		Name: spec.Name, Role: spec.Role, Room: spec.Room, Guest: spec.Guest,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   spec.User,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(spec.TTL)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.secret)
}

func (s *Signer) parse(raw string, opts ...jwt.ParserOption) (*Claims, error) {
	var c Claims
	opts = append(opts,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithTimeFunc(s.now),
	)
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return s.secret, nil }, opts...)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return &c, fmt.Errorf("%w: %v", ErrExpired, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !slices.Contains(Roles, c.Role) || c.Subject == "" || c.Room == "" {
		return nil, fmt.Errorf("%w: missing or unknown sub, role or room", ErrInvalid)
	}
	if len(c.Subject) > MaxUserLen { // signed elsewhere with our secret, but no user we can serve
		return nil, fmt.Errorf("%w: sub longer than %d bytes", ErrInvalid, MaxUserLen)
	}
	if err := validUser(c.Subject); err != nil {
		return nil, fmt.Errorf("%w: sub %w", ErrInvalid, err)
	}
	return &c, nil
}

// validUser refuses a user id that is not UTF-8 or holds a control character: stores
// key a user's records by its id and a NUL after it, so "v1\x00x" would read as v1's.
func validUser(id string) error {
	if !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return errors.New("must be UTF-8 without control characters")
	}
	return nil
}

// Verify checks signature, algorithm (HS256 only) and expiry, and returns the claims.
func (s *Signer) Verify(raw string) (*Claims, error) {
	return s.parse(raw, jwt.WithExpirationRequired())
}

// Authorize verifies raw and checks that it grants room (unless room is empty) to one
// of roles (any role when roles is empty).
func (s *Signer) Authorize(raw, room string, roles ...string) (*Claims, error) {
	c, err := s.Verify(raw)
	if err != nil {
		return nil, err
	}
	if room != "" && !c.AllowsRoom(room) {
		return nil, fmt.Errorf("%w: token is for room %q", ErrForbidden, c.Room)
	}
	if len(roles) > 0 && !slices.Contains(roles, c.Role) {
		return nil, fmt.Errorf("%w: role %q may not do this (needs %s)", ErrForbidden, c.Role, strings.Join(roles, " or "))
	}
	return c, nil
}

// VerifyGuestForRenewal accepts a correctly signed guest token that is unexpired or
// expired for less than GuestRenewWindow, so a returning player keeps its viewer id.
func (s *Signer) VerifyGuestForRenewal(raw string) (*Claims, error) {
	c, err := s.parse(raw, jwt.WithoutClaimsValidation())
	if err != nil {
		return nil, err
	}
	if !c.Guest || c.Role != event.RoleViewer {
		return nil, ErrNotGuest
	}
	if c.ExpiresAt == nil {
		return nil, fmt.Errorf("%w: no exp", ErrInvalid)
	}
	if s.now().Sub(c.ExpiresAt.Time) > GuestRenewWindow {
		return nil, fmt.Errorf("%w: guest token expired more than %s ago", ErrExpired, GuestRenewWindow)
	}
	return c, nil
}

// NewViewerID returns a random, URL-safe guest viewer id ("g_" + 16 random bytes).
func NewViewerID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "g_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidRoom checks a room id: 1-64 characters of [A-Za-z0-9_-].
func ValidRoom(room string) error {
	if room == "" || len(room) > 64 {
		return fmt.Errorf("room %q: must be 1-64 characters", room)
	}
	for _, r := range room {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("room %q: only letters, digits, '-' and '_' are allowed", room)
		}
	}
	return nil
}
