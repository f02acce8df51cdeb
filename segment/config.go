package segment

import (
	"flag"
	"time"

	"github.com/liveroom/liveroom/setting"
)

// Config holds the segmentation settings. Start from DefaultConfig.
type Config struct {
	// StayThreshold is the watch time in the current live after which a viewer with no
	// order is put in front of an agent.
	StayThreshold time.Duration `yaml:"stay-threshold"`
	// ShopSecret verifies Shopify webhooks (X-Shopify-Hmac-Sha256).
	ShopSecret string `yaml:"shop-secret"`
}

// DefaultConfig returns the segmentation defaults.
func DefaultConfig() Config {
	return Config{StayThreshold: 5 * time.Minute}
}

// RegisterFlags binds the segmentation flags to c.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.StayThreshold, "stay-threshold", c.StayThreshold, "watch time in the current live before a non-buyer is prompted to an agent")
	fs.StringVar(&c.ShopSecret, "shop-secret", c.ShopSecret, "Shopify webhook signing secret (orders/create)")
}

// Validate checks c.
func (c *Config) Validate() error {
	return setting.InRange("stay-threshold", c.StayThreshold, time.Second, 24*time.Hour)
}
