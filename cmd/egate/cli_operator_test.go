package main

import (
	"context"
	"encoding/json"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// opBench is an adminBench whose database is SQLite or PostgreSQL: the
// operator commands run the same on both.
type opBench struct {
	*adminBench
	dsn string // --db: the SQLite file or a postgres:// URL
}

// eachEngine runs f on a fresh bench with SQLite and with a fresh
// PostgreSQL database (EGATE_TEST_PG_DSN).
func eachEngine(t *testing.T, f func(t *testing.T, b *opBench)) {
	t.Run("sqlite", func(t *testing.T) {
		b := newAdminBench(t)
		f(t, &opBench{adminBench: b, dsn: b.db})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		b := newAdminBench(t)
		for i, fl := range b.flags {
			if fl == "--db" {
				b.flags[i+1] = dsn
			}
		}
		f(t, &opBench{adminBench: b, dsn: dsn})
	})
}

// op runs egate admin ARGS... --db DSN (no HSM flags).
func (b *opBench) op(t *testing.T, args ...string) result {
	t.Helper()
	return b.run(t, append(append([]string{"admin"}, args...), "--db", b.dsn)...)
}

func (b *opBench) open(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dbConfig(b.dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func (b *opBench) addCustomer(t *testing.T, login string) string {
	t.Helper()
	r := b.op(t, "user", "add", "--login", login, "--mobile", "13812345678", "--reserved-message", "red lantern 88")
	m := regexp.MustCompile(`registered (\S+) \(login name `).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("user add: %+v", r)
	}
	return m[1]
}

type auditLine struct {
	Seq    int64             `json:"seq"`
	Kind   string            `json:"kind"`
	Fields map[string]string `json:"fields"`
}

// audit reads the whole log through egate admin audit tail.
func (b *opBench) audit(t *testing.T) []auditLine {
	t.Helper()
	r := b.op(t, "audit", "tail", "-n", "10000")
	if r.code != 0 {
		t.Fatalf("audit tail: %+v", r)
	}
	var out []auditLine
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" {
			continue
		}
		var a auditLine
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, a)
	}
	return out
}

// lastAudit checks that the log's last record is kind with want's fields.
func (b *opBench) lastAudit(t *testing.T, kind string, want map[string]string) {
	t.Helper()
	recs := b.audit(t)
	if len(recs) == 0 {
		t.Fatalf("no audit record, want %s", kind)
	}
	last := recs[len(recs)-1]
	if last.Kind != kind {
		t.Fatalf("last audit record is %s %v, want %s", last.Kind, last.Fields, kind)
	}
	for k, v := range want {
		if last.Fields[k] != v {
			t.Fatalf("audit %s: field %s = %q, want %q (record %v)", kind, k, last.Fields[k], v, last.Fields)
		}
	}
}

func osUser(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil || u.Username == "" {
		t.Fatalf("no OS user: %v", err)
	}
	return u.Username
}

// tokenField reads one line "name  value" of egate admin token show.
func tokenField(t *testing.T, out, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s{2,}(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in:\n%s", name, out)
	}
	return strings.TrimSpace(m[1])
}

