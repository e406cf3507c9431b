// Package audittest tampers with an audit log the way a database
// administrator covering their tracks would, for tests that must show the
// tampering is caught.
package audittest

import (
	"context"
	"testing"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/internal/store"
)

// RewriteChain replaces record seq's fields and recomputes every hash from
// there on, so that the hash chain walks cleanly: only signed checkpoints
// can tell.
func RewriteChain(t testing.TB, db *store.DB, seq int64, fields map[string]string) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Query(ctx, `SELECT seq, at_ms, kind, record FROM audit_log ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq, at   int64
		kind, rec string
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.at, &r.kind, &r.rec); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	prev := audit.Genesis
	for _, r := range all {
		if r.seq == seq {
			r.rec = string(audit.Record{Seq: seq, AtMS: r.at, Kind: r.kind, Fields: fields}.Canonical())
		}
		h, err := audit.ChainHash(prev, []byte(r.rec))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `UPDATE audit_log SET record = ?, prev_hash = ?, hash = ? WHERE seq = ?`, r.rec, prev, h, r.seq); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}
