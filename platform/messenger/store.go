package messenger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/egate-bank/egate/internal/store"
)

// Kinds of conversations.
const (
	Direct      = "direct"  // two customers
	Group       = "group"   // a group chat of customers
	ServiceChat = "service" // a customer and the bank's staff
	Alerts      = "alerts"  // the customer's alert inbox
)

// Kinds of messages.
const (
	KindText     = "text"
	KindTransfer = "transfer"   // a friend transfer; State is the payment's
	KindAA       = "aa"         // an AA collection; State open or closed
	KindAAPaid   = "aa_paid"    // a member paid a share
	KindQR       = "qr_payment" // a payment by receive QR
	KindAlert    = "alert"      // an alert of the passport; Body is its JSON
)

// AlertsSender is the sender of the alerts in a customer's alert
// conversation (a member of it, so that they count as unread).
const AlertsSender = "bank:alerts"

// Staff is the member standing for the bank's customer service in
// service conversations.
const Staff = "bank:service"

// MaxText is the longest text message, in characters.
const MaxText = 2000

// Member is a customer in a conversation.
type Member struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Conversation is one conversation as a member sees it.
type Conversation struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	Title    string   `json:"title"`
	Members  []Member `json:"members"`
	LastSeq  int64    `json:"last_seq"`
	LastRead int64    `json:"last_read"`
	Unread   int64    `json:"unread"`
}

// Message is one message of a conversation.
type Message struct {
	Conversation string    `json:"conversation"`
	Seq          int64     `json:"seq"`
	Sender       string    `json:"sender"`
	SenderName   string    `json:"sender_name"`
	Kind         string    `json:"kind"`
	Body         string    `json:"body"`
	Amount       int64     `json:"amount"`
	Ref          string    `json:"ref,omitempty"`
	State        string    `json:"state,omitempty"`
	Created      time.Time `json:"created"`
}

