package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretFile is where the embedded default keeps its generated signing secret.
const SecretFile = "secret"

// LoadSecret returns explicit when set; otherwise the secret kept in dataDir, generating
// and saving one (mode 0600) on first use so tokens survive restarts.
func LoadSecret(explicit, dataDir string) (secret string, generated bool, err error) {
	if explicit != "" {
		return explicit, false, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("create data folder: %w", err)
	}
	path := filepath.Join(dataDir, SecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return "", false, fmt.Errorf("%s holds a secret shorter than 32 bytes: delete it to generate a new one", path)
		}
		return s, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read secret: %w", err)
	}
	var raw [48]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	// Written whole to a temporary file, then linked into place: link fails if the
	// secret exists, so two processes starting at once agree on one secret, and neither
	// can read a half-written file.
	tmp, err := os.CreateTemp(dataDir, ".secret-*")
	if err != nil {
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	if _, err := tmp.WriteString(s + "\n"); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadSecret("", dataDir) // another process won: use its secret
		}
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	return s, true, nil
}