// egate admin token assign|unassign|unlock|show on imported HOTP tokens,
// on both engines: each change is recorded in the audit log with the
// operator; each bad input (unknown serial or customer, a token someone
// holds, unlocking an unlocked token, unassigning a free one) is one line,
// changes nothing and records nothing.
func TestAdminTokenOperatorCommands(t *testing.T) {
	eachEngine(t, func(t *testing.T, b *opBench) {
		ctx := context.Background()
		pskcPath := filepath.Join(b.dir, "tokens.pskc")
		writePSKC(t, pskcPath, "H", 3, pskc.WriterOptions{})
		if r := b.admin(t, "token", "import-pskc", pskcPath); r.code != 0 {
			t.Fatalf("import-pskc: %+v", r)
		}
		alice := b.addCustomer(t, "alice")
		bob := b.addCustomer(t, "bob")
		me := osUser(t)
		db := b.open(t)
		holder := func(serial string) string {
			t.Helper()
			var pid string
			if err := db.QueryRow(ctx, `SELECT COALESCE(passport_id, '') FROM otp_tokens WHERE serial = ?`, serial).Scan(&pid); err != nil {
				t.Fatal(err)
			}
			return pid
		}

		// show: a free token, never its seed.
		r := b.op(t, "token", "show", "H0001")
		if r.code != 0 {
			t.Fatalf("token show: %+v", r)
		}
		for name, want := range map[string]string{"serial": "H0001", "kind": "HOTP", "algorithm": "SHA-1, 6 digits", "next counter": "0",
			"assigned to": "nobody", "status": "active", "failures": "0 of 5", "lock": "none", "manufacturer": "egate-test"} {
			if got := tokenField(t, r.stdout, name); got != want {
				t.Fatalf("token show %s = %q, want %q", name, got, want)
			}
		}
		// The seed of H0001 is 01 5a repeated (writePSKC): not in any form.
		for _, s := range []string{"015a015a", "015A015A", "AFNAAW", "AVtQAV", "wrapped"} {
			if strings.Contains(r.stdout, s) {
				t.Fatalf("token show prints the seed (%s):\n%s", s, r.stdout)
			}
		}

		r = b.op(t, "token", "assign", "H0001", "--customer", "alice", "--operator", "wang.li")
		if r.code != 0 || r.stdout != "assigned token H0001 to alice ("+alice+")\n" {
			t.Fatalf("assign: %+v", r)
		}
		b.lastAudit(t, "admin.token.assign", map[string]string{"operator": "wang.li", "serial": "H0001", "passport_id": alice, "login_name": "alice"})
		if got := tokenField(t, b.op(t, "token", "show", "H0001").stdout, "assigned to"); got != "alice ("+alice+")" {
			t.Fatalf("show after assign: assigned to %q", got)
		}

		// Bad input: one line, nothing changed, nothing recorded.
		tests := []struct {
			name     string
			args     []string
			mentions []string
		}{
			{"assign a token another customer holds", []string{"token", "assign", "H0001", "--customer", bob}, []string{"H0001", "already assigned to alice", "unassign"}},
			{"assign to its holder again", []string{"token", "assign", "H0001", "--customer", "alice"}, []string{"already assigned to alice"}},
			{"assign an unknown serial", []string{"token", "assign", "NOPE1", "--customer", "alice"}, []string{"no OTP token NOPE1", "nothing was changed"}},
			{"assign to an unknown customer", []string{"token", "assign", "H0002", "--customer", "nobody"}, []string{`"nobody"`, "nothing was changed"}},
			{"assign without a customer", []string{"token", "assign", "H0002"}, []string{"customer"}},
			{"show an unknown serial", []string{"token", "show", "NOPE2"}, []string{"no OTP token NOPE2"}},
			{"unlock an unknown serial", []string{"token", "unlock", "NOPE3"}, []string{"no OTP token NOPE3"}},
			{"unassign an unknown serial", []string{"token", "unassign", "NOPE4"}, []string{"no OTP token NOPE4"}},
			{"unlock a token that is not locked", []string{"token", "unlock", "H0001"}, []string{"H0001 is not locked", "nothing was changed"}},
			{"unassign a free token", []string{"token", "unassign", "H0002"}, []string{"H0002 is not assigned to anyone"}},
			{"an empty operator", []string{"token", "assign", "H0002", "--customer", "bob", "--operator", ""}, []string{"--operator"}},
			{"an operator with a control character", []string{"token", "assign", "H0002", "--customer", "bob", "--operator", "wang\x1b[2Jli"}, []string{"--operator"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := len(b.audit(t))
				oneLine(t, b.op(t, tc.args...), tc.mentions...)
				if h1, h2 := holder("H0001"), holder("H0002"); h1 != alice || h2 != "" {
					t.Fatalf("holders changed: H0001 %q, H0002 %q", h1, h2)
				}
				if after := len(b.audit(t)); after != before {
					t.Fatalf("a refused command was audited: %d → %d records", before, after)
				}
			})
		}

		// The customer locked the token with wrong codes.
		if _, err := db.Exec(ctx, `UPDATE otp_tokens SET failures = 5, locked_until_ms = -1 WHERE serial = 'H0001'`); err != nil {
			t.Fatal(err)
		}
		r = b.op(t, "token", "show", "H0001")
		if tokenField(t, r.stdout, "failures") != "5 of 5" || tokenField(t, r.stdout, "lock") != "until an operator unlocks" {
			t.Fatalf("show of a locked token:\n%s", r.stdout)
		}
		if r := b.op(t, "user", "show", "alice"); !regexp.MustCompile(`(?m)^otp\s+H0001 \(HOTP\)\s+active\s+5 of 5\s+until an operator unlocks$`).MatchString(r.stdout) {
			t.Fatalf("user show does not list the locked token:\n%s", r.stdout)
		}
		r = b.op(t, "token", "unlock", "H0001")
		if r.code != 0 || r.stdout != "unlocked token H0001 (5 failed attempts cleared)\n" {
			t.Fatalf("unlock: %+v", r)
		}
		b.lastAudit(t, "admin.token.unlock", map[string]string{"operator": me, "serial": "H0001", "passport_id": alice, "failures": "5"})
		r = b.op(t, "token", "show", "H0001")
		if tokenField(t, r.stdout, "failures") != "0 of 5" || tokenField(t, r.stdout, "lock") != "none" {
			t.Fatalf("show after unlock:\n%s", r.stdout)
		}

		r = b.op(t, "token", "unassign", "H0001", "--operator", "zhao.min")
		if r.code != 0 || r.stdout != "unassigned token H0001 from alice ("+alice+")\n" {
			t.Fatalf("unassign: %+v", r)
		}
		b.lastAudit(t, "admin.token.unassign", map[string]string{"operator": "zhao.min", "serial": "H0001", "passport_id": alice})
		if h := holder("H0001"); h != "" {
			t.Fatalf("H0001 still held by %q", h)
		}
		// Now bob may have it.
		if r := b.op(t, "token", "assign", "H0001", "--customer", bob); r.code != 0 {
			t.Fatalf("assign the returned token: %+v", r)
		}
		if h := holder("H0001"); h != bob {
			t.Fatalf("H0001 held by %q, want bob", h)
		}
	})
}

