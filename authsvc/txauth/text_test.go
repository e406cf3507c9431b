package txauth

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestText: the text of every kind in both languages; an intent without a
// language is in English, as before the language existed.
func TestText(t *testing.T) {
	t.Parallel()
	base := intent.Intent{Payer: "6222000000000001", Payee: "6222000000000002", Amount: 123456, Currency: "CNY"}
	for _, tc := range []struct {
		kind   intent.Kind
		payee  string
		en, zh string
	}{
		{intent.Transfer, "", "Transfer 1,234.56 yuan to 6222…0002 from 6222…0001", "向 6222…0002 转账 1,234.56 元（付款账户 6222…0001）"},
		{intent.Payment, "M-acme", "Pay 1,234.56 yuan to M-acme from 6222…0001", "向 M-acme 付款 1,234.56 元（付款账户 6222…0001）"},
		{intent.Withdrawal, "ATM-1", "Withdraw 1,234.56 yuan at ATM-1 from 6222…0001", "在 ATM-1 取款 1,234.56 元（取款账户 6222…0001）"},
		{intent.FriendTransfer, "", "Send 1,234.56 yuan to 6222…0002 from 6222…0001", "向好友 6222…0002 转账 1,234.56 元（付款账户 6222…0001）"},
		{intent.AAShare, "", "Pay your share of 1,234.56 yuan to 6222…0002 from 6222…0001", "向 6222…0002 支付 AA 分摊款 1,234.56 元（付款账户 6222…0001）"},
		{intent.Refund, "", "Refund 1,234.56 yuan to 6222…0002 from 6222…0001", "向 6222…0002 退款 1,234.56 元（退款账户 6222…0001）"},
		{intent.ReceiveByQR, "", "Pay 1,234.56 yuan to 6222…0002 from 6222…0001", "向 6222…0002 付款 1,234.56 元（付款账户 6222…0001）"},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			in := base
			in.Kind = tc.kind
			if tc.payee != "" {
				in.Payee = tc.payee
			}
			for _, l := range []struct{ lang, want string }{{"", tc.en}, {intent.LangEN, tc.en}, {intent.LangZH, tc.zh}} {
				in.Lang = l.lang
				if got := Text(in); got != l.want {
					t.Errorf("lang %q: %q, want %q", l.lang, got, l.want)
				}
			}
			// The pages say an English text (an alert's, an intent's
			// without a language) in Chinese as the Chinese intent's.
			in.Lang = ""
			if got := i18n.In(i18n.ZH, nil).TxText(Text(in)); got != tc.zh {
				t.Errorf("the pages' Chinese for %q is %q, the Chinese intent's text %q", Text(in), got, tc.zh)
			}
		})
	}
	big := base
	big.Kind, big.Lang, big.Amount = intent.Transfer, intent.LangZH, intent.MaxAmount
	if got, want := Text(big), "向 6222…0002 转账 100,000,000,000.00 元（付款账户 6222…0001）"; got != want {
		t.Errorf("largest amount: %q, want %q", got, want)
	}
}

var smsCodeZH = regexp.MustCompile(`】验证码 (\d{6})，`)

// TestChineseIntent: an intent in Chinese is decided, challenged and
// proved with its Chinese text (the SMS says it in Chinese), the same
// intent in English is another intent with the English text, and a proof
// naming the intent with its language changed is refused.
func TestChineseIntent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db, rigOpt{})
		ctx := context.Background()
		c := r.customer(t)
		zh := c.intent(500*yuan, "k-zh")
		zh.Lang = intent.LangZH
		en := zh
		en.Lang, en.IdempotencyKey = intent.LangEN, "k-en"
		want := "向 6222…0002 转账 500.00 元（付款账户 " + Mask(c.payer) + "）"
		d, err := r.c.Authorize(ctx, zh)
		if err != nil {
			t.Fatal(err)
		}
		if d.Text != want || d.Intent != zh.HashHex() {
			t.Fatalf("decision text %q (intent %s), want %q", d.Text, d.Intent, want)
		}
		de, err := r.c.Authorize(ctx, en)
		if err != nil {
			t.Fatal(err)
		}
		if de.Intent == d.Intent || !strings.HasPrefix(de.Text, "Transfer 500.00 yuan to 6222…0002") {
			t.Fatalf("the English intent: %s %q", de.Intent, de.Text)
		}
		ch, err := r.c.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: "sms"})
		if err != nil {
			t.Fatal(err)
		}
		if ch.Text != want {
			t.Fatalf("challenge text %q, want %q", ch.Text, want)
		}
		msgs, err := r.set.SMSSink.List(ctx, mobile, 1)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("SMS: %v %v", msgs, err)
		}
		if !strings.Contains(msgs[0].Body, "，用于确认："+want+"。") {
			t.Fatalf("SMS %q does not say the Chinese text", msgs[0].Body)
		}
		code := smsCodeZH.FindStringSubmatch(msgs[0].Body)
		if code == nil {
			t.Fatalf("no code in %q", msgs[0].Body)
		}
		swapped := zh
		swapped.Lang = intent.LangEN
		_, err = r.c.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: code[1], Intent: &swapped})
		wantCode(t, err, "intent_changed")
		g, err := r.c.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: ch.ID, Response: code[1], Intent: &zh})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.c.Execute(ctx, g.Token, en); err == nil {
			t.Fatal("the Chinese intent's grant executed the English intent")
		}
		if _, err := r.c.Execute(ctx, g.Token, zh); err != nil {
			t.Fatal(err)
		}
	})
}
