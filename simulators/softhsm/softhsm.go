// Package softhsm provisions SoftHSM2 tokens in a directory of their own, for
// egate demo and for tests. A SoftHSM2 library reads its configuration from
// the SOFTHSM2_CONF environment variable when the module is initialised, so a
// process uses one configuration (one token directory) at a time; that
// directory may hold many tokens.
//
// Nothing here talks PKCS#11: tokens are created with softhsm2-util, the
// reference tool that ships with SoftHSM2, so what egate finds on a token was
// made by an independent program.
package softhsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNotInstalled reports that SoftHSM2 (its library or softhsm2-util) is not on
// this machine.
var ErrNotInstalled = errors.New("SoftHSM2 is not installed (Debian: apt-get install softhsm2)")

// ModuleCandidates are the places Debian and other distributions put the library.
var ModuleCandidates = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// ModulePath returns the path of the SoftHSM2 PKCS#11 library.
func ModulePath() (string, error) {
	if p := os.Getenv("EGATE_SOFTHSM_MODULE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("EGATE_SOFTHSM_MODULE=%q: %w", p, err)
		}
		return p, nil
	}
	for _, p := range ModuleCandidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Dir is a SoftHSM2 configuration and token directory.
type Dir struct {
	Root     string // the directory given to New
	ConfPath string // Root/softhsm2.conf, the value for SOFTHSM2_CONF
	TokenDir string // Root/tokens
	Module   string // the PKCS#11 library
}

// New makes (or reuses) a SoftHSM2 configuration under root. It does not
// change the process environment; see Dir.Activate.
func New(root string) (*Dir, error) {
	mod, err := ModulePath()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		return nil, ErrNotInstalled
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	d := &Dir{Root: root, ConfPath: filepath.Join(root, "softhsm2.conf"), TokenDir: filepath.Join(root, "tokens"), Module: mod}
	if err := os.MkdirAll(d.TokenDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating SoftHSM token directory: %w", err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\nslots.mechanisms = ALL\nlibrary.reset_on_fork = false\n", d.TokenDir)
	if err := os.WriteFile(d.ConfPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("writing SoftHSM config: %w", err)
	}
	return d, nil
}

// Activate points this process's SoftHSM2 library at the directory. It must be
// called before the module is first loaded (C_Initialize reads it).
func (d *Dir) Activate() error { return os.Setenv("SOFTHSM2_CONF", d.ConfPath) }

// Env returns the environment entry that points a child process (pkcs11-tool,
// softhsm2-util, another egate) at this directory.
func (d *Dir) Env() string { return "SOFTHSM2_CONF=" + d.ConfPath }

// Token describes an initialised token.
type Token struct {
	Label string
	Slot  uint // the slot id SoftHSM assigned (it changes when tokens are added)
}

// InitToken creates a token with the given label and PINs unless one with that
// label exists already, in which case it is reused (the PINs are not checked).
// It reports whether the token was created.
func (d *Dir) InitToken(ctx context.Context, label, soPIN, userPIN string) (Token, bool, error) {
	if label == "" || len(label) > 32 {
		return Token{}, false, fmt.Errorf("token label %q: must be 1 to 32 characters", label)
	}
	toks, err := d.Tokens(ctx)
	if err != nil {
		return Token{}, false, err
	}
	for _, t := range toks {
		if t.Label == label {
			return t, false, nil
		}
	}
	// PINs go through the environment-free stdin-less flags of softhsm2-util;
	// they are visible to root on this machine's process list for the instant
	// the tool runs, which is acceptable for a simulator and never used for a
	// production HSM.
	cmd := exec.CommandContext(ctx, "softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", soPIN, "--pin", userPIN)
	cmd.Env = append(os.Environ(), d.Env())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Token{}, false, fmt.Errorf("softhsm2-util --init-token %q: %w: %s", label, err, strings.TrimSpace(redact(out.String(), soPIN, userPIN)))
	}
	toks, err = d.Tokens(ctx)
	if err != nil {
		return Token{}, false, err
	}
	for _, t := range toks {
		if t.Label == label {
			return t, true, nil
		}
	}
	return Token{}, false, fmt.Errorf("token %q not found after softhsm2-util created it", label)
}

// Tokens lists the initialised tokens in the directory.
func (d *Dir) Tokens(ctx context.Context) ([]Token, error) {
	cmd := exec.CommandContext(ctx, "softhsm2-util", "--show-slots")
	cmd.Env = append(os.Environ(), d.Env())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("softhsm2-util --show-slots: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return parseSlots(string(out)), nil
}

// DeleteToken removes a token by label.
func (d *Dir) DeleteToken(ctx context.Context, label string) error {
	cmd := exec.CommandContext(ctx, "softhsm2-util", "--delete-token", "--token", label)
	cmd.Env = append(os.Environ(), d.Env())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("softhsm2-util --delete-token %q: %w: %s", label, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func parseSlots(out string) []Token {
	var toks []Token
	var slot uint
	var haveSlot, initialised bool
	for _, line := range strings.Split(out, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(l, "Slot ") && !strings.HasPrefix(l, "Slot info"):
			_, err := fmt.Sscanf(l, "Slot %d", &slot)
			haveSlot = err == nil
			initialised = false
		case strings.HasPrefix(l, "Initialized:"):
			initialised = strings.Contains(l, "yes")
		case strings.HasPrefix(l, "Label:") && haveSlot && initialised:
			label := strings.TrimSpace(strings.TrimPrefix(l, "Label:"))
			if label != "" {
				toks = append(toks, Token{Label: label, Slot: slot})
			}
		}
	}
	return toks
}

func redact(s string, secrets ...string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "****")
		}
	}
	return s
}
