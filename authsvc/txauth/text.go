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
	if in.Lang == intent.LangZH {
		return textZH(in)
	}
	amt := money.Yuan(in.Amount) + " " + currencyWord(in.Currency)
	payee, payer := Mask(in.Payee), Mask(in.Payer)
	switch in.Kind {
	case intent.Transfer:
		return fmt.Sprintf("Transfer %s to %s from %s", amt, payee, payer)
	case intent.Withdrawal:
		return fmt.Sprintf("Withdraw %s at %s from %s", amt, payee, payer)
	case intent.FriendTransfer:
		return fmt.Sprintf("Send %s to %s from %s", amt, payee, payer)
	case intent.AAShare:
		return fmt.Sprintf("Pay your share of %s to %s from %s", amt, payee, payer)
	case intent.Refund:
		return fmt.Sprintf("Refund %s to %s from %s", amt, payee, payer)
	}
	return fmt.Sprintf("Pay %s to %s from %s", amt, payee, payer)
}

// textEN is Text in English whatever the intent's language: the alerts
// are English sentences (authsvc/alerts) that the pages translate whole
// (internal/i18n), the text in them included.
func textEN(in intent.Intent) string {
	in.Lang = ""
	return Text(in)
}

// textZH is Text in Simplified Chinese: what is done, to whom, how much,
// and from which account in brackets, as a bank's confirmation says it.
func textZH(in intent.Intent) string {
	amt := money.Yuan(in.Amount) + " " + currencyWordZH(in.Currency)
	payee, payer := Mask(in.Payee), Mask(in.Payer)
	switch in.Kind {
	case intent.Transfer:
		return fmt.Sprintf("向 %s 转账 %s（付款账户 %s）", payee, amt, payer)
	case intent.Withdrawal:
		return fmt.Sprintf("在 %s 取款 %s（取款账户 %s）", payee, amt, payer)
	case intent.FriendTransfer:
		return fmt.Sprintf("向好友 %s 转账 %s（付款账户 %s）", payee, amt, payer)
	case intent.AAShare:
		return fmt.Sprintf("向 %s 支付 AA 分摊款 %s（付款账户 %s）", payee, amt, payer)
	case intent.Refund:
		return fmt.Sprintf("向 %s 退款 %s（退款账户 %s）", payee, amt, payer)
	}
	return fmt.Sprintf("向 %s 付款 %s（付款账户 %s）", payee, amt, payer)
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
