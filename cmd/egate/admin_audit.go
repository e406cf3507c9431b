package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/internal/store"
)

func init() { registerAdmin(newAuditCmd) }

// newAuditCmd is egate admin audit verify|tail. Both only read: the
// database must exist and is not migrated, so a mistyped path is an error
// instead of a new, empty and "intact" log.
func newAuditCmd() *cobra.Command {
	var dsn, pubFile string
	var hf hsmFlags
	cmd := &cobra.Command{Use: "audit", Short: "the hash-chained audit log: verify the chain and its signed checkpoints, show records with their hashes, print the audit key"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	hf.bind(cmd, "hsm-")

	open := func(cmd *cobra.Command) (*audit.Log, func(), error) {
		db, err := (&authFlags{db: dsn, cmd: cmd, inspect: true}).openDB(cmd.Context())
		if err != nil {
			return nil, nil, err
		}
		if err := hasAuditLog(cmd.Context(), db); err != nil {
			db.Close()
			return nil, nil, err
		}
		return audit.New(db, nil), func() { db.Close() }, nil
	}

	verify := &cobra.Command{
		Use:   "verify",
		Short: "walk the whole chain and check the signed checkpoints; print the record count, the head hash and what is signed, or the first broken record or bad checkpoint (exit 1)",
		Long: `Walks the whole hash chain, then checks every signed checkpoint against the
audit key's public key: from --public-key FILE (PEM, as egate admin audit
public-key prints it), else from the HSM of the config (hsm.*, --hsm-*). With
neither, only the chain is checked, and the output says so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, why, err := auditPublicKey(cmd.Context(), pubFile, &hf)
			if err != nil {
				return err
			}
			l, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			var be *audit.BrokenError
			var bc *audit.BadCheckpointError
			if pub == nil {
				n, head, err := l.VerifyHead(cmd.Context())
				if errors.As(err, &be) {
					return fmt.Errorf("%w: the records from %d on cannot be trusted; keep the database as it is and investigate", err, be.Seq)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d records\nhead %s\ncheckpoints not checked: %s\n", n, head, why)
				return nil
			}
			rep, err := l.VerifySigned(cmd.Context(), pub)
			switch {
			case errors.As(err, &be):
				return fmt.Errorf("%w: the records from %d on cannot be trusted; keep the database as it is and investigate", err, be.Seq)
			case errors.As(err, &bc):
				return fmt.Errorf("%w: records up to %d may have been rewritten; keep the database as it is and investigate", err, bc.Seq)
			case err != nil:
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit log intact: %d records\nhead %s\n", rep.Records, rep.Head)
			if rep.Checkpoints == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "signed checkpoints: none yet (authsvc signs the head every authsvc.audit-checkpoint-every)\n")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed checkpoints: %d, all valid; records 1–%d signed, %d after it not yet\n", rep.Checkpoints, rep.SignedUpTo, rep.Records-rep.SignedUpTo)
			return nil
		},
	}
	verify.Flags().StringVar(&pubFile, "public-key", "", "the audit key's public key, PEM (default: read from the HSM of the config)")

	publicKey := &cobra.Command{
		Use:   "public-key",
		Short: "print the HSM audit key's public key (PEM) for auditors who verify without the HSM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := hf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer h.Close()
			s, err := h.Signer(cmd.Context(), hsm.LabelAuditCheckpoint)
			if err != nil {
				return err
			}
			der, err := x509.MarshalPKIXPublicKey(s.Public())
			if err != nil {
				return err
			}
			id, _ := audit.KeyID(s.Public())
			fmt.Fprintf(cmd.OutOrStdout(), "# %s key id %s\n", s.URI(), id)
			return pem.Encode(cmd.OutOrStdout(), &pem.Block{Type: "PUBLIC KEY", Bytes: der})
		},
	}

	var last int
	var from int64
	tail := &cobra.Command{
		Use:   "tail",
		Short: "print records with their hashes as JSON lines, oldest first: the last -n, or -n from --from (not verified: run verify for that)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if last < 1 || last > 10000 {
				return fmt.Errorf("-n %d: give 1 to 10000 records", last)
			}
			if from < 0 {
				return fmt.Errorf("--from %d: give a record number from 1 on", from)
			}
			l, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			var es []audit.Entry
			if from > 0 {
				es, err = l.Range(cmd.Context(), from, last)
			} else {
				es, err = l.Tail(cmd.Context(), last)
			}
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			for _, e := range es {
				line := struct {
					audit.Entry
					At string `json:"at"`
				}{e, time.UnixMilli(e.AtMS).UTC().Format(time.RFC3339Nano)}
				if err := enc.Encode(line); err != nil {
					return err
				}
			}
			return nil
		},
	}
	tail.Flags().IntVarP(&last, "n", "n", 20, "how many records")
	tail.Flags().Int64Var(&from, "from", 0, "first record number (default: the last -n records)")
	cmd.AddCommand(verify, tail, publicKey)
	return cmd
}

// hasAuditLog tells a database without egate's audit table (a wrong path
// or URL) from an empty log.
func hasAuditLog(ctx context.Context, db *store.DB) error {
	rows, err := db.Query(ctx, `SELECT seq FROM audit_log LIMIT 1`)
	if err != nil {
		return fmt.Errorf("this database has no audit log: is --db (or database.dsn) egate's database? (%w)", err)
	}
	return rows.Close()
}

// auditPublicKey is the audit key's public key: from file (PEM), else from
// the configured HSM. With neither it returns nil and why.
func auditPublicKey(ctx context.Context, file string, hf *hsmFlags) (crypto.PublicKey, string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, "", fmt.Errorf("--public-key: %w", err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil || blk.Type != "PUBLIC KEY" {
			return nil, "", fmt.Errorf("--public-key %s: not a PEM PUBLIC KEY (egate admin audit public-key prints one)", file)
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, "", fmt.Errorf("--public-key %s: %w", file, err)
		}
		return pub, "", nil
	}
	h, err := hf.open(ctx)
	if errors.Is(err, app.ErrNoHSM) {
		return nil, "give --public-key FILE (egate admin audit public-key prints it) or the HSM's config", nil
	}
	if err != nil {
		return nil, "", err
	}
	defer h.Close()
	s, err := h.Signer(ctx, hsm.LabelAuditCheckpoint)
	if err != nil {
		return nil, "", err
	}
	return s.Public(), "", nil
}
