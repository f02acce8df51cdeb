package gateway

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/problem"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/shopify"
	"github.com/liveroom/liveroom/token"
)

// RulesService is what the gateway needs from the rules and the prompt queues (issue 6).
type RulesService interface {
	// RulesJSON is the rules in force; PutRules compiles data, makes it durable and
	// puts it in force, or leaves the old rules in force and says why.
	RulesJSON() []byte
	PutRules(ctx context.Context, data []byte) error
	Prompts(ctx context.Context, room string) ([]rules.Prompt, error)
	// Claim and Resolve run allow on the prompt's room before changing anything.
	Claim(ctx context.Context, id, agent string, allow func(room string) error) (rules.Prompt, error)
	Resolve(ctx context.Context, id, agent, outcome string, allow func(room string) error) (rules.Prompt, error)
}

// ViewerActions is the part that shows, per viewer, what the rules did and agents' notes,
// and takes consent and notes from agents.
type ViewerActions interface {
	Actions(ctx context.Context, viewer string) ([]rules.Action, error)
	SetConsent(ctx context.Context, viewer string, messages bool, by event.User) error
	AddNote(ctx context.Context, viewer string, by event.User, text string) error
	// SetTimeZone records the viewer's IANA time zone (from the player) for quiet hours.
	SetTimeZone(viewer string, zone *time.Location)
}

// OrderSink takes a verified shop order and answers only once it is durable.
type OrderSink interface {
	Order(ctx context.Context, ev event.Event) (duplicate bool, err error)
	Category(sku string) string
}

// TagTrends counts tag changes per day (the dashboard's "tag changes over time").
type TagTrends interface {
	TagChanges(days int) []DayChanges
}

// DayChanges is one UTC day of tag changes: how many viewers reached each
// "dimension:tag".
type DayChanges struct {
	Day     string         `json:"day"` // YYYY-MM-DD
	Changes map[string]int `json:"changes"`
}

// mountRules registers the rules, prompts, consent/notes and Shopify webhook routes.
func (s *Server) mountRules(mux *http.ServeMux) {
	if s.deps.Rules != nil {
		mux.HandleFunc("GET /api/rules", s.getRules)
		mux.HandleFunc("PUT /api/rules", s.putRules)
		mux.HandleFunc("GET /api/prompts", s.listPrompts)
		mux.HandleFunc("POST /api/prompts/{id}/claim", s.claimPrompt)
		mux.HandleFunc("POST /api/prompts/{id}/resolve", s.resolvePrompt)
	}
	if s.deps.Actions != nil {
		mux.HandleFunc("PUT /api/viewers/{id}/consent", s.setConsent)
		mux.HandleFunc("POST /api/viewers/{id}/notes", s.addNote)
		mux.HandleFunc("GET /api/viewers/{id}/actions", s.viewerActions)
		mux.HandleFunc("PUT /api/me/timezone", s.setTimeZone)
	}
	if s.deps.Trends != nil {
		mux.HandleFunc("GET /api/segments/changes", s.tagChanges)
	}
	if s.deps.Orders != nil {
		mux.HandleFunc("POST /webhooks/orders/shopify", s.shopifyOrder)
	}
}

func (s *Server) getRules(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Authorize(r, token.AnyRoom, false, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(s.deps.Rules.RulesJSON())
}

// putRules takes the whole rules document as JSON or YAML; a bad one gets 400 with
// every reason and the rules in force do not change.
func (s *Server) putRules(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Authorize(r, token.AnyRoom, false, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/json" && mt != "application/yaml" && mt != "application/x-yaml" && mt != "text/yaml" {
			writeError(w, r, problem.New(problem.UnsupportedType, "Content-Type must be application/json or application/yaml, not %q", ct))
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, rules.MaxDocumentBytes+1))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if len(body) > rules.MaxDocumentBytes {
		writeError(w, r, problem.New(problem.TooLarge, "a rules document is at most %d bytes", rules.MaxDocumentBytes))
		return
	}
	if err := s.deps.Rules.PutRules(r.Context(), body); err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(s.deps.Rules.RulesJSON())
}

