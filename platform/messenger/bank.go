package messenger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Bank is what the messenger needs of ebank: the customers' accounts (to
// find where a payment comes from and goes to) and transfers made with a
// grant. *EbankAPI is the production one.
type Bank interface {
	// CurrentAccount is the customer's open current account.
	CurrentAccount(ctx context.Context, owner string) (ledger.Account, error)
	// Transfer moves money, once per key.
	Transfer(ctx context.Context, t TransferRequest) (ledger.Transfer, error)
}

// TransferRequest is a body of ebank's POST /v1/transfers.
type TransferRequest struct {
	Key    string `json:"key"`
	Debit  string `json:"debit_account"`
	Credit string `json:"credit_account"`
	Amount int64  `json:"amount"`
	Grant  string `json:"grant"`
	Code   string `json:"code,omitempty"`
	Memo   string `json:"memo,omitempty"`
}

// BankError is a refusal of ebank's API, with its stable code.
type BankError struct {
	Status  int
	Code    string
	Message string
}

func (e *BankError) Error() string {
	return fmt.Sprintf("ebank transfers API: %d %s: %s", e.Status, e.Code, e.Message)
}

// EbankAPI reads accounts from ebank's ledger and moves money through
// ebank's transfers API (POST /v1/transfers) as a back-end client with the
// scope ebank:holds; the client's id is the origin of the movements at
// ebank.
type EbankAPI struct {
	Ledger  *ledger.Ledger
	BaseURL string // ebank's URL
	ID      string
	Secret  string
	HTTP    *http.Client
}

// CurrentAccount implements Bank.
func (e *EbankAPI) CurrentAccount(ctx context.Context, owner string) (ledger.Account, error) {
	return currentAccount(ctx, e.Ledger, owner)
}

func currentAccount(ctx context.Context, l *ledger.Ledger, owner string) (ledger.Account, error) {
	list, err := l.Accounts(ctx, owner)
	if err != nil {
		return ledger.Account{}, err
	}
	for _, a := range list {
		if a.Kind == ledger.KindCurrent && a.Status == ledger.StatusOpen {
			return a, nil
		}
	}
	return ledger.Account{}, ErrNoAccount
}

// Transfer implements Bank.
func (e *EbankAPI) Transfer(ctx context.Context, t TransferRequest) (ledger.Transfer, error) {
	body, _ := json.Marshal(t)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(e.BaseURL, "/")+"/v1/transfers", bytes.NewReader(body))
	if err != nil {
		return ledger.Transfer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(e.ID, e.Secret)
	hc := e.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ledger.Transfer{}, fmt.Errorf("reaching ebank: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		var eb struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(b, &eb)
		return ledger.Transfer{}, &BankError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	var out ledger.Transfer
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("ebank answered nonsense: %w", err)
	}
	return out, nil
}

// Account returns an account by number (for the balance alerts).
func (e *EbankAPI) Account(ctx context.Context, number string) (ledger.Account, error) {
	return e.Ledger.Account(ctx, number)
}
