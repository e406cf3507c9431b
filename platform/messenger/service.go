package messenger

import (
	"context"
	"time"
)

// ServiceRow is one customer's conversation with the bank's staff, as the
// staff's list shows it.
type ServiceRow struct {
	Conversation string
	Customer     Member
	Unread       int64 // the customer's messages the staff have not read
	Last         time.Time
}

// ServiceInbox lists the customer-service conversations, those with
// messages the staff have not read first.
func (s *Store) ServiceInbox(ctx context.Context) ([]ServiceRow, error) {
	rows, err := s.DB.Query(ctx, `SELECT c.id, c.last_seq - st.last_read, cu.member, COALESCE(p.login_name, cu.member),
COALESCE((SELECT MAX(x.created_ms) FROM msg_messages x WHERE x.conversation_id = c.id), c.created_ms)
FROM msg_conversations c JOIN msg_members st ON st.conversation_id = c.id AND st.member = ?
JOIN msg_members cu ON cu.conversation_id = c.id AND cu.member <> ?
LEFT JOIN msg_profiles p ON p.passport_id = cu.member
WHERE c.kind = ? ORDER BY 2 DESC, 5 DESC`, Staff, Staff, ServiceChat)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ServiceRow
	for rows.Next() {
		var r ServiceRow
		var last int64
		if err := rows.Scan(&r.Conversation, &r.Unread, &r.Customer.ID, &r.Customer.Name, &last); err != nil {
			return nil, err
		}
		r.Last = time.UnixMilli(last)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Customer finds a customer by login name or passport id.
func (s *Store) Customer(ctx context.Context, who string) (Member, error) {
	if m, err := s.ByName(ctx, who); err == nil {
		return m, nil
	}
	var m Member
	err := s.DB.QueryRow(ctx, `SELECT passport_id, login_name FROM msg_profiles WHERE passport_id = ?`, who).Scan(&m.ID, &m.Name)
	if err != nil {
		return m, ErrUnknownCustomer
	}
	return m, nil
}

// StaffReply posts the bank staff's text into the customer's service
// conversation (made if missing); the staff have then read it all.
func (s *Service) StaffReply(ctx context.Context, customer, text string) (Message, error) {
	conv, err := s.Store.ServiceConversation(ctx, customer)
	if err != nil {
		return Message{}, err
	}
	return s.Post(ctx, Message{Conversation: conv, Sender: Staff, Kind: KindText, Body: text})
}
