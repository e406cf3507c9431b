package web

import (
	"encoding/csv"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// search is the history page's form, as typed.
type search struct {
	From, To, Min, Max string
}

// line is one movement as the customer reads it.
type line struct {
	Time, What, Other, Memo string
	In, Out                 int64
}

type historyData struct {
	Account ledger.Account
	Q       search
	Query   string // the search as a query string, for the statement links
	Lines   []line
}

// filter reads the search form: dates in the customer's zone (the To date
// included), amounts in yuan. A message key when the input is bad.
func (p *Pages) filter(pr i18n.Printer, q search) (ledger.HistoryFilter, string) {
	var f ledger.HistoryFilter
	day := func(s string) (int64, bool) {
		t, err := time.ParseInLocation("2006-01-02", s, pr.Zone)
		return t.UnixMilli(), err == nil
	}
	if q.From != "" {
		ms, ok := day(q.From)
		if !ok {
			return f, "hist.bad_date"
		}
		f.FromMS = ms
	}
	if q.To != "" {
		ms, ok := day(q.To)
		if !ok {
			return f, "hist.bad_date"
		}
		f.ToMS = ms + 24*3600*1000
	}
	var err error
	if q.Min != "" {
		if f.Min, err = money.ParseYuan(q.Min); err != nil {
			return f, "hist.bad_amount"
		}
	}
	if q.Max != "" {
		if f.Max, err = money.ParseYuan(q.Max); err != nil {
			return f, "hist.bad_amount"
		}
	}
	if (f.ToMS != 0 && f.FromMS >= f.ToMS) || (f.Max != 0 && f.Min > f.Max) {
		return f, "hist.bad_range"
	}
	return f, ""
}

// lines reads the account's history for the request's search; status and a
// message key when the request is refused.
func (p *Pages) lines(r *http.Request, v *view) (historyData, int, string, error) {
	var d historyData
	a, mine, err := p.owned(r.Context(), v.C, r.PathValue("number"))
	if err != nil {
		return d, 0, "", err
	}
	if !mine {
		return d, http.StatusNotFound, "hist.not_yours", nil
	}
	d.Account = a
	q := r.URL.Query()
	d.Q = search{From: trimSpace(q.Get("from")), To: trimSpace(q.Get("to")), Min: trimSpace(q.Get("min")), Max: trimSpace(q.Get("max"))}
	d.Query = "from=" + d.Q.From + "&to=" + d.Q.To + "&min=" + d.Q.Min + "&max=" + d.Q.Max
	f, bad := p.filter(v.P, d.Q)
	if bad != "" {
		return d, http.StatusBadRequest, bad, nil
	}
	ts, err := p.Ledger.History(r.Context(), a.Number, f)
	if err != nil {
		return d, 0, "", err
	}
	for _, t := range ts {
		l := line{Time: v.P.TimeMS(t.CreatedMS), What: describe(v.P, t), Memo: t.Memo}
		if t.Debit == a.Number {
			l.Out, l.Other = t.Amount, t.Credit
		} else {
			l.In, l.Other = t.Amount, t.Debit
		}
		d.Lines = append(d.Lines, l)
	}
	return d, http.StatusOK, "", nil
}

func (p *Pages) history(w http.ResponseWriter, r *http.Request, v *view) {
	d, status, bad, err := p.lines(r, v)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	if bad != "" {
		v.Error = v.P.T(bad)
	}
	v.Title = v.P.T("hist.title", d.Account.Number)
	v.Data = d
	if status == http.StatusNotFound {
		v.Title = v.P.T("acct.title")
		p.render(w, status, "error", v)
		return
	}
	p.render(w, status, "history", v)
}

// statementCSV is the history as CSV (UTF-8 with a byte-order mark, which
// spreadsheet programs need to read Chinese), headed in the page's language.
func (p *Pages) statementCSV(w http.ResponseWriter, r *http.Request, v *view) {
	d, status, bad, err := p.lines(r, v)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	if bad != "" {
		http.Error(w, v.P.T(bad), status)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="statement-`+d.Account.Number+`.csv"`)
	w.Write([]byte("\ufeff"))
	cw := csv.NewWriter(w)
	cw.Write([]string{v.P.T("hist.time"), v.P.T("hist.what"), v.P.T("hist.other"), v.P.T("hist.in"), v.P.T("hist.out"), v.P.T("xfer.memo")})
	amt := func(f int64) string {
		if f == 0 {
			return ""
		}
		return money.Yuan(f)
	}
	for _, l := range d.Lines {
		cw.Write([]string{l.Time, l.What, l.Other, amt(l.In), amt(l.Out), cell(l.Memo)})
	}
	cw.Flush()
}

// cell keeps a spreadsheet from reading text typed by a customer (a memo)
// as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
