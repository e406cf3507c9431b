package web

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"codeberg.org/go-pdf/fpdf"

	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
)

// DefaultStatementFont is the TrueType font with Chinese glyphs that the
// Chinese PDF statement embeds when Pages.StatementFont is empty: Debian's
// fonts-droid-fallback (Apache-2.0), which scripts/deps.sh installs.
const DefaultStatementFont = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"

// cjkFamily is the name the statement gives the embedded font.
const cjkFamily = "cjk"

// statementFont is the font file the Chinese statement embeds.
func (p *Pages) statementFont() string {
	if p.StatementFont != "" {
		return p.StatementFont
	}
	return DefaultStatementFont
}

// CheckStatementFont reports whether the font file at path (empty: the
// default) can be embedded in the Chinese PDF statement: it is read and
// parsed as a TrueType font. The process calls it at start, so that the
// operator learns of a missing font before a customer does.
func CheckStatementFont(path string) error {
	if path == "" {
		path = DefaultStatementFont
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("the Chinese PDF statement's font: %w", err)
	}
	if err := addFont(fpdf.New("P", "mm", "A4", ""), b); err != nil {
		return fmt.Errorf("the Chinese PDF statement's font %s: %w", path, err)
	}
	return nil
}

// addFont registers b as the statement's Unicode font; a file that is no
// TrueType font (fpdf's parser may panic on one) is an error.
func addFont(pdf *fpdf.Fpdf, b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("not a TrueType font fpdf can read (%v)", r)
		}
	}()
	if len(b) < 12 || !(bytes.HasPrefix(b, []byte{0, 1, 0, 0}) || bytes.HasPrefix(b, []byte("true"))) {
		return errors.New("not a TrueType font (an OpenType font with PostScript outlines or a collection is not supported)")
	}
	pdf.AddUTF8FontFromBytes(cjkFamily, "", b)
	return pdf.Error()
}

