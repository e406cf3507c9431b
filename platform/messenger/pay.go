package messenger

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/ebank/web"
)

// Authorizer is what the payment pages need of the transaction
// authorization service: the same as ebank's transfer pages
// (*txclient.Client in production).
type Authorizer = web.Authorizer

// BalanceAlerter posts balance-change alerts; *txclient.Client is one.
type BalanceAlerter = web.BalanceAlerter

// What a payment form pays.
const (
	PayTransfer = "transfer" // a friend transfer in a conversation
	PayAA       = "aa"       // a share of an AA collection
	PayQR       = "qr"       // a receive QR
)

// Service is the messenger: conversations in the Store, live events in
// the Hub, payments authorized by Auth and made by Bank.
type Service struct {
	Store  *Store
	Hub    *Hub
	Bank   Bank
	Auth   Authorizer
	Alerts BalanceAlerter // nil: no balance alerts
	// PendingTTL is how long a friend transfer waits for its payer's
	// proof before it shows as expired [DefaultPendingTTL].
	PendingTTL time.Duration
}

// Post stores m and tells the pages open on its conversation.
func (s *Service) Post(ctx context.Context, m Message) (Message, error) {
	m, added, err := s.Store.Post(ctx, m)
	if err == nil && added {
		s.Hub.Publish(Event{Message: m})
	}
	return m, err
}

// Send posts a text message.
func (s *Service) Send(ctx context.Context, conv, sender, text string) (Message, error) {
	return s.Post(ctx, Message{Conversation: conv, Sender: sender, Kind: KindText, Body: text})
}

// setState changes a message's state and tells the pages.
func (s *Service) setState(ctx context.Context, conv, ref, state string) {
	if m, err := s.Store.SetState(ctx, conv, ref, state); err == nil {
		s.Hub.Publish(Event{Message: m, Update: true})
	}
}

// PayForm is a payment form as posted: every step carries it in hidden
// fields and checks all of it again.
type PayForm struct {
	What   string // PayTransfer, PayAA, PayQR
	Conv   string // transfer: the conversation
	To     string // transfer: the payee's passport id
	AA     string // aa: the collection
	QR     string // qr: the receive code's token
	Payee  string // qr: the payee the page showed
	Amount string // yuan, as typed (transfer; qr without a fixed amount)
	Memo   string
	Key    string // the form's idempotency key (transfer, qr)
	// TxLang is the language of the text the customer confirms and signs
	// (intent.Lang; empty is English): the pages set it from the page the
	// payment started on and carry it to the end.
	TxLang string
}

// Pay is a checked payment form.
type Pay struct {
	Form          PayForm
	Kind          intent.Kind
	Conv          string // "" for a QR payment: the payer's and payee's direct chat
	Payer, Payee  Member
	Debit, Credit ledger.Account
	Amount        int64
	Key           string // the ledger key at ebank
	Ref           string // the AA collection's id
	Memo          string
	In            intent.Intent
}

// PayBody is the JSON body of a transfer or QR payment message.
type PayBody struct {
	Payee     string `json:"payee"`
	PayeeName string `json:"payee_name"`
	Memo      string `json:"memo,omitempty"`
	// Reason is why a friend transfer was not made (refused): a refusal's code.
	Reason string `json:"reason,omitempty"`
}