// Store keeps the messenger's data in the database (SQLite or
// PostgreSQL); every method is safe for concurrent use by any number of
// replicas.
type Store struct {
	DB  *store.DB
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Profile records that the customer uses the messenger under login name.
func (s *Store) Profile(ctx context.Context, id, name string) error {
	_, err := s.DB.Exec(ctx, `INSERT INTO msg_profiles (passport_id, login_name, created_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		id, name, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("messenger: keeping the profile: %w", err)
	}
	return nil
}

// ByName finds a customer by login name.
func (s *Store) ByName(ctx context.Context, name string) (Member, error) {
	m := Member{Name: strings.TrimSpace(name)}
	err := s.DB.QueryRow(ctx, `SELECT passport_id FROM msg_profiles WHERE login_name = ?`, m.Name).Scan(&m.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrUnknownCustomer
	}
	return m, err
}

// Name is the customer's login name, or the id itself when unknown.
func (s *Store) Name(ctx context.Context, id string) string {
	var n string
	if s.DB.QueryRow(ctx, `SELECT login_name FROM msg_profiles WHERE passport_id = ?`, id).Scan(&n) != nil {
		return id
	}
	return n
}

// create makes a conversation with its members; a pairKey already taken
// returns that conversation's id instead.
func (s *Store) create(ctx context.Context, kind, title, pairKey, by string, members []string) (string, error) {
	id := newID()
	now := s.now().UnixMilli()
	var pk any
	if pairKey != "" {
		pk = pairKey
	}
	err := s.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO msg_conversations (id, kind, title, pair_key, created_by, last_seq, created_ms) VALUES (?, ?, ?, ?, ?, 0, ?)`,
			id, kind, title, pk, by, now); err != nil {
			return err
		}
		for _, m := range members {
			if _, err := tx.Exec(ctx, `INSERT INTO msg_members (conversation_id, member, last_read, joined_ms) VALUES (?, ?, 0, ?) ON CONFLICT DO NOTHING`,
				id, m, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && pairKey != "" && store.IsUniqueViolation(err) {
		err = s.DB.QueryRow(ctx, `SELECT id FROM msg_conversations WHERE pair_key = ?`, pairKey).Scan(&id)
	}
	if err != nil {
		return "", fmt.Errorf("messenger: making a conversation: %w", err)
	}
	return id, nil
}

// Direct returns the one conversation of a and b, made if missing.
func (s *Store) Direct(ctx context.Context, a, b string) (string, error) {
	if a == b {
		return "", ErrSelf
	}
	x, y := a, b
	if y < x {
		x, y = y, x
	}
	return s.create(ctx, Direct, "", "direct:"+x+"|"+y, a, []string{a, b})
}

// NewGroup makes a group chat of by and members.
func (s *Store) NewGroup(ctx context.Context, by, title string, members []string) (string, error) {
	title = strings.TrimSpace(title)
	if title == "" || utf8.RuneCountInString(title) > 60 {
		return "", ErrBadTitle
	}
	return s.create(ctx, Group, title, "", by, append([]string{by}, members...))
}

// GroupOnce returns the group chat made under key (by egate demo's
// seeding), made at the first call: later calls change nothing.
func (s *Store) GroupOnce(ctx context.Context, key, by, title string, members []string) (string, error) {
	return s.create(ctx, Group, title, "seed:"+key, by, append([]string{by}, members...))
}

// ServiceConversation returns the customer's conversation with the bank's staff.
func (s *Store) ServiceConversation(ctx context.Context, customer string) (string, error) {
	return s.create(ctx, ServiceChat, "", "service:"+customer, customer, []string{customer, Staff})
}

// AlertsChat returns the customer's alert inbox conversation.
func (s *Store) AlertsChat(ctx context.Context, customer string) (string, error) {
	return s.create(ctx, Alerts, "", "alerts:"+customer, customer, []string{customer, AlertsSender})
}

// Get returns the conversation as member sees it: ErrNoConversation when
// there is none, ErrNotMember when member is not in it.
func (s *Store) Get(ctx context.Context, id, member string) (Conversation, error) {
	c := Conversation{ID: id}
	err := s.DB.QueryRow(ctx, `SELECT kind, title, last_seq FROM msg_conversations WHERE id = ?`, id).Scan(&c.Kind, &c.Title, &c.LastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNoConversation
	}
	if err != nil {
		return c, err
	}
	if c.Members, err = s.members(ctx, id); err != nil {
		return c, err
	}
	err = s.DB.QueryRow(ctx, `SELECT last_read FROM msg_members WHERE conversation_id = ? AND member = ?`, id, member).Scan(&c.LastRead)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotMember
	}
	c.Unread = max(c.LastSeq-c.LastRead, 0)
	return c, err
}

// CheckMember says whether member is in the conversation:
// ErrNoConversation, ErrNotMember or nil (without reading the members, for
// a page's event stream: a thousand connect at once).
func (s *Store) CheckMember(ctx context.Context, id, member string) error {
	var in sql.NullString
	err := s.DB.QueryRow(ctx, `SELECT m.member FROM msg_conversations c LEFT JOIN msg_members m ON m.conversation_id = c.id AND m.member = ?
WHERE c.id = ?`, member, id).Scan(&in)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNoConversation
	case err != nil:
		return err
	case !in.Valid:
		return ErrNotMember
	}
	return nil
}

func (s *Store) members(ctx context.Context, id string) ([]Member, error) {
	rows, err := s.DB.Query(ctx, `SELECT m.member, COALESCE(p.login_name, m.member) FROM msg_members m
LEFT JOIN msg_profiles p ON p.passport_id = m.member WHERE m.conversation_id = ? ORDER BY m.joined_ms, m.member`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.ID, &m.Name); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// List returns member's conversations, the most recently active first,
// with their unread counts.
func (s *Store) List(ctx context.Context, member string) ([]Conversation, error) {
	rows, err := s.DB.Query(ctx, `SELECT c.id, c.kind, c.title, c.last_seq, m.last_read FROM msg_members m
JOIN msg_conversations c ON c.id = m.conversation_id WHERE m.member = ?
ORDER BY (SELECT MAX(x.created_ms) FROM msg_messages x WHERE x.conversation_id = c.id) DESC, c.created_ms DESC`, member)
	if err != nil {
		return nil, err
	}
	var out []Conversation
	for rows.Next() {
		var c Conversation
		if err := rows.Scan(&c.ID, &c.Kind, &c.Title, &c.LastSeq, &c.LastRead); err != nil {
			rows.Close()
			return nil, err
		}
		c.Unread = max(c.LastSeq-c.LastRead, 0)
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Members, err = s.members(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Post appends m to its conversation as m.Sender, who must be a member;
// the sender has then read everything up to it. A message with a Ref
// already in the conversation is not added again: the first is returned
// with added false.
func (s *Store) Post(ctx context.Context, m Message) (_ Message, added bool, err error) {
	if m.Kind == KindText {
		m.Body = strings.TrimSpace(m.Body)
		if m.Body == "" {
			return m, false, ErrEmptyMessage
		}
		if utf8.RuneCountInString(m.Body) > MaxText {
			return m, false, ErrMessageTooLong
		}
	}
	m.Created = s.now().Truncate(time.Millisecond)
	var ref any
	if m.Ref != "" {
		ref = m.Ref
	}
	err = s.DB.InTx(ctx, func(tx *store.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM msg_members WHERE conversation_id = ? AND member = ?`, m.Conversation, m.Sender).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			var k string
			if tx.QueryRow(ctx, `SELECT kind FROM msg_conversations WHERE id = ?`, m.Conversation).Scan(&k) != nil {
				return ErrNoConversation
			}
			return ErrNotMember
		} else if err != nil {
			return err
		}
		if m.Ref != "" {
			err := tx.QueryRow(ctx, `SELECT seq FROM msg_messages WHERE conversation_id = ? AND ref = ?`, m.Conversation, m.Ref).Scan(&m.Seq)
			if err == nil {
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if err := tx.QueryRow(ctx, `UPDATE msg_conversations SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq`, m.Conversation).Scan(&m.Seq); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO msg_messages (conversation_id, seq, sender, kind, body, amount, ref, state, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.Conversation, m.Seq, m.Sender, m.Kind, m.Body, m.Amount, ref, m.State, m.Created.UnixMilli()); err != nil {
			return err
		}
		added = true
		_, err := tx.Exec(ctx, `UPDATE msg_members SET last_read = ? WHERE conversation_id = ? AND member = ? AND last_read < ?`, m.Seq, m.Conversation, m.Sender, m.Seq)
		return err
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return m, false, err
		}
		if store.IsUniqueViolation(err) && m.Ref != "" { // the same ref posted at once by another replica
			got, gerr := s.ByRef(ctx, m.Conversation, m.Ref)
			return got, false, gerr
		}
		return m, false, fmt.Errorf("messenger: posting a message: %w", err)
	}
	if !added {
		got, err := s.ByRef(ctx, m.Conversation, m.Ref)
		return got, false, err
	}
	m.SenderName = s.Name(ctx, m.Sender)
	return m, true, nil
}

const messageCols = `m.conversation_id, m.seq, m.sender, COALESCE(p.login_name, m.sender), m.kind, m.body, m.amount, COALESCE(m.ref, ''), m.state, m.created_ms`

func scanMessage(r interface{ Scan(...any) error }) (Message, error) {
	var m Message
	var ms int64
	err := r.Scan(&m.Conversation, &m.Seq, &m.Sender, &m.SenderName, &m.Kind, &m.Body, &m.Amount, &m.Ref, &m.State, &ms)
	m.Created = time.UnixMilli(ms)
	return m, err
}

// ByRef returns the conversation's message about ref.
func (s *Store) ByRef(ctx context.Context, conv, ref string) (Message, error) {
	return scanMessage(s.DB.QueryRow(ctx, `SELECT `+messageCols+` FROM msg_messages m LEFT JOIN msg_profiles p ON p.passport_id = m.sender
WHERE m.conversation_id = ? AND m.ref = ?`, conv, ref))
}

// Messages returns up to limit messages of the conversation after seq
// after, oldest first; with after < 0, the newest limit.
func (s *Store) Messages(ctx context.Context, conv string, after int64, limit int) ([]Message, error) {
	q := `SELECT ` + messageCols + ` FROM msg_messages m LEFT JOIN msg_profiles p ON p.passport_id = m.sender
WHERE m.conversation_id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?`
	args := []any{conv, after, limit}
	if after < 0 {
		q = `SELECT * FROM (SELECT ` + messageCols + ` FROM msg_messages m LEFT JOIN msg_profiles p ON p.passport_id = m.sender
WHERE m.conversation_id = ? ORDER BY m.seq DESC LIMIT ?) t ORDER BY seq`
		args = []any{conv, limit}
	}
	rows, err := s.DB.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// MarkRead notes that member has read the conversation up to seq.
func (s *Store) MarkRead(ctx context.Context, conv, member string, seq int64) error {
	_, err := s.DB.Exec(ctx, `UPDATE msg_members SET last_read = ? WHERE conversation_id = ? AND member = ? AND last_read < ?`, seq, conv, member, seq)
	return err
}

// SetState changes the state shown on the conversation's message about
// ref, and returns the message.
func (s *Store) SetState(ctx context.Context, conv, ref, state string) (Message, error) {
	if _, err := s.DB.Exec(ctx, `UPDATE msg_messages SET state = ? WHERE conversation_id = ? AND ref = ?`, state, conv, ref); err != nil {
		return Message{}, err
	}
	return s.ByRef(ctx, conv, ref)
}

// Unread is the customer's unread messages over all conversations.
func (s *Store) Unread(ctx context.Context, member string) (int64, error) {
	var n sql.NullInt64
	err := s.DB.QueryRow(ctx, `SELECT SUM(c.last_seq - m.last_read) FROM msg_members m JOIN msg_conversations c ON c.id = m.conversation_id WHERE m.member = ?`, member).Scan(&n)
	return n.Int64, err
}