// egate admin user show lists every factor's failures today with the
// limit and the lock, and the customer's tools; user unlock clears them
// all and is audited; unlocking a customer with nothing to unlock, and
// locking a locked one, are refused and change nothing.
func TestAdminUserShowUnlockFactors(t *testing.T) {
	eachEngine(t, func(t *testing.T, b *opBench) {
		ctx := context.Background()
		alice := b.addCustomer(t, "alice")
		b.lastAudit(t, "admin.user.add", map[string]string{"operator": osUser(t), "passport_id": alice, "login_name": "alice"})
		db := b.open(t)
		ps, err := authsvc.NewPassport(ctx, db, passport.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := ps.Lookup(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			ps.CheckPassword(ctx, sub, "Wrong-Password-1", "")
		}
		for range 6 {
			done, err := ps.BeginFactor(ctx, alice, "piv")
			if err != nil {
				t.Fatal(err)
			}
			done(ctx, false, "")
		}
		// Five wrong SMS codes just now lock SMS for 30 minutes (sms's own
		// counter, besides the passport's).
		smsAt := time.Now()
		if _, err := db.Exec(ctx, `INSERT INTO sms_attempts (passport_id, n, updated_ms) VALUES (?, 5, ?)`, alice, smsAt.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		smsUntil := time.UnixMilli(smsAt.UnixMilli()).Add(30 * time.Minute).UTC().Format("2006-01-02 15:04 MST")
		b.caInit(t)
		b.lastAudit(t, "admin.ca.init", map[string]string{"operator": osUser(t)})
		r := b.admin(t, "gridcard", "issue", "--customer", alice, "--out", filepath.Join(b.dir, "card.png"), "--operator", "wang.li")
		m := regexp.MustCompile(`issued grid card (\d{12})`).FindStringSubmatch(r.stdout)
		if r.code != 0 || m == nil {
			t.Fatalf("gridcard issue: %+v", r)
		}
		b.lastAudit(t, "admin.gridcard.issue", map[string]string{"operator": "wang.li", "passport_id": alice, "serial": m[1]})

		r = b.op(t, "user", "show", "alice")
		if r.code != 0 {
			t.Fatalf("user show: %+v", r)
		}
		midnight := time.Now().UTC().AddDate(0, 0, 1).Format("2006-01-02") + " 00:00 UTC"
		for _, want := range []string{
			`(?m)^FACTOR\s+FAILURES TODAY\s+LIMIT\s+LOCK$`,
			`(?m)^password\s+2\s+6\s+-$`,
			`(?m)^piv\s+6\s+6\s+until ` + regexp.QuoteMeta(midnight) + `$`,
			`(?m)^ushield\s+0\s+6\s+-$`,
			`(?m)^ushield2\s+0\s+6\s+-$`,
			`(?m)^TOOL\s+ID\s+STATUS\s+FAILURES\s+LOCK$`,
			`(?m)^sms\s+13812345678\s+active\s+5 of 5\s+until ` + regexp.QuoteMeta(smsUntil) + `$`,
			`(?m)^gridcard\s+` + m[1] + `\s+active\s+0 of 5\s+-$`,
			`(?m)^operator lock\s+false$`,
		} {
			if !regexp.MustCompile(want).MatchString(r.stdout) {
				t.Fatalf("user show does not match %s:\n%s", want, r.stdout)
			}
		}

		// The tools that count their own failures have no passport row:
		// each tool's one counter is shown once.
		for _, own := range []string{"sms", "gridcard", "otp"} {
			if regexp.MustCompile(`(?m)^` + own + `\s+\d+\s+6\s`).MatchString(r.stdout) {
				t.Fatalf("user show lists a passport counter for %s, which counts its own failures:\n%s", own, r.stdout)
			}
		}

		r = b.op(t, "user", "unlock", "alice", "--operator", "wang.li")
		if r.code != 0 || r.stdout != "unlocked "+alice+" (cleared: password failures 2, piv failures 6, sms wrong codes 5)\n" {
			t.Fatalf("unlock: %+v", r)
		}
		b.lastAudit(t, "admin.user.unlock", map[string]string{"operator": "wang.li", "passport_id": alice, "cleared": "password failures 2, piv failures 6, sms wrong codes 5"})
		r = b.op(t, "user", "show", alice)
		if !regexp.MustCompile(`(?m)^piv\s+0\s+6\s+-$`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^password\s+0\s+6\s+-$`).MatchString(r.stdout) {
			t.Fatalf("user show after unlock:\n%s", r.stdout)
		}
		if !regexp.MustCompile(`(?m)^sms\s+13812345678\s+active\s+0 of 5\s+-$`).MatchString(r.stdout) {
			t.Fatalf("SMS still locked after unlock:\n%s", r.stdout)
		}
		if _, err := ps.BeginFactor(ctx, alice, "piv"); err != nil {
			t.Fatalf("piv still locked after unlock: %v", err)
		}
		ps.Unlock(ctx, alice) // the attempt just begun

		if r := b.op(t, "user", "lock", "alice"); r.code != 0 {
			t.Fatalf("lock: %+v", r)
		}
		b.lastAudit(t, "admin.user.lock", map[string]string{"operator": osUser(t), "passport_id": alice})
		for _, tc := range []struct {
			name     string
			args     []string
			mentions []string
		}{
			{"lock a locked customer", []string{"user", "lock", "alice"}, []string{"already locked", "nothing was changed"}},
			{"lock an unknown customer", []string{"user", "lock", "nobody"}, []string{`"nobody"`}},
			{"unlock an unknown customer", []string{"user", "unlock", "nobody"}, []string{`"nobody"`}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := len(b.audit(t))
				oneLine(t, b.op(t, tc.args...), tc.mentions...)
				if after := len(b.audit(t)); after != before {
					t.Fatalf("a refused command was audited: %d → %d records", before, after)
				}
			})
		}
		if r := b.op(t, "user", "unlock", "alice"); r.code != 0 || !strings.Contains(r.stdout, "cleared: operator lock") {
			t.Fatalf("unlock: %+v", r)
		}
		before := len(b.audit(t))
		oneLine(t, b.op(t, "user", "unlock", "alice"), "is not locked and has no failures today", "nothing was changed")
		if after := len(b.audit(t)); after != before {
			t.Fatalf("a refused unlock was audited: %d → %d records", before, after)
		}
		if r := b.op(t, "user", "reset-password", "alice", "--operator", "zhao.min"); r.code != 0 {
			t.Fatalf("reset-password: %+v", r)
		}
		b.lastAudit(t, "admin.user.reset-password", map[string]string{"operator": "zhao.min", "passport_id": alice})
		// Every operator record verifies as part of the chain.
		if r := b.op(t, "audit", "verify"); r.code != 0 || !strings.HasPrefix(r.stdout, "audit log intact: ") {
			t.Fatalf("audit verify: %+v", r)
		}
	})
}

// A PostgreSQL DSN with a password in its query is refused before any
// connection, in one line that does not repeat the DSN, from --db and from
// the config alike.
func TestDSNWithQueryPassword(t *testing.T) {
	dir := t.TempDir()
	const pw = "Hunter2-Secret"
	tests := []struct {
		name string
		args []string
	}{
		{"--db", []string{"admin", "user", "show", "alice", "--db", "postgres://egate@127.0.0.1:1/egate?sslmode=disable&password=" + pw}},
		{"--db, upper-case key", []string{"admin", "token", "show", "H0001", "--db", "postgresql://egate@127.0.0.1:1/egate?PASSWORD=" + pw}},
		{"database.dsn", []string{"admin", "user", "unlock", "alice", "--set", "database.driver=postgres", "--set", "database.dsn=postgres://egate@127.0.0.1:1/egate?password=" + pw}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dir, nil, tc.args...)
			oneLine(t, r, "password", "PGPASSWORD")
			if strings.Contains(r.stdout+r.stderr, pw) || strings.Contains(r.stderr, "127.0.0.1") {
				t.Fatalf("the DSN was repeated: %s", r.stderr)
			}
		})
	}
}
