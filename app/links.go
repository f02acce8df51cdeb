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
	r := url.PathEscape(room)
	return Links{
		Studio:    base + "/studio/" + r + q(host),
		Player:    base + "/r/" + r,
		Console:   base + "/console" + q(agent),
		Dashboard: base + "/dashboard" + q(admin),
	}, nil
}

// Print writes the links for a person to open.
func (l Links) Print(w io.Writer, ttl time.Duration) {
	fmt.Fprintf(w, "\nliveroom is up. Open (tokens valid for %s):\n", ttl)
	fmt.Fprintf(w, "  studio (host):      %s\n", l.Studio)
	fmt.Fprintf(w, "  player (viewer):    %s\n", l.Player)
	fmt.Fprintf(w, "  console (agent):    %s\n", l.Console)
	fmt.Fprintf(w, "  dashboard (admin):  %s\n\n", l.Dashboard)
}
