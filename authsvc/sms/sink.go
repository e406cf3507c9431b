package sms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/egate-bank/egate/internal/store"
)

// Sink is the development SMS gateway: it stores messages in the sms_outbox
// table, where egate sim sms (and tests) read them. It must never be
// configured in production: the messages hold live codes.
type Sink struct {
	db  *store.DB
	now func() time.Time
}

// NewSink returns a sink over the database.
func NewSink(db *store.DB, now func() time.Time) *Sink {
	if now == nil {
		now = time.Now
	}
	return &Sink{db: db, now: now}
}

// Send implements Gateway.
func (s *Sink) Send(ctx context.Context, m Message) error {
	var id [12]byte
	rand.Read(id[:])
	_, err := s.db.Exec(ctx, `INSERT INTO sms_outbox (id, phone, body, created_ms) VALUES (?, ?, ?, ?)`,
		hex.EncodeToString(id[:]), m.To, m.Body, s.now().UnixNano())
	if err != nil {
		return fmt.Errorf("storing the SMS in the outbox: %w", err)
	}
	return nil
}

// Sent is a message in the outbox.
type Sent struct {
	ID     string    `json:"id"`
	To     string    `json:"to"`
	Body   string    `json:"body"`
	SentAt time.Time `json:"sent_at"`
}

// List returns the newest messages first, to phone ("" for all), at most limit.
func (s *Sink) List(ctx context.Context, phone string, limit int) ([]Sent, error) {
	q := `SELECT id, phone, body, created_ms FROM sms_outbox`
	args := []any{}
	if phone != "" {
		q += ` WHERE phone = ?`
		args = append(args, phone)
	}
	q += ` ORDER BY created_ms DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the SMS outbox: %w", err)
	}
	defer rows.Close()
	var out []Sent
	for rows.Next() {
		var m Sent
		var ns int64
		if err := rows.Scan(&m.ID, &m.To, &m.Body, &ns); err != nil {
			return nil, err
		}
		m.SentAt = time.Unix(0, ns)
		out = append(out, m)
	}
	return out, rows.Err()
}
