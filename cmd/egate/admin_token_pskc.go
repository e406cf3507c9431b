package main

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/devices/pkcs11uri"
	"github.com/egate-bank/egate/internal/store"
)

// tokenSubcommands are the subcommands of `egate admin token`. Another
// component adds its own from its own file, in init, with registerToken:
//
//	func init() { registerToken(newEnrollUShieldCmd) } // egate admin token enroll-ushield
//
// Registration is all those init functions do; the commands are built when
// the root command is.
var tokenSubcommands []func() *cobra.Command

func registerToken(f func() *cobra.Command) { tokenSubcommands = append(tokenSubcommands, f) }

func init() {
	registerAdmin(newTokenCmd)
	registerToken(newImportPSKCCmd)
	registerToken(newPSKCTransportKeyCmd)
}

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "customer tokens: import dynamic-password tokens (PSKC), enroll U-shields"}
	for _, f := range tokenSubcommands {
		cmd.AddCommand(f())
	}
	return cmd
}

// dbConfig reads --db: a postgres:// URL or a SQLite file path.
func dbConfig(dsn string) store.Config {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return store.Config{Driver: store.Postgres, DSN: dsn}
	}
	return store.Config{Driver: store.SQLite, DSN: dsn}
}

// pskcOptions reads the key or password flags; secrets come from files or
// the environment, never from the command line (--key-hex is for test keys).
func pskcOptions(keyHex, keyFile, passwordSource string) (pskc.Options, error) {
	var o pskc.Options
	n := 0
	for _, s := range []string{keyHex, keyFile, passwordSource} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return o, errors.New("give at most one of --key-hex, --key-file and --password-source")
	}
	switch {
	case keyHex != "":
		k, err := hex.DecodeString(strings.TrimSpace(keyHex))
		if err != nil {
			return o, errors.New("--key-hex is not hexadecimal")
		}
		o.Key = k
	case keyFile != "":
		b, err := readOwnerOnly(keyFile, "--key-file "+keyFile, "the transport key file")
		if err != nil {
			return o, err
		}
		// A key file holds the raw key, or its hex on one line.
		if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(k) > 0 {
			clear(b)
			b = k
		}
		o.Key = b
	case passwordSource != "":
		src, err := pinsource.Parse(passwordSource)
		if err != nil {
			return o, fmt.Errorf("--password-source: %w", err)
		}
		if src.Kind != pinsource.File {
			p, err := src.Read()
			if err != nil {
				return o, fmt.Errorf("--password-source: %w", err)
			}
			o.Password = p
			break
		}
		b, err := readOwnerOnly(src.Ref, "--password-source "+passwordSource, "the password file")
		if err != nil {
			return o, err
		}
		// The password is the first line.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			clear(b[i:])
			b = b[:i]
		}
		o.Password = bytes.TrimRight(b, "\r")
	}
	return o, nil
}

// readCertificates reads the PEM certificates of --signer-cert.
func readCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--signer-cert %s does not exist: give the PEM file of the vendor's signing certificate", path)
		}
		return nil, fmt.Errorf("--signer-cert: %w", err)
	}
	var certs []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--signer-cert %s: a certificate does not parse: %v", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("--signer-cert %s holds no PEM CERTIFICATE block", path)
	}
	return certs, nil
}

// maxSecretFile bounds a key or password file.
const maxSecretFile = 4096

// readOwnerOnly reads a file that holds a transport secret. Like the HSM's
// PIN file, it must be a regular file that only its owner may read or
// write (mode 0600 or stricter): the mode is checked on the open file, so
// what is read is what was checked. flag names the flag in the message,
// what the file; the message never holds the content.
func readOwnerOnly(path, flag, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %s does not exist", flag, what)
		}
		return nil, fmt.Errorf("%s: opening %s: %w", flag, what, errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is not a regular file", flag, what)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: %s may be read or changed by users other than its owner (mode %04o); it must be mode 0600: run chmod 600 on it", flag, what, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", flag, what, err)
	}
	if len(b) > maxSecretFile {
		clear(b)
		return nil, fmt.Errorf("%s: %s is longer than %d bytes", flag, what, maxSecretFile)
	}
	return b, nil
}

