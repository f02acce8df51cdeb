package chat

import (
	"flag"
	"time"

	"github.com/liveroom/liveroom/setting"
)

// Config holds chat's settings. Zero values are not meaningful: start from DefaultConfig.
type Config struct {
	// FlushInterval is how often queued events are batched into one frame per connection.
	FlushInterval time.Duration `yaml:"chat-flush"`
}

// DefaultConfig returns chat's defaults.
func DefaultConfig() Config {
	return Config{FlushInterval: 50 * time.Millisecond}
}

// RegisterFlags binds chat's flags to c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.FlushInterval, "chat-flush", c.FlushInterval, "how often chat events are batched into one WebSocket frame")
}

// Validate checks c.
func (c *Config) Validate() error {
	return setting.InRange("chat-flush", c.FlushInterval, 5*time.Millisecond, time.Second)
}
