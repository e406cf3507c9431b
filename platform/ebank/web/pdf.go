package web

import (
	"bytes"
	"net/http"
	"strings"

	"codeberg.org/go-pdf/fpdf"

	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
)

// statementPDF is the history as a PDF. It is in English whatever the
// page's language, in the PDF core font Helvetica: no CJK font is embedded,
// so text outside Latin-1 (a memo in Chinese) is printed as "?" and the
// statement says so. The CSV statement keeps every character.
func (p *Pages) statementPDF(w http.ResponseWriter, r *http.Request, v *view) {
	en := i18n.In(i18n.EN, v.P.Zone)
	v.P = en
	d, status, bad, err := p.lines(r, v)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	if bad != "" {
		http.Error(w, en.T(bad), status)
		return
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false) // small, and its text can be searched as is
	pdf.SetTitle("eBank statement "+d.Account.Number, false)
	pdf.SetCreator("egate ebank", false)
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 15)
	pdf.CellFormat(0, 9, "eBank statement", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	period := "all"
	if d.Q.From != "" || d.Q.To != "" {
		period = strings.TrimSpace(d.Q.From + " to " + d.Q.To)
	}
	for _, l := range []string{
		"Account " + d.Account.Number + " (" + en.T("kind."+d.Account.Kind) + "), holder " + latin(v.C.Name),
		"Period: " + period + amountRange(d.Q),
		"Balance now: " + money.Yuan(d.Account.Balance()) + " yuan; available " + money.Yuan(d.Account.Available()) + " yuan",
		"Printed " + en.Time(p.now()) + " (" + en.Zone.String() + ")",
	} {
		pdf.CellFormat(0, 5.5, l, "", 1, "L", false, 0, "")
	}
	pdf.Ln(3)
	cols := []struct {
		head  string
		width float64
		align string
	}{{"Time", 36, "L"}, {"Description", 32, "L"}, {"Other account", 40, "L"}, {"In (yuan)", 26, "R"}, {"Out (yuan)", 26, "R"}, {"Note", 30, "L"}}
	pdf.SetFont("Helvetica", "B", 9)
	for _, c := range cols {
		pdf.CellFormat(c.width, 6, c.head, "B", 0, c.align, false, 0, "")
	}
	pdf.Ln(-1)
	pdf.SetFont("Helvetica", "", 9)
	var in, out int64
	replaced := false
	amt := func(f int64) string {
		if f == 0 {
			return ""
		}
		return money.Yuan(f)
	}
	for _, l := range d.Lines {
		in, out = in+l.In, out+l.Out
		memo := latin(l.Memo)
		replaced = replaced || memo != l.Memo
		for i, s := range []string{l.Time, l.What, l.Other, amt(l.In), amt(l.Out), memo} {
			pdf.CellFormat(cols[i].width, 5.5, s, "", 0, cols[i].align, false, 0, "")
		}
		pdf.Ln(-1)
	}
	pdf.SetFont("Helvetica", "B", 9)
	pdf.CellFormat(cols[0].width+cols[1].width+cols[2].width, 6, "Total", "T", 0, "L", false, 0, "")
	pdf.CellFormat(cols[3].width, 6, money.Yuan(in), "T", 0, "R", false, 0, "")
	pdf.CellFormat(cols[4].width, 6, money.Yuan(out), "T", 0, "R", false, 0, "")
	pdf.CellFormat(cols[5].width, 6, "", "T", 1, "L", false, 0, "")
	if replaced {
		pdf.SetFont("Helvetica", "I", 8)
		pdf.Ln(2)
		pdf.MultiCell(0, 4, "Characters this PDF cannot show (e.g. Chinese) are printed as '?'; the CSV statement has them all.", "", "L", false)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		p.fail(w, r, v, err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `attachment; filename="statement-`+d.Account.Number+`.pdf"`)
	w.Write(buf.Bytes())
}

func amountRange(q search) string {
	if q.Min == "" && q.Max == "" {
		return ""
	}
	return "; amounts " + q.Min + " to " + q.Max + " yuan"
}

// latin keeps printable Latin-1 (what the core fonts show) and prints any
// other character as "?".
func latin(s string) string {
	var b strings.Builder
	for _, r := range s {
		if (r >= 0x20 && r < 0x7f) || (r >= 0xa0 && r <= 0xff) {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}
