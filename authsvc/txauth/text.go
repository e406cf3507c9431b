package txauth

import (
	"fmt"
	"strings"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/internal/money"
)

// Mask shortens an account number for display: 6222…0001.
func Mask(account string) string {
	r := []rune(account)
	if len(r) <= 8 {
		return account
	}
	return string(r[:4]) + "…" + string(r[len(r)-4:])
}

// Text is the transaction as the customer confirms it (what the SMS says,
// what a 2nd-generation U-shield shows and signs), in the intent's language:
// "Transfer 1,234.56 yuan to 6222…0002 from 6222…0001", or for an intent in
// Chinese "向 6222…0002 转账 1,234.56 元（付款账户 6222…0001）". An intent
// without a language is in English. The language is part of the intent's
// hash, so the text signed is the text of the intent executed.
func Text(in intent.Intent) string {
	p, ok := phrasings[in.Kind]
	if !ok {
		p = payPhrasing
	}
	f, currency := p.en, currencyWord(in.Currency)
	if in.Lang == intent.LangZH {
		f, currency = p.zh, currencyWordZH(in.Currency)
	}
	return fmt.Sprintf(f, money.Yuan(in.Amount)+" "+currency, Mask(in.Payee), Mask(in.Payer))
}

// phrasing is a kind's text in each language: %[1]s the amount with its
// currency, %[2]s the payee, %[3]s the payer (masked). The Chinese says
// what is done, to whom, how much, and from which account in brackets, as
// a bank's confirmation says it.
type phrasing struct{ en, zh string }

var phrasings = map[intent.Kind]phrasing{
	intent.Transfer:       {"Transfer %[1]s to %[2]s from %[3]s", "向 %[2]s 转账 %[1]s（付款账户 %[3]s）"},
	intent.Withdrawal:     {"Withdraw %[1]s at %[2]s from %[3]s", "在 %[2]s 取款 %[1]s（取款账户 %[3]s）"},
	intent.FriendTransfer: {"Send %[1]s to %[2]s from %[3]s", "向好友 %[2]s 转账 %[1]s（付款账户 %[3]s）"},
	intent.AAShare:        {"Pay your share of %[1]s to %[2]s from %[3]s", "向 %[2]s 支付 AA 分摊款 %[1]s（付款账户 %[3]s）"},
	intent.Refund:         {"Refund %[1]s to %[2]s from %[3]s", "向 %[2]s 退款 %[1]s（退款账户 %[3]s）"},
}

// payPhrasing is the text of any other kind (a payment).
var payPhrasing = phrasing{"Pay %[1]s to %[2]s from %[3]s", "向 %[2]s 付款 %[1]s（付款账户 %[3]s）"}

// textEN is Text in English whatever the intent's language: the alerts
// are English sentences (authsvc/alerts) that the pages translate whole
// (internal/i18n), the text in them included.
func textEN(in intent.Intent) string {
	in.Lang = ""
	return Text(in)
}

func currencyWord(c string) string {
	if c == "CNY" {
		return "yuan"
	}
	return c
}

func currencyWordZH(c string) string {
	if c == "CNY" {
		return "元"
	}
	return c
}

// toolWords names a tool for a customer.
var toolWords = map[string]string{
	"sms":      "an SMS code",
	"gridcard": "your grid card",
	"otp":      "your dynamic-password token",
	"ushield":  "your U-shield",
	"piv":      "your PIV card",
	"ushield2": "your 2nd-generation U-shield",
}

// levelWords says which kinds of tool reach a level.
var levelWords = map[int]string{
	1: "your password",
	2: "an SMS code or a grid card",
	3: "a dynamic-password token",
	4: "a U-shield or a PIV card",
	5: "a 2nd-generation U-shield",
}

func toolWord(name string) string {
	if w, ok := toolWords[name]; ok {
		return w
	}
	return name
}

// reachWords says which tools reach level or above: "a dynamic-password
// token or stronger".
func reachWords(level, top int) string {
	w, ok := levelWords[level]
	if !ok {
		w = fmt.Sprintf("a tool of level %d", level)
	}
	if level < top {
		w += " or stronger"
	}
	return w
}

func orList(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

func periodWords(p limits.Period) string {
	switch p {
	case limits.PerDay:
		return "daily"
	case limits.PerYear:
		return "yearly"
	}
	return "per-transaction"
}

// limitSentence says which limit of which level an amount is over.
func limitSentence(e *limits.ExceededError, own bool) string {
	whose := "the bank's"
	if own {
		whose = "your own"
	}
	if e.Period == limits.PerTransaction {
		return fmt.Sprintf("%s yuan is over %s level-%d limit of %s yuan per transaction.", money.Yuan(e.Amount), whose, e.Level, money.Yuan(e.Max))
	}
	left := max(e.Max-e.Used, 0)
	return fmt.Sprintf("%s yuan is over what is left of %s level-%d %s limit: %s of %s yuan.", money.Yuan(e.Amount), whose, e.Level, periodWords(e.Period), money.Yuan(left), money.Yuan(e.Max))
}
