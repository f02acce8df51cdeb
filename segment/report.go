package segment

import (
	"context"
	"encoding/csv"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liveroom/liveroom/problem"
)

// SegmentCounts is GET /api/segments: viewers per tag on each dimension.
type SegmentCounts struct {
	Viewers    int                       `json:"viewers"`
	Dimensions map[string]map[string]int `json:"dimensions"`
}

// Segments counts the viewers holding each tag (every fixed word is listed, with 0).
func (e *Engine) Segments(ctx context.Context) SegmentCounts {
	out := SegmentCounts{Dimensions: map[string]map[string]int{}}
	for _, d := range Dimensions {
		out.Dimensions[d] = map[string]int{}
		for _, w := range TagWords[d] {
			out.Dimensions[d][w] = 0
		}
	}
	for _, sh := range e.shards {
		sh.mu.Lock()
		for p := range sh.profiles.all() {
			out.Viewers++
			out.Dimensions[DimActivity][p.Tags.Activity.String()]++
			out.Dimensions[DimValue][p.Tags.Value.String()]++
			out.Dimensions[DimLifecycle][p.Tags.Lifecycle.String()]++
			for _, w := range p.Tags.Preference.get() {
				out.Dimensions[DimPreference][w]++
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// Member is one row of a segment's member list.
type Member struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Since        time.Time `json:"since"`
	Sessions     int       `json:"sessions"`
	WatchSeconds int64     `json:"watch_seconds"`
	Orders       int       `json:"orders"`
	Spend        Money     `json:"spend"`
	LastSeen     time.Time `json:"last_seen"`
}

// MemberPage is one page of members, in id order; Next is the cursor of the next page.
type MemberPage struct {
	Dimension string   `json:"dimension"`
	Tag       string   `json:"tag"`
	Total     int      `json:"total"`
	Members   []Member `json:"members"`
	Next      string   `json:"next,omitempty"`
}

// MaxPage is the largest page of members.
const MaxPage = 1000

// checkTag refuses an unknown dimension or a word the dimension never uses.
func checkTag(dim, tag string) (int, error) {
	i := slices.Index(Dimensions, dim)
	if i < 0 {
		return 0, problem.New(problem.BadRequest, "unknown dimension %s: one of activity, value, lifecycle, preference", quote(dim))
	}
	if dim != DimPreference && !slices.Contains(TagWords[dim], tag) {
		return 0, problem.New(problem.BadRequest, "unknown %s tag %s: one of %v", dim, quote(tag), TagWords[dim])
	}
	if tag == "" {
		return 0, problem.New(problem.BadRequest, "a tag is required")
	}
	return i, nil
}

// holds tells whether p holds tag on dimension dim (in the order of Dimensions).
func holds(p *Profile, dim int, tag string) bool {
	if dim < 3 {
		return p.Tags.word(dim).String() == tag
	}
	return slices.Contains(p.Tags.Preference.get(), tag)
}

func member(p *Profile, dim int) Member {
	return Member{ID: p.ID, Name: p.Name, Since: msTime(p.Tags.Since[dim]), Sessions: int(p.Sessions), WatchSeconds: p.WatchMs / 1000,
		Orders: int(p.Orders), Spend: p.Spend, LastSeen: msTime(p.LastSeen)}
}

// memberIDs lists the ids holding tag, sorted.
func (e *Engine) memberIDs(dim int, tag string) []string {
	var ids []string
	for _, sh := range e.shards {
		sh.mu.Lock()
		for p := range sh.profiles.all() {
			if holds(p, dim, tag) {
				ids = append(ids, p.ID)
			}
		}
		sh.mu.Unlock()
	}
	slices.Sort(ids)
	return ids
}

// Members returns up to limit members of a tag with ids after the cursor after.
func (e *Engine) Members(ctx context.Context, dim, tag, after string, limit int) (MemberPage, error) {
	d, err := checkTag(dim, tag)
	if err != nil {
		return MemberPage{}, err
	}
	if limit < 1 || limit > MaxPage {
		return MemberPage{}, problem.New(problem.BadRequest, "limit must be from 1 to %d", MaxPage)
	}
	ids := e.memberIDs(d, tag)
	page := MemberPage{Dimension: dim, Tag: tag, Total: len(ids), Members: []Member{}}
	start, _ := slices.BinarySearch(ids, after)
	if after != "" && start < len(ids) && ids[start] == after {
		start++
	}
	for i, id := range ids[start:] {
		if m, ok := e.member(id, d, tag); ok {
			page.Members = append(page.Members, m)
		}
		if len(page.Members) == limit {
			if start+i+1 < len(ids) { // no next page after the last member
				page.Next = id
			}
			break
		}
	}
	return page, nil
}

func (e *Engine) member(id string, dim int, tag string) (Member, bool) {
	sh := e.shardOf(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := sh.profiles.get(id)
	if p == nil || !holds(p, dim, tag) {
		return Member{}, false // changed since listed
	}
	return member(p, dim), true
}

// MembersCSV streams every member of a tag as CSV, a row at a time.
func (e *Engine) MembersCSV(ctx context.Context, dim, tag string, w io.Writer) error {
	d, err := checkTag(dim, tag)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id", "name", "since", "sessions", "watch_seconds", "orders", "spend", "last_seen"}); err != nil {
		return err
	}
	for i, id := range e.memberIDs(d, tag) {
		if i%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		m, ok := e.member(id, d, tag)
		if !ok {
			continue
		}
		row := []string{cell(m.ID), cell(m.Name), m.Since.Format(time.RFC3339), strconv.Itoa(m.Sessions), strconv.FormatInt(m.WatchSeconds, 10),
			strconv.Itoa(m.Orders), m.Spend.String(), m.LastSeen.Format(time.RFC3339)}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// cell guards a text cell against formula injection: a spreadsheet runs a cell that
// starts with = + - @ (or a tab or carriage return before one) as a formula, and names
// come from viewers. Such a cell gets a leading apostrophe (OWASP's advice), which
// spreadsheets show as text.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Funnel counts viewers at each step from watching to buying again.
type Funnel struct {
	Viewers    int `json:"viewers"`
	Engaged    int `json:"engaged"`
	FirstOrder int `json:"first_order"`
	Repeat     int `json:"repeat"`
}

// Analytics is GET /api/analytics. DMConversion stays null until rules (prompts) exist.
type Analytics struct {
	Room          string   `json:"room,omitempty"`
	Repurchase30d *float64 `json:"repurchase_30d"`
	FirstBuyers   int      `json:"first_buyers_30d_old"`
	Repurchasers  int      `json:"repurchased_within_30d"`
	DormantShare  *float64 `json:"dormant_share"`
	Dormant       int      `json:"dormant_or_churned"`
	Funnel        Funnel   `json:"funnel"`
	DMConversion  *float64 `json:"dm_conversion"`
}

// Analytics computes the figures over every profile (of those seen in room, when set).
// A share with nothing to divide by is null.
func (e *Engine) Analytics(ctx context.Context, room string) Analytics {
	now := e.now().UnixMilli()
	month := 30 * dayMs
	a := Analytics{Room: room}
	for _, sh := range e.shards {
		sh.mu.Lock()
		for p := range sh.profiles.all() {
			if room != "" && !p.inRoom(room) {
				continue
			}
			a.Funnel.Viewers++
			if p.Interactions > 0 {
				a.Funnel.Engaged++
			}
			if p.Orders >= 1 {
				a.Funnel.FirstOrder++
			}
			if p.Orders >= 2 {
				a.Funnel.Repeat++
			}
			if w := p.Tags.Activity.String(); w == Dormant || w == Churned {
				a.Dormant++
			}
			if p.FirstOrder != 0 && now-p.FirstOrder >= month {
				a.FirstBuyers++
				if p.SecondOrder != 0 && p.SecondOrder-p.FirstOrder <= month {
					a.Repurchasers++
				}
			}
		}
		sh.mu.Unlock()
	}
	a.Repurchase30d = share(a.Repurchasers, a.FirstBuyers)
	a.DormantShare = share(a.Dormant, a.Funnel.Viewers)
	return a
}

func share(n, of int) *float64 {
	if of == 0 {
		return nil
	}
	v := float64(n) / float64(of)
	return &v
}
