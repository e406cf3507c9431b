package messenger

import (
	"context"
	"encoding/json"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
)

// A friend transfer is a message from the moment its intent is authorized:
// pending (waiting for the payer's proof), then done once ebank moved the
// money, or refused, cancelled or expired with nothing moved. The state is
// msg_payments.state and the message's state; both members see it, live.
const (
	StatePending   = "pending"
	StateDone      = "done"
	StateRefused   = "refused"
	StateCancelled = "cancelled"
	StateExpired   = "expired"
)

// DefaultPendingTTL is how long a pending transfer waits for its payer
// after the last step (authorize, challenge) before it shows as expired:
// longer than a challenge's validity and a grant's (5 min each at txauth),
// so a proof still in time is never shown as expired before it lands.
const DefaultPendingTTL = 10 * time.Minute

func (s *Service) pendingTTL() time.Duration {
	if s.PendingTTL > 0 {
		return s.PendingTTL
	}
	return DefaultPendingTTL
}

// Pending records the authorized friend transfer p (intent intentHash) as
// a pending payment and posts its message, once per key; a step of the same
// intent again keeps it pending (and reopens one that expired unpaid).
// Nothing moves money here. Other kinds of payment are left alone.
func (s *Service) Pending(ctx context.Context, p Pay, intentHash string) error {
	if p.Kind != intent.FriendTransfer {
		return nil
	}
	now := s.Store.now().UnixMilli()
	if _, err := s.Store.DB.Exec(ctx, `INSERT INTO msg_payments (id, kind, conversation_id, payer, payee, amount, ref, pay_key, intent, transfer_id, state, memo, created_ms, updated_ms)
VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, '', 'pending', ?, ?, ?) ON CONFLICT DO NOTHING`,
		newID(), string(p.Kind), p.Conv, p.Payer.ID, p.Payee.ID, p.Amount, p.Key, intentHash, p.Memo, now, now); err != nil {
		return err
	}
	var id, state, hash, conv string
	if err := s.Store.DB.QueryRow(ctx, `SELECT id, state, intent, conversation_id FROM msg_payments WHERE pay_key = ? AND payer = ?`, p.Key, p.Payer.ID).
		Scan(&id, &state, &hash, &conv); err != nil || hash != intentHash || conv != p.Conv {
		return nil // another payer's key, or another intent under this key: not this payment's message
	}
	switch state {
	case StatePending, StateExpired:
		if _, err := s.Store.DB.Exec(ctx, `UPDATE msg_payments SET state = 'pending', updated_ms = ? WHERE id = ? AND state IN ('pending', 'expired')`, now, id); err != nil {
			return err
		}
	default:
		return nil
	}
	body := payBody(p, "")
	m, err := s.Post(ctx, Message{Conversation: p.Conv, Sender: p.Payer.ID, Kind: KindTransfer, Body: body, Amount: p.Amount, Ref: "pay:" + id, State: StatePending})
	if err == nil && m.State != StatePending && m.State != StateDone {
		s.settleMessage(ctx, p.Conv, "pay:"+id, StatePending, body)
	}
	return err
}

func payBody(p Pay, reason string) string {
	b, _ := json.Marshal(PayBody{Payee: p.Payee.ID, PayeeName: p.Payee.Name, Memo: p.Memo, Reason: reason})
	return string(b)
}

// Settle ends the pending friend transfer p without moving money: state
// StateRefused (reason: the refusal's code), StateCancelled or
// StateExpired. A transfer already done is never changed.
func (s *Service) Settle(ctx context.Context, p Pay, state, reason string) {
	if p.Kind != intent.FriendTransfer {
		return
	}
	ctx = context.WithoutCancel(ctx)
	var id, conv string
	if s.Store.DB.QueryRow(ctx, `SELECT id, conversation_id FROM msg_payments WHERE pay_key = ? AND payer = ? AND state IN ('pending', 'expired')`, p.Key, p.Payer.ID).Scan(&id, &conv) != nil {
		return
	}
	res, err := s.Store.DB.Exec(ctx, `UPDATE msg_payments SET state = ?, updated_ms = ? WHERE id = ? AND state IN ('pending', 'expired')`, state, s.Store.now().UnixMilli(), id)
	if err != nil {
		return
	}
	if n, _ := res.RowsAffected(); n == 1 {
		s.settleMessage(ctx, conv, "pay:"+id, state, payBody(p, reason))
	}
}

// Expire ends the conversation's pending transfers whose payer has done
// nothing for PendingTTL (their intent's challenge and grant have run out):
// they show as expired. Called when the conversation is looked at.
func (s *Service) Expire(ctx context.Context, conv string) error {
	before := s.Store.now().Add(-s.pendingTTL()).UnixMilli()
	ids, err := s.column(ctx, `SELECT id FROM msg_payments WHERE conversation_id = ? AND state = 'pending' AND updated_ms < ?`, conv, before)
	if err != nil {
		return err
	}
	for _, id := range ids {
		res, err := s.Store.DB.Exec(ctx, `UPDATE msg_payments SET state = 'expired', updated_ms = ? WHERE id = ? AND state = 'pending' AND updated_ms < ?`, s.Store.now().UnixMilli(), id, before)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			m, err := s.Store.ByRef(ctx, conv, "pay:"+id)
			if err != nil {
				return err
			}
			s.settleMessage(ctx, conv, "pay:"+id, StateExpired, m.Body)
		}
	}
	return nil
}

// ExpireFor runs Expire on the conversations where member pays or is paid
// a transfer abandoned pending: when the customer's chats are listed.
func (s *Service) ExpireFor(ctx context.Context, member string) error {
	before := s.Store.now().Add(-s.pendingTTL()).UnixMilli()
	convs, err := s.column(ctx, `SELECT DISTINCT conversation_id FROM msg_payments WHERE state = 'pending' AND updated_ms < ? AND (payer = ? OR payee = ?)`,
		before, member, member)
	if err != nil {
		return err
	}
	for _, c := range convs {
		if err := s.Expire(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// column reads a query's one text column.
func (s *Service) column(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.Store.DB.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// settleMessage sets a payment message's state and body and tells the pages.
func (s *Service) settleMessage(ctx context.Context, conv, ref, state, body string) {
	if _, err := s.Store.DB.Exec(ctx, `UPDATE msg_messages SET state = ?, body = ? WHERE conversation_id = ? AND ref = ?`, state, body, conv, ref); err != nil {
		return
	}
	if m, err := s.Store.ByRef(ctx, conv, ref); err == nil {
		s.Hub.Publish(Event{Message: m, Update: true})
	}
}
