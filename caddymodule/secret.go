package caddymodule

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddyserver/caddy/v2"
)

// Where the generated session secret is kept in Caddy's storage, and the name of the lock taken
// while creating it.
const (
	secretStorageKey = "magic_link/session_secret"
	secretLockName   = "magic_link_session_secret"
)

// generatedSecretSize is the number of random bytes in a generated session secret.
const generatedSecretSize = 32

// sessionSecrets returns the session secrets, the one that seals first: the configured secret and
// the previous ones with their placeholders expanded or, when none is configured, the one kept in
// Caddy's storage.
func (m *MagicLink) sessionSecrets(ctx caddy.Context) ([][]byte, error) {
	if m.SessionSecret == "" {
		secret, err := storedSessionSecret(ctx, ctx.Storage(), m.logger)
		return [][]byte{secret}, err
	}
	secrets := make([][]byte, 0, 1+len(m.PreviousSessionSecrets))
	for _, configured := range append([]string{m.SessionSecret}, m.PreviousSessionSecrets...) {
		secret, err := expandSecret(configured)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, secret)
	}
	return secrets, nil
}

// expandSecret expands the placeholders of a configured session secret and checks its length.
func expandSecret(secret string) ([]byte, error) {
	if strings.Contains(secret, "{") {
		var err error
		secret, err = caddy.NewReplacer().ReplaceOrErr(secret, true, true)
		if err != nil {
			return nil, errors.New("session_secret: a placeholder in it is unknown or expands to nothing: check the environment variable or file it names")
		}
	}
	if len(secret) < minSessionSecret {
		return nil, fmt.Errorf("session_secret: %d bytes is too short; use at least %d (for example the output of: openssl rand -base64 32)", len(secret), minSessionSecret)
	}
	return []byte(secret), nil
}

// storedSessionSecret loads the session secret from storage, generating and storing it first when
// storage has none. The secret is the text of a base64url encoding of 32 random bytes, so it can
// also be copied into session_secret.
func storedSessionSecret(ctx caddy.Context, storage certmagic.Storage, logger *zap.Logger) ([]byte, error) {
	secret, err := loadSecret(ctx, storage)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}

	if err := storage.Lock(ctx, secretLockName); err != nil {
		return nil, fmt.Errorf("session secret: locking storage: %w", err)
	}
	defer func() {
		if err := storage.Unlock(ctx, secretLockName); err != nil {
			logger.Error("unlocking storage after creating the session secret", zap.Error(err))
		}
	}()

	secret, err = loadSecret(ctx, storage)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	raw := make([]byte, generatedSecretSize)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("session secret: %w", err)
	}
	secret = []byte(base64.RawURLEncoding.EncodeToString(raw))
	if err := storage.Store(ctx, secretStorageKey, secret); err != nil {
		return nil, fmt.Errorf("session secret: saving it in storage: %w", err)
	}
	logger.Info("generated a session secret and saved it in storage; set session_secret to choose one yourself",
		zap.String("storage_key", secretStorageKey))
	return secret, nil
}

// loadSecret reads the stored session secret. It returns an error wrapping fs.ErrNotExist when
// there is none.
func loadSecret(ctx caddy.Context, storage certmagic.Storage) ([]byte, error) {
	secret, err := storage.Load(ctx, secretStorageKey)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("session secret: reading %s from storage: %w", secretStorageKey, err)
	}
	if len(secret) < minSessionSecret {
		return nil, fmt.Errorf("session secret: the one in storage at %s is too short (%d bytes): delete it to have a new one generated", secretStorageKey, len(secret))
	}
	return secret, nil
}
