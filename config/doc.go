// Package config assembles liveroom's settings: defaults, then a YAML file (--config,
// unknown keys refused), then LIVEROOM_* environment variables, then flags, then
// validation. Every flag's YAML key is the flag's name; each package (chat, media,
// segment) owns its own settings and registers its own flags.
package config
