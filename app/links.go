package app

import (
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/liveroom/liveroom/event"
	"github.com/liveroom/liveroom/token"
)

// Links are the ready-to-open pages printed at start-up.
type Links struct {
	Studio, Player, Console, Dashboard string
}

// DemoLinks signs tokens for the demo room and builds the four page links.
func DemoLinks(s *token.Signer, base, room string, ttl time.Duration) (Links, error) {
	issue := func(role, user, name, r string) (string, error) {
		return s.Issue(token.Spec{User: user, Name: name, Role: role, Room: r, TTL: ttl})
	}
	host, err := issue(event.RoleHost, "host", "Host", room)
	if err != nil {
		return Links{}, err
	}
	agent, err := issue(event.RoleAgent, "agent", "Agent", token.AnyRoom)
	if err != nil {
		return Links{}, err
	}
	admin, err := issue(event.RoleAdmin, "admin", "Admin", token.AnyRoom)
	if err != nil {
		return Links{}, err
	}
	q := func(t string) string { return "?token=" + url.QueryEscape(t) }
	l := PageLinks(base, room)
	l.Studio += q(host)
	l.Console += q(agent)
	l.Dashboard += q(admin)
	return l, nil
}

// PageLinks are the four pages' links with no tokens.
func PageLinks(base, room string) Links {
	r := url.PathEscape(room)
	return Links{Studio: base + "/studio/" + r, Player: base + "/r/" + r, Console: base + "/console", Dashboard: base + "/dashboard"}
}

// Print writes the links for a person to open.
func (l Links) Print(w io.Writer, ttl time.Duration) {
	fmt.Fprintf(w, "\nliveroom is up. Open (tokens valid for %s):\n", ttl)
	l.list(w)
}

// PrintWithoutTokens writes links with no tokens, and how to make them.
func (l Links) PrintWithoutTokens(w io.Writer) {
	fmt.Fprintf(w, "\nliveroom is up. Pages (add ?token= from `liveroom token --role ROLE --room ROOM --user ID`;\n"+
		"no tokens are printed with an operator's secret, since logs would keep them):\n")
	l.list(w)
}

func (l Links) list(w io.Writer) {
	fmt.Fprintf(w, "  studio (host):      %s\n", l.Studio)
	fmt.Fprintf(w, "  player (viewer):    %s\n", l.Player)
	fmt.Fprintf(w, "  console (agent):    %s\n", l.Console)
	fmt.Fprintf(w, "  dashboard (admin):  %s\n\n", l.Dashboard)
}