// Resolve checks f for payer (device and ip go into the intent): who is
// paid, from and into which accounts, how much. A refusal is an *Error.
func (s *Service) Resolve(ctx context.Context, payer Member, f PayForm, device, ip string) (Pay, error) {
	p := Pay{Form: f, Payer: payer, Memo: strings.TrimSpace(f.Memo), Key: f.Key}
	if utf8.RuneCountInString(p.Memo) > 60 {
		p.Memo = string([]rune(p.Memo)[:60])
	}
	amount := func() error {
		a, err := money.ParseYuan(f.Amount)
		if err != nil || a <= 0 {
			return ErrBadAmount
		}
		p.Amount = a
		return nil
	}
	switch f.What {
	case PayTransfer:
		p.Kind = intent.FriendTransfer
		c, err := s.Store.Get(ctx, f.Conv, payer.ID)
		if err != nil {
			return p, err
		}
		if c.Kind != Direct && c.Kind != Group {
			return p, ErrNotPayee
		}
		to := f.To
		if to == "" && c.Kind == Direct {
			for _, m := range c.Members {
				if m.ID != payer.ID {
					to = m.ID
				}
			}
		}
		if to == payer.ID {
			return p, ErrSelf
		}
		for _, m := range c.Members {
			if m.ID == to {
				p.Payee = m
			}
		}
		if p.Payee.ID == "" {
			return p, ErrNotPayee
		}
		p.Conv = c.ID
		if err := amount(); err != nil {
			return p, err
		}
	case PayAA:
		p.Kind = intent.AAShare
		a, err := s.Store.AA(ctx, f.AA)
		if err != nil {
			return p, err
		}
		if _, err := s.Store.Get(ctx, a.Conversation, payer.ID); err != nil {
			if errors.Is(err, ErrNotMember) {
				return p, ErrAANotMember
			}
			return p, err
		}
		sh, err := a.CheckPayable(payer.ID)
		if err != nil {
			return p, err
		}
		p.Conv, p.Ref, p.Amount = a.Conversation, a.ID, sh.Amount
		p.Payee = Member{ID: a.Collector, Name: a.CollectorName}
		p.Key = "aa:" + a.ID + ":" + payer.ID // one payment per share, whatever the form
		if p.Memo == "" {
			p.Memo = a.Memo
		}
	case PayQR:
		p.Kind = intent.ReceiveByQR
		c, err := s.Store.ReceiveCode(ctx, f.QR)
		if err != nil {
			return p, err
		}
		if f.Payee != c.Payee {
			return p, ErrQRWrongPayee
		}
		if c.Payee == payer.ID {
			return p, ErrQROwn
		}
		p.Payee = Member{ID: c.Payee, Name: c.Name}
		if c.Amount > 0 {
			p.Amount = c.Amount
		} else if err := amount(); err != nil {
			return p, err
		}
		if p.Memo == "" {
			p.Memo = c.Memo
		}
	default:
		return p, ErrExpired
	}
	if p.Key == "" || len(p.Key) > 100 {
		return p, ErrExpired
	}
	var err error
	if p.Debit, err = s.Bank.CurrentAccount(ctx, payer.ID); err != nil {
		return p, err
	}
	if p.Credit, err = s.Bank.CurrentAccount(ctx, p.Payee.ID); err != nil {
		return p, err
	}
	if p.Amount > p.Debit.Available() {
		return p, ErrFunds
	}
	p.In = intent.Intent{Customer: payer.ID, Channel: intent.Web, Kind: p.Kind, Payer: p.Debit.Number, Payee: p.Credit.Number,
		Amount: p.Amount, Currency: ledger.Currency, Device: device, ClientIP: ip, IdempotencyKey: p.Key, Lang: f.TxLang}
	return p, nil
}

// Done looks for the payment already made with p's key.
func (s *Service) Done(ctx context.Context, p Pay) (Message, bool) {
	var conv, ref string
	if s.Store.DB.QueryRow(ctx, `SELECT conversation_id, id FROM msg_payments WHERE pay_key = ? AND state = 'done'`, p.Key).Scan(&conv, &ref) != nil {
		return Message{}, false
	}
	m, err := s.Store.ByRef(ctx, conv, "pay:"+ref)
	return m, err == nil
}