// statementPDF is the history as a PDF in the page's language. The English
// one is set in the PDF core font Helvetica: text outside Latin-1 (a memo
// in Chinese) is printed as "?" and the statement says so. The Chinese one
// embeds a subset of a TrueType font with Chinese glyphs
// (Pages.StatementFont); when that font cannot be read, the statement is
// printed in English with a line that says why, rather than not at all.
// The CSV statement keeps every character.
func (p *Pages) statementPDF(w http.ResponseWriter, r *http.Request, v *view) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCompression(false) // small, and its text can be searched as is
	cjk, noFont := false, false
	if v.P.Lang == i18n.ZH {
		b, err := os.ReadFile(p.statementFont())
		if err == nil {
			err = addFont(pdf, b)
		}
		if cjk = err == nil; !cjk {
			noFont = true
			pdf = fpdf.New("P", "mm", "A4", "")
			pdf.SetCompression(false)
		}
	}
	pr := v.P
	if !cjk {
		pr = i18n.In(i18n.EN, v.P.Zone)
	}
	v.P = pr
	d, status, bad, err := p.lines(r, v)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	if bad != "" {
		http.Error(w, pr.T(bad), status)
		return
	}
	sp := &stmtPDF{pdf: pdf, cjk: cjk, tr: pdf.UnicodeTranslatorFromDescriptor("")}
	font, cell := sp.font, sp.cell
	text := func(s string) string { // what the fonts can show
		if cjk {
			return s
		}
		return latin(s)
	}
	pdf.SetTitle(pr.T("pdf.title")+" "+d.Account.Number, cjk)
	pdf.SetCreator("egate ebank", false)
	pdf.AddPage()
	font("B", 15)
	cell(0, 9, pr.T("pdf.title"), "", 1, "L")
	if noFont {
		font("B", 10)
		pdf.MultiCell(0, 5, "The Chinese font is not installed on the bank's server, so this statement is printed in English.", "", "L", false)
		pdf.Ln(1)
	}
	font("", 10)
	period := pr.T("pdf.period_all")
	if d.Q.From != "" || d.Q.To != "" {
		period = strings.TrimSpace(pr.T("pdf.period_range", d.Q.From, d.Q.To))
	}
	if d.Q.Min != "" || d.Q.Max != "" {
		period += pr.T("pdf.amounts", d.Q.Min, d.Q.Max)
	}
	for _, l := range []string{
		pr.T("pdf.account", d.Account.Number, pr.T("kind."+d.Account.Kind), text(v.C.Name)),
		pr.T("pdf.period", period),
		pr.T("pdf.balance", money.Yuan(d.Account.Balance()), money.Yuan(d.Account.Available())),
		pr.T("pdf.printed", pr.Time(p.now()), pr.Zone.String()),
	} {
		cell(0, 5.5, l, "", 1, "L")
	}
	pdf.Ln(3)
	cols := []struct {
		head  string
		width float64
		align string
	}{{"hist.time", 36, "L"}, {"hist.what", 32, "L"}, {"hist.other", 40, "L"}, {"hist.in", 26, "R"}, {"hist.out", 26, "R"}, {"xfer.memo", 30, "L"}}
	font("B", 9)
	for _, c := range cols {
		cell(c.width, 6, pr.T(c.head), "B", 0, c.align)
	}
	pdf.Ln(-1)
	font("", 9)
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
		memo := text(l.Memo)
		replaced = replaced || memo != l.Memo
		for i, s := range []string{l.Time, text(l.What), l.Other, amt(l.In), amt(l.Out), memo} {
			cell(cols[i].width, 5.5, s, "", 0, cols[i].align)
		}
		pdf.Ln(-1)
	}
	font("B", 9)
	cell(cols[0].width+cols[1].width+cols[2].width, 6, pr.T("pdf.total"), "T", 0, "L")
	cell(cols[3].width, 6, money.Yuan(in), "T", 0, "R")
	cell(cols[4].width, 6, money.Yuan(out), "T", 0, "R")
	cell(cols[5].width, 6, "", "T", 1, "L")
	if replaced {
		font("I", 8)
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

// stmtPDF sets the statement's type. In English: Helvetica, a PDF core
// font, in its styles. In Chinese: the embedded font for Chinese, which
// has no Latin letters or digits (DroidSansFallbackFull is a fallback
// font), and Helvetica for the runs of Latin-1 in a line (account numbers,
// amounts, times); headings stand out by size and, for their Latin runs,
// by weight.
type stmtPDF struct {
	pdf   *fpdf.Fpdf
	cjk   bool
	style string
	size  float64
	tr    func(string) string // UTF-8 to the core fonts' code page
}

func (s *stmtPDF) font(style string, size float64) {
	s.style, s.size = style, size
	if s.cjk {
		s.pdf.SetFont(cjkFamily, "", size)
		return
	}
	s.pdf.SetFont("Helvetica", style, size)
}

// cell is fpdf's CellFormat (w 0: to the right margin; ln 1: then to the
// next line) with the text set in runs of the two fonts when in Chinese.
func (s *stmtPDF) cell(w, h float64, txt, border string, ln int, align string) {
	pdf := s.pdf
	runs := fontRuns(txt)
	if !s.cjk || len(runs) == 0 || (len(runs) == 1 && !runs[0].latin) {
		pdf.CellFormat(w, h, txt, border, ln, align, false, 0, "")
		return
	}
	x, y := pdf.GetXY()
	if w == 0 {
		pw, _ := pdf.GetPageSize()
		_, _, right, _ := pdf.GetMargins()
		w = pw - right - x
	}
	pdf.CellFormat(w, h, "", border, 0, align, false, 0, "") // the border
	total := 0.0
	for i, r := range runs {
		if r.latin {
			runs[i].text = s.tr(r.text)
			pdf.SetFont("Helvetica", s.style, s.size)
		} else {
			pdf.SetFont(cjkFamily, "", s.size)
		}
		runs[i].width = pdf.GetStringWidth(runs[i].text)
		total += runs[i].width
	}
	margin := pdf.GetCellMargin()
	at := x + margin
	if align == "R" {
		at = x + w - margin - total
	}
	pdf.SetCellMargin(0)
	pdf.SetXY(at, y)
	for _, r := range runs {
		if r.latin {
			pdf.SetFont("Helvetica", s.style, s.size)
		} else {
			pdf.SetFont(cjkFamily, "", s.size)
		}
		pdf.CellFormat(r.width, h, r.text, "", 0, "L", false, 0, "")
	}
	pdf.SetCellMargin(margin)
	s.font(s.style, s.size)
	if ln == 1 {
		pdf.SetXY(x, y)
		pdf.Ln(h)
		return
	}
	pdf.SetXY(x+w, y)
}

// run is a piece of a line set in one font.
type run struct {
	text  string
	latin bool // Helvetica's (printable Latin-1), else the Chinese font's
	width float64
}

// fontRuns cuts s where it changes between Latin-1 and other characters;
// a space goes with the run it is in.
func fontRuns(s string) []run {
	var out []run
	for _, r := range s {
		l := (r >= 0x20 && r < 0x7f) || (r >= 0xa0 && r <= 0xff)
		if n := len(out); n > 0 && (out[n-1].latin == l || r == ' ') {
			out[n-1].text += string(r)
			continue
		}
		out = append(out, run{text: string(r), latin: l})
	}
	return out
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
