package segment

import (
	"flag"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/liveroom/liveroom/setting"
)

// Config holds the segmentation settings. Start from DefaultConfig; every threshold of
// the tag rules is here (see docs/segmentation.md for what each one decides).
type Config struct {
	// StayThreshold is the watch time in the current live after which a viewer with no
	// order is put in front of an agent.
	StayThreshold time.Duration `yaml:"stay-threshold"`
	// ShopSecret verifies Shopify webhooks (X-Shopify-Hmac-Sha256).
	ShopSecret string `yaml:"shop-secret"`

	// Currency is the base currency spend is kept in (ISO 4217 code).
	Currency string `yaml:"currency"`
	// Rates converts other currencies: how many base units one unit of the currency is
	// worth, as a decimal string (YAML only), e.g. {EUR: "1.08"}.
	Rates map[string]string `yaml:"currency-rates"`

	// SweepInterval is how often time-driven tags (dormant, churned, windows sliding)
	// and the RFM quintiles are recomputed for every profile.
	SweepInterval time.Duration `yaml:"segment-sweep"`
	// FlushInterval is how often profiles changed by live events are written through
	// to the store, in one batch. Imports are written before they are acknowledged.
	FlushInterval time.Duration `yaml:"segment-flush"`
	// JournalMiB is the size past which a journal file of write-throughs is folded into
	// the store file (docs/operations.md).
	JournalMiB int `yaml:"segment-journal-mib"`
	// PresenceTimeout closes a watch or chat presence that saw no event for this long
	// (a client that vanished without a leave); the time is counted up to its last event.
	PresenceTimeout time.Duration `yaml:"presence-timeout"`
	// Shards is how many independently locked parts the profiles are split into.
	Shards int `yaml:"segment-shards"`

	// Activity: high needs HighSessions live sessions in ActivityDays, an average
	// watch of HighAvgWatch per session and HighInteractions interactions; medium needs
	// MediumSessions sessions or any interaction; low one visit.
	ActivityDays     int           `yaml:"activity-days"`
	HighSessions     int           `yaml:"high-sessions"`
	HighAvgWatch     time.Duration `yaml:"high-avg-watch"`
	HighInteractions int           `yaml:"high-interactions"`
	MediumSessions   int           `yaml:"medium-sessions"`
	// DormantDays and ChurnedDays: no visit (watch or order) for more than this many
	// days makes a viewer dormant, then churned (activity and lifecycle).
	DormantDays int `yaml:"dormant-days"`
	ChurnedDays int `yaml:"churned-days"`
	// OrderDays is the order window of RFM and of the repeat/loyal lifecycle tags;
	// RepeatOrders and LoyalOrders are the order counts in it for repeat and loyal.
	OrderDays    int `yaml:"order-days"`
	RepeatOrders int `yaml:"repeat-orders"`
	LoyalOrders  int `yaml:"loyal-orders"`
	// PreferenceDays is the window of purchases and product clicks behind the top
	// categories; TopCategories how many are tagged.
	PreferenceDays int `yaml:"preference-days"`
	TopCategories  int `yaml:"top-categories"`
}

// DefaultConfig returns the segmentation defaults.
func DefaultConfig() Config {
	return Config{
		StayThreshold:    5 * time.Minute,
		Currency:         "USD",
		Rates:            map[string]string{},
		SweepInterval:    time.Minute,
		FlushInterval:    time.Second,
		JournalMiB:       JournalLimit >> 20,
		PresenceTimeout:  2 * time.Hour,
		Shards:           64,
		ActivityDays:     30,
		HighSessions:     4,
		HighAvgWatch:     10 * time.Minute,
		HighInteractions: 5,
		MediumSessions:   2,
		DormantDays:      30,
		ChurnedDays:      90,
		OrderDays:        365,
		RepeatOrders:     2,
		LoyalOrders:      4,
		PreferenceDays:   90,
		TopCategories:    3,
	}
}