func newImportPSKCCmd() *cobra.Command {
	var (
		keyHex, keyFile, passwordSource, dbDSN, wrapLabel string
		transportKey, signerCert                          string
		forceExpired                                      bool
		hf                                                hsmFlags
	)
	cmd := &cobra.Command{
		Use:   "import-pskc FILE",
		Short: "import dynamic-password tokens from a vendor PSKC (RFC 6030) file",
		Long: `Imports every OTP key of a PSKC file: plain, encrypted with a pre-shared AES
key (--key-hex or --key-file), or with a password (--password-source
env:NAME or file:/path). The file is read twice: first every entry is
checked (decryption, MAC, algorithm), then each seed is wrapped by the HSM
key --wrap-key and stored, all in one database transaction. A bad file
imports nothing, and the error names the entry. Tokens already imported are
skipped, never overwritten.

What the file says beyond the seed is honoured: Policy/StartDate (no code is
accepted before it), TimeDrift (TOTP codes are looked for around the drifted
time step), PINPolicy PINUsageMode Append or Prepend (the customer types the
code followed by, or after, the PIN held in the file's pskc:pin key; only a
MAC of it, computed in the HSM with the token's seed, is stored). Keys whose
ExpiryDate has passed are listed and skipped, unless --force-expired.

With --transport-key (a pkcs11: URI or label of a key in the HSM) the file's
seeds are unwrapped inside the HSM, their MAC checked there, and wrapped by
--wrap-key there: no seed passes through egate's memory in clear. The key is
the pre-shared AES key (EncryptionKey ds:KeyName; the HSM must unwrap with
AES-CBC-PAD, which SoftHSM2 cannot) or the RSA private key whose certificate
the file names (RFC 6030 §6.3; rsa-oaep-mgf1p or rsa-1_5; see
"egate admin token pskc-transport-key"). --wrap-key must then be a seed-wrap
key that the HSM's security officer made with CKA_TRUSTED: the unwrapped
seed may leave the HSM only under a trusted key.

A signed file (ds:Signature) is imported only with --signer-cert, the
vendor's certificate(s) in PEM: the enveloped XML signature is verified
over the whole file (in memory) before anything is read, and what is
imported is what was signed. With --signer-cert an unsigned file is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			path := args[0]
			st, err := os.Stat(path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("PSKC file %s does not exist: give the path of the vendor's .pskc/.xml file", path)
			case err != nil:
				return fmt.Errorf("PSKC file: %w", err)
			case st.IsDir():
				return fmt.Errorf("PSKC file %s is a directory: give the path of the vendor's .pskc/.xml file", path)
			}
			if transportKey != "" && (keyHex != "" || keyFile != "" || passwordSource != "") {
				return errors.New("--transport-key names the key in the HSM that opens the file: give no --key-hex, --key-file or --password-source with it")
			}
			o, err := pskcOptions(keyHex, keyFile, passwordSource)
			if err != nil {
				return err
			}
			var signers []*x509.Certificate
			if signerCert != "" {
				if signers, err = readCertificates(signerCert); err != nil {
					return err
				}
			}
			db, err := (&authFlags{db: dbDSN, cmd: cmd}).openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			h, err := hf.open(ctx)
			if err != nil {
				return err
			}
			defer h.Close()
			svc := oath.New(db, h, oath.Config{WrapKeyLabel: wrapLabel}, nil)
			bar := newProgressBar(cmd.ErrOrStderr())
			sum, err := svc.ImportPSKC(ctx, func() (io.ReadCloser, error) { return os.Open(path) },
				oath.ImportOptions{PSKC: o, Size: st.Size(), Progress: bar.update, ImportExpired: forceExpired, TransportKey: transportKey, SignerCerts: signers})
			bar.done()
			if err != nil {
				return fmt.Errorf("importing %s: nothing was imported: %w", path, err)
			}
			out := cmd.OutOrStdout()
			for _, e := range sum.Expired {
				what := "skipped (--force-expired imports it)"
				if forceExpired {
					what = "imported all the same (--force-expired); it verifies no code"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: key package %d (key id %q, serial %q) expired on %s: %s\n", e.Index, e.KeyID, e.Serial, e.ExpiryDate.UTC().Format(time.RFC3339), what)
			}
			fmt.Fprintf(out, "imported %d tokens, skipped %d already present", sum.Imported, sum.Duplicates)
			if sum.PINKeysSkipped > 0 {
				fmt.Fprintf(out, ", skipped %d PIN keys", sum.PINKeysSkipped)
			}
			fmt.Fprintln(out)
			algs := make([]string, 0, len(sum.ByAlgorithm))
			for a := range sum.ByAlgorithm {
				algs = append(algs, a)
			}
			sort.Strings(algs)
			for _, a := range algs {
				fmt.Fprintf(out, "  %-40s %d\n", a, sum.ByAlgorithm[a])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyHex, "key-hex", "", "pre-shared AES key in hex (test keys only: a command line is visible to others)")
	f.StringVar(&keyFile, "key-file", "", "file holding the pre-shared AES key (raw or hex)")
	f.StringVar(&passwordSource, "password-source", "", "password of a PBKDF2-protected file: env:NAME or file:/path")
	f.StringVar(&dbDSN, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	f.StringVar(&wrapLabel, "wrap-key", hsm.LabelSeedWrap, "HSM seed-wrap key that wraps the seeds (type aes-256-seed-wrap)")
	f.StringVar(&transportKey, "transport-key", "", "key in the HSM the file is encrypted to (pkcs11: URI or label): seeds are unwrapped there, never in memory")
	f.StringVar(&signerCert, "signer-cert", "", "PEM file of the vendor's signing certificate(s): the file must carry a valid XML signature by one of them")
	f.BoolVar(&forceExpired, "force-expired", false, "import keys whose ExpiryDate has passed too (they are listed either way)")
	hf.bind(cmd, "hsm-")
	return cmd
}

func newPSKCTransportKeyCmd() *cobra.Command {
	var (
		hf           hsmFlags
		allowDecrypt bool
	)
	cmd := &cobra.Command{
		Use:   "pskc-transport-key LABEL",
		Short: "generate an RSA transport key in the HSM for vendors to encrypt token seeds to",
		Long: `Generates an RSA-2048 key pair in the HSM whose private half can only
unwrap and decrypt (sensitive, never extractable) and prints its public key
(PEM) and its pkcs11: URI. Have the bank CA certify the public key, give the
certificate to the token vendor, and import their files with
"egate admin token import-pskc --transport-key URI": the seeds are unwrapped
inside the HSM (RFC 6030 §6.3). The key unwraps only into sensitive keys that
may leave the HSM only under a trusted key (CKA_UNWRAP_TEMPLATE). It cannot
decrypt unless --allow-decrypt, which files whose PINs or counters are
encrypted need; with it, anyone holding the HSM PIN could also decrypt a
seed encrypted to this key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			h, err := hf.open(ctx)
			if err != nil {
				return err
			}
			defer h.Close()
			pub, err := h.GenerateTransportKey(ctx, args[0], allowDecrypt)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				return err
			}
			u := pkcs11uri.URI{Token: h.Token(), Object: args[0], Type: pkcs11uri.TypePrivate}
			fmt.Fprintf(cmd.ErrOrStderr(), "transport key %s\n", u.String())
			return pem.Encode(cmd.OutOrStdout(), &pem.Block{Type: "PUBLIC KEY", Bytes: der})
		},
	}
	cmd.Flags().BoolVar(&allowDecrypt, "allow-decrypt", false, "let the key decrypt too (files with encrypted PINs or counters need it)")
	hf.bind(cmd, "hsm-")
	return cmd
}

// progressBar draws on a terminal in place, else prints a line per 10%.
type progressBar struct {
	w     io.Writer
	tty   bool
	last  string
	lastP int
}

func newProgressBar(w io.Writer) *progressBar {
	b := &progressBar{w: w, lastP: -1}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
		}
	}
	return b
}

func (b *progressBar) update(p oath.Progress) {
	pct := 0
	if p.Total > 0 {
		pct = int(p.Done * 100 / p.Total)
	}
	if b.tty {
		const width = 30
		fill := pct * width / 100
		line := fmt.Sprintf("\r%-8s [%s%s] %3d%% %d/%d", p.Phase, strings.Repeat("#", fill), strings.Repeat(".", width-fill), pct, p.Done, p.Total)
		if line != b.last {
			fmt.Fprint(b.w, line)
			b.last = line
		}
		return
	}
	if step := pct / 10; step != b.lastP || p.Phase != b.last {
		fmt.Fprintf(b.w, "%s: %d%% (%d of %d)\n", p.Phase, pct, p.Done, p.Total)
		b.lastP, b.last = step, p.Phase
	}
}

func (b *progressBar) done() {
	if b.tty && b.last != "" {
		fmt.Fprintln(b.w)
	}
}
