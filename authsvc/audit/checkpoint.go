package audit

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// A checkpoint is the log's head — a position and the hash of the record
// there — signed by the HSM's audit key (hsm.LabelAuditCheckpoint). The hash
// chain makes every record up to the head depend on that hash, so one
// signature vouches for all of them: a database administrator who changes,
// drops or reorders a record before a checkpoint, or rewrites the whole
// chain after it, cannot produce the signature the new head would need.
// Checkpoints are made at an interval (Checkpoint, from a loop in the
// process), not per record: signing stays off the path of every decision.
//
// The signed message is
//
//	"egate-audit-checkpoint-v1\n" || seq || "\n" || head hash (hex) || "\n" || at_ms
//
// and the signature is ECDSA over its SHA-256, ASN.1-encoded.

// Checkpoint is one signed head.
type Checkpoint struct {
	Seq       int64  `json:"seq"`
	HeadHash  string `json:"head_hash"`
	AtMS      int64  `json:"at_ms"`
	KeyID     string `json:"key_id"`
	Signature []byte `json:"signature"`
}

// CheckpointMessage is the byte string a checkpoint's signature covers.
func CheckpointMessage(seq int64, headHash string, atMS int64) []byte {
	return []byte("egate-audit-checkpoint-v1\n" + strconv.FormatInt(seq, 10) + "\n" + headHash + "\n" + strconv.FormatInt(atMS, 10))
}

// KeyID is the hex SHA-256 of a public key's SubjectPublicKeyInfo.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("audit key: %w", err)
	}
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:]), nil
}

// ErrNothingToSign says the log has no record since the last checkpoint.
var ErrNothingToSign = errors.New("no audit record since the last checkpoint")