// RegisterFlags binds the segmentation flags to c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.StayThreshold, "stay-threshold", c.StayThreshold, "watch time in the current live before a non-buyer is prompted to an agent")
	fs.StringVar(&c.ShopSecret, "shop-secret", c.ShopSecret, "Shopify webhook signing secret (orders/create)")
	fs.StringVar(&c.Currency, "currency", c.Currency, "base currency of spend figures (rates to it in currency-rates, YAML)")
	fs.DurationVar(&c.SweepInterval, "segment-sweep", c.SweepInterval, "how often time-driven tags and RFM are recomputed")
	fs.DurationVar(&c.FlushInterval, "segment-flush", c.FlushInterval, "how often live profile changes are written to the store")
	fs.IntVar(&c.JournalMiB, "segment-journal-mib", c.JournalMiB, "size in MiB past which the write-through journal is folded into the store file")
	fs.DurationVar(&c.PresenceTimeout, "presence-timeout", c.PresenceTimeout, "a watch or chat presence with no event for this long is closed")
	fs.IntVar(&c.Shards, "segment-shards", c.Shards, "independently locked parts of the profile table")
	fs.IntVar(&c.ActivityDays, "activity-days", c.ActivityDays, "window of the activity tag, days")
	fs.IntVar(&c.HighSessions, "high-sessions", c.HighSessions, "live sessions in the activity window for activity=high")
	fs.DurationVar(&c.HighAvgWatch, "high-avg-watch", c.HighAvgWatch, "average watch per session for activity=high")
	fs.IntVar(&c.HighInteractions, "high-interactions", c.HighInteractions, "interactions in the activity window for activity=high")
	fs.IntVar(&c.MediumSessions, "medium-sessions", c.MediumSessions, "live sessions in the activity window for activity=medium")
	fs.IntVar(&c.DormantDays, "dormant-days", c.DormantDays, "days without a visit after which a viewer is dormant")
	fs.IntVar(&c.ChurnedDays, "churned-days", c.ChurnedDays, "days without a visit after which a viewer is churned")
	fs.IntVar(&c.OrderDays, "order-days", c.OrderDays, "order window of RFM and the repeat/loyal tags, days")
	fs.IntVar(&c.RepeatOrders, "repeat-orders", c.RepeatOrders, "orders in the order window for lifecycle=repeat")
	fs.IntVar(&c.LoyalOrders, "loyal-orders", c.LoyalOrders, "orders in the order window for lifecycle=loyal")
	fs.IntVar(&c.PreferenceDays, "preference-days", c.PreferenceDays, "window of clicks and purchases behind the preference tags, days")
	fs.IntVar(&c.TopCategories, "top-categories", c.TopCategories, "how many top categories the preference tag lists")
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate checks c.
func (c *Config) Validate() error {
	if err := setting.InRange("stay-threshold", c.StayThreshold, time.Second, 24*time.Hour); err != nil {
		return err
	}
	if !currencyCode.MatchString(c.Currency) {
		return setting.Invalid("currency", c.Currency, "a three-letter upper-case ISO 4217 code such as USD")
	}
	for _, code := range sortedKeys(c.Rates) {
		if !currencyCode.MatchString(code) {
			return setting.Invalid("currency-rates", code, "keys that are three-letter upper-case currency codes")
		}
		if r, err := ParseMoney(c.Rates[code]); err != nil || r <= 0 {
			return setting.Invalid("currency-rates", code+": "+c.Rates[code], "a positive decimal string with at most 6 decimals, e.g. \"1.08\"")
		}
	}
	for _, d := range []struct {
		key      string
		v        time.Duration
		min, max time.Duration
	}{
		{"segment-sweep", c.SweepInterval, time.Second, 24 * time.Hour},
		{"segment-flush", c.FlushInterval, 10 * time.Millisecond, time.Minute},
		{"presence-timeout", c.PresenceTimeout, time.Minute, 48 * time.Hour},
		{"high-avg-watch", c.HighAvgWatch, 0, 24 * time.Hour},
	} {
		if err := setting.InRange(d.key, d.v, d.min, d.max); err != nil {
			return err
		}
	}
	for _, n := range []struct {
		key      string
		v        int
		min, max int
	}{
		{"segment-shards", c.Shards, 1, 4096},
		{"segment-journal-mib", c.JournalMiB, 1, 65536},
		{"activity-days", c.ActivityDays, 1, 365},
		{"high-sessions", c.HighSessions, 1, 1000},
		{"high-interactions", c.HighInteractions, 0, 1_000_000},
		{"medium-sessions", c.MediumSessions, 1, 1000},
		{"dormant-days", c.DormantDays, 1, 3650},
		{"churned-days", c.ChurnedDays, c.DormantDays + 1, 3650},
		{"order-days", c.OrderDays, 1, 3650},
		{"repeat-orders", c.RepeatOrders, 2, 1000},
		{"loyal-orders", c.LoyalOrders, c.RepeatOrders + 1, 1000},
		{"preference-days", c.PreferenceDays, 1, 3650},
		{"top-categories", c.TopCategories, 0, 50},
	} {
		if n.v < n.min || n.v > n.max {
			return setting.Invalid(n.key, fmt.Sprint(n.v), fmt.Sprintf("a whole number from %d to %d", n.min, n.max))
		}
	}
	return nil
}

// Converts reports whether an amount in currency can be kept in the base currency:
// it is the base, or has a rate.
func (c *Config) Converts(currency string) bool {
	_, ok := c.rates()[strings.ToUpper(currency)]
	return ok
}

// rates parses the configured rates once; the base currency maps to 1.
func (c *Config) rates() map[string]Money {
	out := map[string]Money{c.Currency: moneyScale}
	for code, s := range c.Rates {
		if r, err := ParseMoney(s); err == nil {
			out[strings.ToUpper(code)] = r
		}
	}
	return out
}

// sortedKeys returns m's keys in order, so errors name the same key every run.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
