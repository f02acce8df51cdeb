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
	// O_EXCL: two processes starting at once must not overwrite each other's secret.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadSecret("", dataDir)
		}
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("write secret: %w", err)
	}
	return s, true, nil
}
