package web

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/internal/testenv/chromiumtest"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// pdfText is the text of a PDF as poppler's pdftotext (an independent
// reader) extracts it, in reading order.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	tool := testenv.NeedCommand(t, "pdftotext", "poppler-utils")
	f := filepath.Join(t.TempDir(), "s.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "-layout", "-enc", "UTF-8", f, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return string(out)
}

// pdfShot renders the PDF's first page as name.png (80 dpi, pdftoppm) in
// the screenshots' folder, for a person to look at.
func pdfShot(t *testing.T, pdf []byte, name string) {
	t.Helper()
	tool := testenv.NeedCommand(t, "pdftoppm", "poppler-utils")
	dir := chromiumtest.Dir(t)
	f := filepath.Join(t.TempDir(), name+".pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "-png", "-r", "80", "-f", "1", "-singlefile", f, filepath.Join(dir, name)).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	t.Logf("first page of the %s statement: %s.png", name, filepath.Join(dir, name))
}

// TestStatementPDF: the statement PDF in the page's language. The Chinese
// one embeds the Chinese font: pdftotext reads its Chinese headings, the
// lines' descriptions and memos, and the amounts; the English one is as it
// was (Helvetica, a Chinese memo as "?"); with the font missing, the
// Chinese statement still downloads, in English, and says in English that
// the Chinese font is not installed.
func TestStatementPDF(t *testing.T) {
	if _, err := os.Stat(DefaultStatementFont); err != nil {
		testenv.Missing(t, "the Chinese font "+DefaultStatementFont, "apt-get install fonts-droid-fallback")
	}
	if err := CheckStatementFont(""); err != nil {
		t.Fatalf("CheckStatementFont: %v", err)
	}
	r := newRig(t, storetest.SQLite(t))
	ctx := context.Background()
	a := r.alice[0].Number
	for _, tr := range []struct {
		key, memo string
		amount    int64
	}{{"t1", "房租 rent", 3_300_00}, {"t2", "午饭", 12_34}, {"t3", "books", 234_567_89}} {
		if _, err := r.l.Transfer(ctx, ledger.Request{Origin: "test", Key: tr.key, Debit: a, Credit: r.bob[0].Number, Amount: tr.amount, Grant: "g", Code: "transfer", Memo: tr.memo}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(t *testing.T, lang string) []byte {
		t.Helper()
		status, body := r.as(t, "p-alice", lang).do("GET", "/accounts/"+a+"/statement.pdf?from=2000-01-01&to=2099-12-31", nil)
		if status != 200 || !strings.HasPrefix(body, "%PDF-") {
			t.Fatalf("status %d: %.200q", status, body)
		}
		return []byte(body)
	}
	for _, c := range []struct {
		name, lang, font string
		want, not        []string
	}{
		{name: "zh", lang: "zh-CN",
			want: []string{"网上银行对账单", "账户 " + a + "（活期），户名 alice", "期间：2000-01-01 至 2099-12-31", "当前余额：", "可用余额",
				"时间", "摘要", "对方账户", "收入（元）", "支出（元）", "附言", "合计", "房租 rent", "午饭", "3,300.00", "12.34", "234,567.89", "237,880.23"},
			not: []string{"eBank statement", "?", "not installed"}},
		{name: "en", lang: "en",
			want: []string{"eBank statement", "Account " + a + " (Current), holder alice", "Period: 2000-01-01 to 2099-12-31", "Balance now:",
				"Time", "Description", "Other account", "In (yuan)", "Out (yuan)", "Note", "Total", "?? rent", "3,300.00", "12.34", "234,567.89", "237,880.23",
				"printed as '?'"},
			not: []string{"网上银行", "not installed"}},
		{name: "zh-no-font", lang: "zh-CN", font: filepath.Join(t.TempDir(), "no-such-font.ttf"),
			want: []string{"eBank statement", "The Chinese font is not installed on the bank's server, so this statement is printed in English.",
				"Account " + a, "Total", "237,880.23", "printed as '?'"},
			not: []string{"网上银行"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r.pages.StatementFont = c.font
			pdf := get(t, c.lang)
			text := pdfText(t, pdf)
			flat := strings.Join(strings.Fields(text), " ")
			for _, w := range c.want {
				if !strings.Contains(text, w) && !strings.Contains(flat, w) {
					t.Errorf("the %s statement lacks %q:\n%s", c.name, w, text)
				}
			}
			for _, w := range c.not {
				if strings.Contains(text, w) {
					t.Errorf("the %s statement has %q:\n%s", c.name, w, text)
				}
			}
			pdfShot(t, pdf, "ebank-statement-"+c.name)
		})
	}
	t.Run("a file that is not a font", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.ttf")
		os.WriteFile(bad, []byte("\x00\x01\x00\x00 but nothing more of a font"), 0o600)
		if err := CheckStatementFont(bad); err == nil {
			t.Fatal("CheckStatementFont accepted a broken file")
		}
		r.pages.StatementFont = bad
		if text := pdfText(t, get(t, "zh-CN")); !strings.Contains(text, "The Chinese font is not installed") {
			t.Fatalf("the statement with a broken font:\n%s", text)
		}
	})
}