func (s *Server) listPrompts(w http.ResponseWriter, r *http.Request) {
	room := r.URL.Query().Get("room")
	if err := token.ValidRoom(room); err != nil {
		writeError(w, r, problem.Wrap(problem.BadRequest, err, "?room= is required"))
		return
	}
	if _, err := s.Authorize(r, room, false, event.RoleAgent, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	list, err := s.deps.Rules.Prompts(r.Context(), room)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if list == nil {
		list = []rules.Prompt{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room, "prompts": list})
}

func (s *Server) claimPrompt(w http.ResponseWriter, r *http.Request) {
	s.promptAction(w, r, func(ctx context.Context, id string, c *token.Claims) (rules.Prompt, error) {
		return s.deps.Rules.Claim(ctx, id, c.Subject, roomCheck(c))
	})
}

func (s *Server) resolvePrompt(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Outcome string `json:"outcome"`
	}
	s.promptAction(w, r, func(ctx context.Context, id string, c *token.Claims) (rules.Prompt, error) {
		if r.ContentLength != 0 {
			if err := decodeJSON(r, &body); err != nil {
				return rules.Prompt{}, err
			}
		}
		if body.Outcome == "" {
			body.Outcome = "resolved" // the contract's bare POST
		}
		return s.deps.Rules.Resolve(ctx, id, c.Subject, body.Outcome, roomCheck(c))
	})
}

// promptAction checks the agent may act in the prompt's room before acting.
func (s *Server) promptAction(w http.ResponseWriter, r *http.Request, act func(context.Context, string, *token.Claims) (rules.Prompt, error)) {
	c, err := s.Authorize(r, "", false, event.RoleAgent, event.RoleAdmin)
	if err != nil {
		writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	if id == "" || len(id) > 128 {
		writeError(w, r, problem.New(problem.BadRequest, "bad prompt id"))
		return
	}
	p, err := act(r.Context(), id, c)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) setConsent(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Messages *bool `json:"messages"`
	}
	s.withViewer(w, r, []string{event.RoleAgent, event.RoleAdmin}, func(id string, by event.User) (any, error) {
		if err := decodeJSON(r, &body); err != nil {
			return nil, err
		}
		if body.Messages == nil {
			return nil, problem.New(problem.BadRequest, `body must be {"messages": true|false}`)
		}
		return nil, s.deps.Actions.SetConsent(r.Context(), id, *body.Messages, by)
	})
}

func (s *Server) addNote(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Text string `json:"text"`
	}
	s.withViewer(w, r, []string{event.RoleAgent, event.RoleAdmin}, func(id string, by event.User) (any, error) {
		if err := decodeJSON(r, &body); err != nil {
			return nil, err
		}
		body.Text = strings.TrimSpace(body.Text)
		if n := utf8.RuneCountInString(body.Text); n == 0 || n > 2000 {
			return nil, problem.New(problem.BadRequest, "text: 1-2000 characters")
		}
		return nil, s.deps.Actions.AddNote(r.Context(), id, by, body.Text)
	})
}

