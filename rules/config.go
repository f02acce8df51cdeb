package rules

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/liveroom/liveroom/setting"
)

// Config holds the rules engine's settings. Start from DefaultConfig; the zero value of
// a field is not a usable default.
type Config struct {
	// WebhookSecret keys the X-Liveroom-Signature of webhook actions; set it whenever
	// a rule has a webhook (empty signs with an empty key, which proves nothing).
	WebhookSecret string `yaml:"rules-webhook-secret"`
	// WebhookTimeout bounds one delivery attempt.
	WebhookTimeout time.Duration `yaml:"rules-webhook-timeout"`
	// WebhookAttempts is how many times a delivery is tried before it is given up.
	WebhookAttempts int `yaml:"rules-webhook-attempts"`
	// WebhookBackoff is the first retry's upper bound; each retry doubles it (full
	// jitter), up to WebhookMaxBackoff.
	WebhookBackoff    time.Duration `yaml:"rules-webhook-backoff"`
	WebhookMaxBackoff time.Duration `yaml:"rules-webhook-max-backoff"`
	// WebhookWorkers deliver webhooks; WebhookQueue deliveries wait at most, then new
	// ones are dropped and counted.
	WebhookWorkers int `yaml:"rules-webhook-workers"`
	WebhookQueue   int `yaml:"rules-webhook-queue"`
	// WebhookAllowPrivate lets webhook actions reach loopback and private addresses
	// (an in-house CRM on the LAN); off, only public addresses are dialled.
	WebhookAllowPrivate bool `yaml:"rules-webhook-allow-private"`
	// Tick is the timer wheel's resolution: a stay prompt fires at most one tick late.
	// The loop wakes every tick while a timer is due within half a turn (4,096 ticks):
	// at 5 ms, 200 wake-ups a second of a few microseconds each.
	Tick time.Duration `yaml:"rules-timer-tick"`
	// Workers run fired timers (state writes, prompt delivery) in parallel. A few per
	// core: with 64 runnable in a burst of stay prompts, a worker holding a lock was
	// often descheduled while the others queued behind it (five 10,000-prompt bursts:
	// 18.6 s of worker time waiting on mutexes with 64 workers, 2.2 s with 8).
	Workers int `yaml:"rules-workers"`
	// StayPrepare is how long before a stay threshold its firing is made ready (the
	// viewer's snapshot read, the condition evaluated, the prompt rendered), so that at
	// the threshold only the commit and the delivery remain: ten thousand thresholds
	// falling due at once then cost much less work at that instant. Anything that
	// happens to the viewer in between (an event, an order, a leave, an erasure, a new
	// rule set) drops the ready firing, and it is made afresh at the threshold. 0 makes
	// every firing at its threshold.
	StayPrepare time.Duration `yaml:"rules-stay-prepare"`
	// FlushEvery is the write-behind interval of the bbolt state (OpenBolt); 0 writes
	// every firing through before it is sent.
	FlushEvery time.Duration `yaml:"rules-flush-every"`
	// PruneEvery is how often the limit counters that no rule needs any more are
	// dropped (a rule without a cap whose cooldown has passed); 0 never.
	PruneEvery time.Duration `yaml:"rules-prune-every"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{WebhookTimeout: 10 * time.Second, WebhookAttempts: 6,
		WebhookBackoff: time.Second, WebhookMaxBackoff: 5 * time.Minute,
		WebhookWorkers: 4, WebhookQueue: 1000, Tick: 5 * time.Millisecond, Workers: 8,
		StayPrepare: time.Second, FlushEvery: 50 * time.Millisecond, PruneEvery: time.Hour}
}

// RegisterFlags binds the flags to c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.WebhookSecret, "rules-webhook-secret", c.WebhookSecret, "HMAC-SHA256 key signing rules' webhook actions (X-Liveroom-Signature)")
	fs.DurationVar(&c.WebhookTimeout, "rules-webhook-timeout", c.WebhookTimeout, "time limit of one webhook delivery attempt")
	fs.IntVar(&c.WebhookAttempts, "rules-webhook-attempts", c.WebhookAttempts, "attempts per webhook delivery before it is given up")
	fs.DurationVar(&c.WebhookBackoff, "rules-webhook-backoff", c.WebhookBackoff, "first webhook retry delay bound (doubles per retry, full jitter)")
	fs.DurationVar(&c.WebhookMaxBackoff, "rules-webhook-max-backoff", c.WebhookMaxBackoff, "largest webhook retry delay")
	fs.IntVar(&c.WebhookWorkers, "rules-webhook-workers", c.WebhookWorkers, "webhook deliveries in parallel")
	fs.IntVar(&c.WebhookQueue, "rules-webhook-queue", c.WebhookQueue, "webhook deliveries waiting at most (then dropped and counted)")
	fs.BoolVar(&c.WebhookAllowPrivate, "rules-webhook-allow-private", c.WebhookAllowPrivate, "let webhook actions reach loopback and private-network addresses (off: public addresses only, no redirects)")
	fs.DurationVar(&c.Tick, "rules-timer-tick", c.Tick, "timer wheel resolution (stay prompts fire at most this late)")
	fs.IntVar(&c.Workers, "rules-workers", c.Workers, "fired timers handled in parallel")
	fs.DurationVar(&c.StayPrepare, "rules-stay-prepare", c.StayPrepare, "make a stay prompt ready this long before its threshold and send it at the threshold (0: make it at the threshold)")
	fs.DurationVar(&c.FlushEvery, "rules-flush-every", c.FlushEvery, "write-behind interval of the rules state file (0: write each firing through)")
	fs.DurationVar(&c.PruneEvery, "rules-prune-every", c.PruneEvery, "how often limit counters no rule needs any more are dropped (0: never)")
}

// Validate checks c.
func (c *Config) Validate() error {
	checks := []error{
		setting.InRange("rules-webhook-timeout", c.WebhookTimeout, 100*time.Millisecond, 5*time.Minute),
		setting.InRange("rules-webhook-backoff", c.WebhookBackoff, time.Millisecond, time.Hour),
		setting.InRange("rules-webhook-max-backoff", c.WebhookMaxBackoff, c.WebhookBackoff, 24*time.Hour),
		setting.InRange("rules-timer-tick", c.Tick, time.Millisecond, time.Second),
		setting.InRange("rules-stay-prepare", c.StayPrepare, 0, time.Minute),
		setting.InRange("rules-flush-every", c.FlushEvery, 0, 10*time.Second),
		setting.InRange("rules-prune-every", c.PruneEvery, 0, 30*24*time.Hour),
		intRange("rules-webhook-attempts", c.WebhookAttempts, 1, 20),
		intRange("rules-webhook-workers", c.WebhookWorkers, 1, 256),
		intRange("rules-webhook-queue", c.WebhookQueue, 1, 1_000_000),
		intRange("rules-workers", c.Workers, 1, 1024),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

func intRange(key string, v, lo, hi int) error {
	if v < lo || v > hi {
		return setting.Invalid(key, strconv.Itoa(v), fmt.Sprintf("from %d to %d", lo, hi))
	}
	return nil
}