// Checkpoint signs the current head with key (ECDSA P-256, the HSM's audit
// key). It first verifies the records since the last checkpoint (and that
// the last checkpoint's record still has its hash), so a tampered tail is
// never signed: it returns a *BrokenError instead. With nothing new since
// the last checkpoint it returns ErrNothingToSign. Replicas may call it at
// once: the position is the key, and a second signature of the same head is
// dropped.
func (l *Log) Checkpoint(ctx context.Context, key crypto.Signer) (Checkpoint, error) {
	if _, ok := key.Public().(*ecdsa.PublicKey); !ok {
		return Checkpoint{}, fmt.Errorf("audit key: want an ECDSA key, got %T", key.Public())
	}
	keyID, err := KeyID(key.Public())
	if err != nil {
		return Checkpoint{}, err
	}
	var from int64
	var prev string
	err = l.db.QueryRow(ctx, `SELECT seq, head_hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).Scan(&from, &prev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		from, prev = 0, Genesis
	case err != nil:
		return Checkpoint{}, fmt.Errorf("reading audit checkpoints: %w", err)
	default:
		var h string
		if err := l.db.QueryRow(ctx, `SELECT hash FROM audit_log WHERE seq = ?`, from).Scan(&h); err != nil || h != prev {
			return Checkpoint{}, &BrokenError{Seq: from, Reason: "the record a signed checkpoint vouches for is missing or changed"}
		}
	}
	head, headHash, err := l.verifyFrom(ctx, from, prev)
	if err != nil {
		return Checkpoint{}, err
	}
	if head == from {
		return Checkpoint{}, ErrNothingToSign
	}
	at := l.now().UnixMilli()
	digest := sha256.Sum256(CheckpointMessage(head, headHash, at))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("signing the audit checkpoint: %w", err)
	}
	cp := Checkpoint{Seq: head, HeadHash: headHash, AtMS: at, KeyID: keyID, Signature: sig}
	if _, err := l.db.Exec(ctx, `INSERT INTO audit_checkpoints (seq, head_hash, at_ms, key_id, signature) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (seq) DO NOTHING`, cp.Seq, cp.HeadHash, cp.AtMS, cp.KeyID, cp.Signature); err != nil {
		return Checkpoint{}, fmt.Errorf("storing the audit checkpoint: %w", err)
	}
	return cp, nil
}

// verifyFrom walks the chain from the record after position from, whose
// hash is prev, and returns the head it reaches.
func (l *Log) verifyFrom(ctx context.Context, from int64, prev string) (int64, string, error) {
	rows, err := l.db.Query(ctx, `SELECT seq, at_ms, kind, record, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq`, from)
	if err != nil {
		return 0, "", fmt.Errorf("reading audit log: %w", err)
	}
	defer rows.Close()
	want := from + 1
	for rows.Next() {
		var (
			seq, at                   int64
			kind, rec, prevHash, hash string
		)
		if err := rows.Scan(&seq, &at, &kind, &rec, &prevHash, &hash); err != nil {
			return 0, "", fmt.Errorf("reading audit log: %w", err)
		}
		if err := checkRecord(want, prev, seq, at, kind, rec, prevHash, hash); err != nil {
			return 0, "", err
		}
		prev, want = hash, want+1
	}
	if err := rows.Err(); err != nil {
		return 0, "", fmt.Errorf("reading audit log: %w", err)
	}
	return want - 1, prev, nil
}

// SignedReport is what VerifySigned found.
type SignedReport struct {
	Records     int64  // records in the chain, all verified
	Head        string // the last record's hash
	Checkpoints int    // checkpoints, all verified
	SignedUpTo  int64  // the last position a checkpoint vouches for (0: none)
}

// BadCheckpointError names the first checkpoint that does not verify.
type BadCheckpointError struct {
	Seq    int64
	Reason string
}

func (e *BadCheckpointError) Error() string {
	return fmt.Sprintf("audit checkpoint at record %d does not verify: %s", e.Seq, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBroken) true.
func (e *BadCheckpointError) Unwrap() error { return ErrBroken }

// VerifySigned walks the whole chain (as VerifyHead) and checks every
// checkpoint against pub, the audit key's public key: its signature, its key
// id, and that the record it vouches for still has the signed hash. It
// returns a *BrokenError for the first broken record or a
// *BadCheckpointError for the first bad checkpoint.
func (l *Log) VerifySigned(ctx context.Context, pub crypto.PublicKey) (SignedReport, error) {
	ep, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return SignedReport{}, fmt.Errorf("audit key: want an ECDSA public key, got %T", pub)
	}
	keyID, err := KeyID(pub)
	if err != nil {
		return SignedReport{}, err
	}
	n, head, err := l.VerifyHead(ctx)
	if err != nil {
		return SignedReport{}, err
	}
	rep := SignedReport{Records: n, Head: head}
	rows, err := l.db.Query(ctx, `SELECT c.seq, c.head_hash, c.at_ms, c.key_id, c.signature, a.hash
		FROM audit_checkpoints c LEFT JOIN audit_log a ON a.seq = c.seq ORDER BY c.seq`)
	if err != nil {
		return rep, fmt.Errorf("reading audit checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var cp Checkpoint
		var recHash sql.NullString
		if err := rows.Scan(&cp.Seq, &cp.HeadHash, &cp.AtMS, &cp.KeyID, &cp.Signature, &recHash); err != nil {
			return rep, fmt.Errorf("reading audit checkpoints: %w", err)
		}
		switch {
		case cp.KeyID != keyID:
			return rep, &BadCheckpointError{Seq: cp.Seq, Reason: "signed by another key than the audit key given"}
		case !ecdsa.VerifyASN1(ep, digestOf(cp), cp.Signature):
			return rep, &BadCheckpointError{Seq: cp.Seq, Reason: "the signature does not verify"}
		case !recHash.Valid:
			return rep, &BadCheckpointError{Seq: cp.Seq, Reason: "the record it vouches for is missing"}
		case recHash.String != cp.HeadHash:
			return rep, &BadCheckpointError{Seq: cp.Seq, Reason: "the record it vouches for has another hash"}
		}
		rep.Checkpoints++
		rep.SignedUpTo = cp.Seq
	}
	return rep, rows.Err()
}

func digestOf(cp Checkpoint) []byte {
	d := sha256.Sum256(CheckpointMessage(cp.Seq, cp.HeadHash, cp.AtMS))
	return d[:]
}
