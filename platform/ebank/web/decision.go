package web

import (
	"strings"

	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
)

// decisionText says a decision to the customer. The service's Message is
// English; the Chinese page says the same from the decision's structured
// reasons (which limit of which level, what is left of it) and its tools.
func decisionText(p i18n.Printer, d txclient.Decision, amount int64) string {
	if p.Lang == i18n.EN && d.Message != "" {
		return d.Message
	}
	var b strings.Builder
	period := ""
	own := false
	rule := false
	for _, r := range d.Reasons {
		switch r.Code {
		case "limit", "own_limit":
			own = r.Code == "own_limit"
			whose := p.T("dec.whose_bank")
			if own {
				whose = p.T("dec.whose_own")
			}
			period = r.Limit
			if r.Limit == "per-day" || r.Limit == "per-year" {
				b.WriteString(p.T("dec.limit_period", money.Yuan(amount), whose, r.Level, p.T("dec."+r.Limit), money.Yuan(max(r.Max-r.Used, 0)), money.Yuan(r.Max)))
			} else {
				b.WriteString(p.T("dec.limit_txn", money.Yuan(amount), whose, r.Level, money.Yuan(r.Max)))
			}
		case "rule", "rule_error":
			if !rule {
				b.WriteString(p.T("dec.rule"))
			}
			rule = true
		}
	}
	switch d.Decision {
	case txclient.Deny:
		switch {
		case period == "":
			b.WriteString(p.T("dec.deny_rule"))
		case own:
			b.WriteString(p.T("dec.deny_own"))
		case period == "per-day":
			b.WriteString(p.T("dec.deny_day"))
		case period == "per-year":
			b.WriteString(p.T("dec.deny_year"))
		default:
			b.WriteString(p.T("dec.deny_txn"))
		}
	case txclient.Allow:
		var names []string
		for _, t := range d.Tools {
			if t.Level >= d.Level {
				names = append(names, p.T("tool."+t.Name))
			}
		}
		switch {
		case len(names) == 0 && own:
			b.WriteString(p.T("dec.no_tool_own", money.Yuan(amount), d.Level))
			b.WriteString(p.T("dec.deny_own"))
		case len(names) == 0:
			b.WriteString(p.T("dec.no_tool", money.Yuan(amount), d.Level))
		default:
			b.WriteString(p.T("dec.confirm_with", strings.Join(names, p.T("dec.or"))))
		}
	}
	return b.String()
}
