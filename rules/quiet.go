package rules

import (
	"strconv"
	"sync"
	"time"
	_ "time/tzdata" // viewers' zones must resolve even on a host without zoneinfo
)

// quiet is a compiled daily window in minutes of the local day, [start, end).
type quiet struct {
	start, end int
	drop       bool
}

var zones sync.Map // IANA name → *time.Location

// location resolves a viewer's zone; an empty or unknown name is UTC.
func location(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil || len(name) > 64 {
		loc = time.UTC
	} else {
		zones.Store(name, loc)
	}
	return loc
}

// until reports whether now falls in the window in zone, and if so when it ends.
func (q *quiet) until(now time.Time, zone string) (time.Time, bool) {
	if q == nil {
		return time.Time{}, false
	}
	local := now.In(location(zone))
	m := local.Hour()*60 + local.Minute()
	in := q.start <= m && m < q.end
	if q.start > q.end { // wraps past midnight
		in = m >= q.start || m < q.end
	}
	if !in {
		return time.Time{}, false
	}
	y, mo, d := local.Date()
	end := time.Date(y, mo, d, q.end/60, q.end%60, 0, 0, local.Location())
	if !end.After(local) {
		end = time.Date(y, mo, d+1, q.end/60, q.end%60, 0, 0, local.Location())
	}
	return end, true
}

func quote(s string) string { return strconv.Quote(s) }