// Complete makes the payment whose intent was executed (grant consumed):
// the AA share is claimed, ebank moves the money under p.Key (once, even
// when retried), both sides see a message and get balance alerts. On a
// refusal nothing moved and the share is due again; the caller cancels
// the intent.
func (s *Service) Complete(ctx context.Context, p Pay, intentHash string) (Message, error) {
	if p.Kind == intent.AAShare {
		if err := s.Store.ClaimShare(ctx, p.Ref, p.Payer.ID, p.Key); err != nil {
			return Message{}, err
		}
	}
	t, err := s.Bank.Transfer(ctx, TransferRequest{Key: p.Key, Debit: p.Debit.Number, Credit: p.Credit.Number, Amount: p.Amount,
		Grant: intentHash, Code: string(p.Kind), Memo: strings.TrimSpace(p.Payer.Name + " → " + p.Payee.Name + " " + p.Memo)})
	if err != nil {
		if p.Kind == intent.AAShare {
			s.Store.FinishShare(context.WithoutCancel(ctx), p.Ref, p.Payer.ID, p.Key, false)
		}
		var be *BankError
		if errors.As(err, &be) {
			if be.Code == "insufficient_funds" {
				return Message{}, ErrFunds
			}
			return Message{}, ErrPaymentRefused
		}
		return Message{}, err
	}
	ctx = context.WithoutCancel(ctx) // the money moved: record it whatever the browser does
	conv := p.Conv
	if conv == "" {
		if conv, err = s.Store.Direct(ctx, p.Payer.ID, p.Payee.ID); err != nil {
			return Message{}, err
		}
	}
	id := newID()
	now := s.Store.now().UnixMilli()
	if _, err := s.Store.DB.Exec(ctx, `INSERT INTO msg_payments (id, kind, conversation_id, payer, payee, amount, ref, pay_key, intent, transfer_id, state, memo, created_ms, updated_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'done', ?, ?, ?) ON CONFLICT DO NOTHING`,
		id, string(p.Kind), conv, p.Payer.ID, p.Payee.ID, p.Amount, p.Ref, p.Key, intentHash, t.ID, p.Memo, now, now); err != nil {
		return Message{}, err
	}
	s.Store.DB.QueryRow(ctx, `SELECT id FROM msg_payments WHERE pay_key = ?`, p.Key).Scan(&id)
	// a friend transfer's pending row (Pending) becomes done: the money moved
	if _, err := s.Store.DB.Exec(ctx, `UPDATE msg_payments SET state = 'done', transfer_id = ?, intent = ?, updated_ms = ? WHERE id = ? AND state <> 'done'`,
		t.ID, intentHash, now, id); err != nil {
		return Message{}, err
	}
	var m Message
	switch p.Kind {
	case intent.AAShare:
		if err := s.Store.FinishShare(ctx, p.Ref, p.Payer.ID, p.Key, true); err != nil {
			return Message{}, err
		}
		m, err = s.Post(ctx, Message{Conversation: conv, Sender: p.Payer.ID, Kind: KindAAPaid, Body: p.Ref, Amount: p.Amount, Ref: "pay:" + id, State: "done"})
	default:
		kind := KindTransfer
		if p.Kind == intent.ReceiveByQR {
			kind = KindQR
		}
		body := payBody(p, "")
		m, err = s.Post(ctx, Message{Conversation: conv, Sender: p.Payer.ID, Kind: kind, Body: body, Amount: p.Amount, Ref: "pay:" + id, State: StateDone})
		if err == nil && m.State != StateDone { // the pending message, updated in place
			s.settleMessage(ctx, conv, m.Ref, StateDone, body)
			m, err = s.Store.ByRef(ctx, conv, m.Ref)
		}
	}
	if err != nil {
		return m, err
	}
	if !t.Replayed {
		s.alert(ctx, t)
	}
	return m, nil
}

// alert posts the balance-change alerts of t to payer and payee; an alert
// that cannot be posted is left: the payment stands.
func (s *Service) alert(ctx context.Context, t ledger.Transfer) {
	if s.Alerts == nil {
		return
	}
	for _, side := range []struct {
		number string
		sign   int64
		id     string
	}{{t.Debit, -1, "msg:" + t.ID + ":out"}, {t.Credit, 1, "msg:" + t.ID + ":in"}} {
		a, err := s.accountByNumber(ctx, side.number)
		if err != nil {
			continue
		}
		s.Alerts.Balance(ctx, txclient.BalanceAlert{ID: side.id, Customer: a.Owner, Account: a.Number, Amount: side.sign * t.Amount,
			Balance: a.Balance(), Currency: ledger.Currency, Description: t.Code})
	}
}

func (s *Service) accountByNumber(ctx context.Context, number string) (ledger.Account, error) {
	if l, ok := s.Bank.(interface {
		Account(context.Context, string) (ledger.Account, error)
	}); ok {
		return l.Account(ctx, number)
	}
	return ledger.Account{}, ErrNoAccount
}