// setTimeZone takes the player's IANA zone ({"tz": "Asia/Shanghai"}) for its viewer.
func (s *Server) setTimeZone(w http.ResponseWriter, r *http.Request) {
	c, err := s.Authorize(r, "", false)
	if err != nil {
		writeError(w, r, err)
		return
	}
	var body struct {
		TZ string `json:"tz"`
	}
	if err := decodeJSON(r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	loc, err := time.LoadLocation(body.TZ)
	if err != nil || body.TZ == "" || body.TZ == "Local" || len(body.TZ) > 64 {
		writeError(w, r, problem.New(problem.BadRequest, "tz %q is not an IANA time zone name such as Asia/Shanghai", body.TZ))
		return
	}
	s.deps.Actions.SetTimeZone(c.Subject, loc)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) viewerActions(w http.ResponseWriter, r *http.Request) {
	s.withViewer(w, r, []string{event.RoleAgent, event.RoleAdmin}, func(id string, _ event.User) (any, error) {
		list, err := s.deps.Actions.Actions(r.Context(), id)
		if list == nil {
			list = []rules.Action{}
		}
		return map[string]any{"viewer": id, "actions": list}, err
	})
}

// shopifyOrder takes Shopify's orders/create webhook: the HMAC of the raw body must
// match --shop-secret (else 401 and nothing changes); the order is answered 200 only
// once it is durable, and a repeated delivery of the same order changes nothing.
func (s *Server) shopifyOrder(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, shopify.MaxBody+1))
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := shopify.Verify([]byte(s.shopSecret), body, r.Header.Get(shopify.HMACHeader)); err != nil {
		writeError(w, r, err)
		return
	}
	if topic := r.Header.Get(shopify.TopicHeader); topic != "" && topic != "orders/create" {
		writeJSON(w, http.StatusOK, map[string]any{"ignored": topic})
		return
	}
	o, err := shopify.DecodeOrder(body)
	if err != nil {
		writeError(w, r, err)
		return
	}
	ev := o.Event(s.deps.Orders.Category)
	ev.Received = time.Now().UTC() // a late delivery is still news (Shopify retries for two days)
	if id := r.Header.Get(shopify.WebhookIDHeader); id != "" && len(id) <= 128 {
		// Idempotent on the webhook id (the event id) and on the order id (segment
		// keeps each order id once), so a retried delivery and a replayed order both
		// change nothing.
		ev.ID, _ = shopify.Keys(id, o)
	}
	if ev.Viewer == "" && ev.Order.Customer != nil {
		if ev.Order.Customer.ID != "" {
			ev.Viewer = "customer:" + ev.Order.Customer.ID
		} else {
			ev.Viewer = "email:" + strings.ToLower(strings.TrimSpace(ev.Order.Customer.Email)) // as segment keys it
		}
	}
	if ev.Viewer == "" {
		// Not a live room's order (a sale at the till, a draft order): nothing to
		// attribute, and not an error. Shopify retries a delivery answered otherwise
		// and deletes a subscription whose deliveries keep failing.
		s.log.Info("shopify order ignored: no liveroom_viewer note attribute and no customer", "order", string(o.ID))
		writeJSON(w, http.StatusOK, map[string]any{"order": string(o.ID), "ignored": "no liveroom_viewer note attribute and no customer"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	dup, err := s.deps.Orders.Order(ctx, ev)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"order": string(o.ID), "viewer": ev.Viewer, "duplicate": dup})
}

// decodeJSON reads one JSON object from the body, refusing unknown fields.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem.Wrap(problem.BadRequest, err, "bad JSON body")
	}
	return nil
}

// roomCheck refuses, before anything changes, a prompt of a room the token does not grant.
func roomCheck(c *token.Claims) func(room string) error {
	return func(room string) error {
		if !c.AllowsRoom(room) {
			return problem.New(problem.Forbidden, "the prompt is for room %q", room)
		}
		return nil
	}
}

// tagChanges answers {"days":[{"day","changes":{"dimension:tag":n}}]} for ?days=N (1-30,
// default 14), oldest first.
func (s *Server) tagChanges(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Authorize(r, "", false, event.RoleAgent, event.RoleAdmin); err != nil {
		writeError(w, r, err)
		return
	}
	days := 14
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 30 {
			writeError(w, r, problem.New(problem.BadRequest, "days: a whole number from 1 to 30"))
			return
		}
		days = n
	}
	writeJSON(w, http.StatusOK, map[string]any{"days": s.deps.Trends.TagChanges(days)})
}
