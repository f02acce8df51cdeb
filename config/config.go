package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/liveroom/liveroom/chat"
	"github.com/liveroom/liveroom/media"
	"github.com/liveroom/liveroom/rules"
	"github.com/liveroom/liveroom/segment"
	"github.com/liveroom/liveroom/setting"
)

// ErrInvalid is returned (wrapped) for every bad setting; the command exits 2 on it.
var ErrInvalid = setting.ErrInvalid

// EnvPrefix starts every environment variable that sets a flag.
const EnvPrefix = "LIVEROOM_"

// Config is every setting of `liveroom serve`. Its parts are inlined so each flag's
// YAML key is the flag name.
type Config struct {
	Core    `yaml:",inline"`
	Chat    chat.Config    `yaml:",inline"`
	Media   media.Config   `yaml:",inline"`
	Segment segment.Config `yaml:",inline"`
	Rules   rules.Config   `yaml:",inline"`

	// File is the --config path the settings were read from (not itself a YAML key).
	File string `yaml:"-"`
}

// Default returns the embedded default configuration.
func Default() Config {
	return Config{
		Core:    DefaultCore(),
		Chat:    chat.DefaultConfig(),
		Media:   media.DefaultConfig(),
		Segment: segment.DefaultConfig(),
		Rules:   rules.DefaultConfig(),
	}
}

// FlagSet returns a flag set bound to c, with --config, for parsing and for --help.
func (c *Config) FlagSet(name string, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&c.File, "config", c.File, "YAML file with settings (keys are the flag names; unknown keys are refused)")
	c.Core.RegisterFlags(fs)
	c.Chat.RegisterFlags(fs)
	c.Media.RegisterFlags(fs)
	c.Segment.RegisterFlags(fs)
	c.Rules.RegisterFlags(fs)
	return fs
}

// Validate checks every part.
func (c *Config) Validate() error {
	for _, v := range []interface{ Validate() error }{&c.Core, &c.Chat, &c.Media, &c.Segment, &c.Rules} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	// A gift's value is kept in the segment's base currency: a gift whose currency
	// has no rate would count for nothing in every viewer's gift value.
	for _, g := range c.Chat.Gifts {
		if !c.Segment.Converts(g.Currency) {
			return setting.Invalid("chat-gifts", g.ID+": "+g.Currency, "the base currency ("+c.Segment.Currency+") or one with a rate in currency-rates")
		}
	}
	return nil
}

// Load builds the configuration from defaults, the YAML file named by --config, the
// environment (lookup, usually os.LookupEnv) and args, in that order of precedence
// (later wins), then validates it. It returns flag.ErrHelp for -h/--help.
func Load(args []string, lookup func(string) (string, bool), output io.Writer) (Config, error) {
	// First pass: only to find --config and to report flag syntax errors early.
	scratch := Default()
	sfs := scratch.FlagSet("liveroom serve", io.Discard)
	if err := sfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if sfs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected argument %q", ErrInvalid, sfs.Arg(0))
	}
	file := scratch.File
	if file == "" {
		if v, ok := lookup(EnvName("config")); ok {
			file = v
		}
	}

	cfg := Default()
	if file != "" {
		if err := cfg.loadFile(file); err != nil {
			return Config{}, err
		}
		cfg.File = file
	}
	fs := cfg.FlagSet("liveroom serve", output)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil || f.Name == "config" {
			return
		}
		if v, ok := lookup(EnvName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%w: %s (from %s): %q: %v", ErrInvalid, f.Name, EnvName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return Config{}, envErr
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	cfg.File = file
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return cfg, nil
}

// EnvName is the environment variable for a flag: LIVEROOM_ + upper case, dashes to underscores.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *Config) loadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: config: %v", ErrInvalid, err)
	}
	return c.decodeYAML(b, path)
}

// decodeYAML applies a YAML document over c, refusing unknown keys.
func (c *Config) decodeYAML(b []byte, name string) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: config file %s: %s", ErrInvalid, name, nameKeys(b, err))
	}
	return nil
}

var lineRef = regexp.MustCompile(`line (\d+): `)

// nameKeys adds the key to yaml's "line N: cannot unmarshal ..." messages, which only
// give the line, so every error names the setting it is about: the top-level key
// whose entry holds line N (a list's or a map's items span the lines below their key).
func nameKeys(doc []byte, err error) string {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return err.Error()
	}
	type keyAt struct {
		line int
		key  string
	}
	var keys []keyAt // in the document's order
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys = append(keys, keyAt{m.Content[i].Line, m.Content[i].Value})
	}
	return lineRef.ReplaceAllStringFunc(err.Error(), func(ref string) string {
		line, _ := strconv.Atoi(lineRef.FindStringSubmatch(ref)[1])
		key := ""
		for _, k := range keys {
			if k.line <= line {
				key = k.key
			}
		}
		if key != "" {
			return ref + "key " + key + ": "
		}
		return ref
	})
}

// Usage prints the flags with their environment variables.
func Usage(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		def := ""
		if f.DefValue != "" && f.DefValue != "[]" && f.DefValue != "0" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%s\n      %s%s\n      env %s\n", f.Name, f.Usage, def, EnvName(f.Name))
	})
}
