package sms

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/authn/authntest"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

type phones map[string]string

func (p phones) Phone(_ context.Context, id string) (string, error) { return p[id], nil }

// clock is the tests' movable wall clock.
type clock = authntest.Clock

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

type rig struct {
	s    *Service
	f    authn.Factor
	sink *Sink
	clk  *clock
	db   *store.DB
}

func newRig(t *testing.T, db *store.DB, cfg Config) *rig {
	clk := &clock{}
	sink := NewSink(db, clk.Now)
	s := New(db, sink, phones{"alice": "13800005678", "bob": "13900001234", "mallory": "13900001234"}, KeyMAC("test key"), cfg, clk.Now)
	return &rig{s: s, f: s.Factor(), sink: sink, clk: clk, db: db}
}

// lastCode reads the code of the newest message to phone from the sink.
func (r *rig) lastCode(t *testing.T, phone string) (code, body string) {
	t.Helper()
	msgs, err := r.sink.List(context.Background(), phone, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("outbox: %v %v", msgs, err)
	}
	m := codeRE.FindStringSubmatch(msgs[0].Body)
	if m == nil {
		t.Fatalf("no code in %q", msgs[0].Body)
	}
	return m[1], msgs[0].Body
}

func otherCode(c string) string { return string([]byte{'0' + (c[0]-'0'+1)%10}) + c[1:] }

func TestVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db, Config{PerCustomer: 100, PerPhone: 100})
		tx := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: Describe("Transfer", 123456, "6222020200112233"), TxHash: []byte{1}}
		cases := []struct {
			name   string
			resp   func(code string) string
			who    string
			expire bool
			want   error
		}{
			{name: "right", resp: func(c string) string { return c }},
			{name: "right with spaces", resp: func(c string) string { return " " + c + "\n" }},
			{name: "wrong", resp: otherCode, want: authn.ErrWrongAnswer},
			{name: "five digits", resp: func(c string) string { return c[:5] }, want: authn.ErrBadResponse},
			{name: "letters", resp: func(string) string { return "12345a" }, want: authn.ErrBadResponse},
			{name: "other customer", who: "bob", resp: func(c string) string { return c }, want: authn.ErrUnknown},
			{name: "expired", expire: true, resp: func(c string) string { return c }, want: authn.ErrExpired},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ch, err := r.f.Begin(ctx, tx)
				if err != nil {
					t.Fatal(err)
				}
				if ch.Prompt != "Code sent to 138****5678" {
					t.Errorf("prompt %q", ch.Prompt)
				}
				code, body := r.lastCode(t, "13800005678")
				if !strings.Contains(body, "CNY 1,234.56") || !strings.Contains(body, "ending 2233") {
					t.Errorf("message does not name the transaction: %q", body)
				}
				var secret []byte
				db.QueryRow(ctx, `SELECT secret FROM auth_challenges WHERE id = ?`, ch.ID).Scan(&secret)
				if len(secret) != 32 || bytes.Contains(secret, []byte(code)) {
					t.Fatalf("code not stored as an HMAC: %x", secret)
				}
				if tc.expire {
					r.clk.Advance(6 * time.Minute)
					defer r.clk.Advance(-6 * time.Minute)
				}
				who := "alice"
				if tc.who != "" {
					who = tc.who
				}
				as := tx
				as.PassportID = who
				res, err := r.f.Verify(ctx, as.Answer(ch.ID, []byte(tc.resp(code))))
				if !errors.Is(err, tc.want) {
					t.Fatalf("Verify = %v, want %v", err, tc.want)
				}
				if err == nil {
					if res.Level != 2 || res.AMR != "sms" {
						t.Fatalf("result %+v", res)
					}
					if _, err := r.f.Verify(ctx, tx.Answer(ch.ID, []byte(code))); !errors.Is(err, authn.ErrUsed) {
						t.Fatalf("reuse = %v, want ErrUsed", err)
					}
				} else if !tc.expire {
					// A refused answer leaves the challenge for the right code.
					if _, err := r.f.Verify(ctx, tx.Answer(ch.ID, []byte(code))); err != nil {
						t.Fatalf("right code after a refused answer: %v", err)
					}
				}
			})
		}
	})
}

func TestSendLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		login := func(who, ip string) authn.BeginRequest {
			return authn.BeginRequest{PassportID: who, Purpose: authn.PurposeLogin, ClientIP: ip}
		}
		cases := []struct {
			name  string
			cfg   Config
			reqs  []authn.BeginRequest // all but the last succeed
			limit string
		}{
			{"per customer", Config{PerCustomer: 2}, []authn.BeginRequest{login("alice", "1.1.1.1"), login("alice", "2.2.2.2"), login("alice", "3.3.3.3")}, "customer"},
			{"per phone", Config{PerPhone: 2}, []authn.BeginRequest{login("bob", "1.1.1.1"), login("mallory", "2.2.2.2"), login("bob", "3.3.3.3")}, "phone"},
			{"per ip", Config{PerIP: 2}, []authn.BeginRequest{login("alice", "9.9.9.9"), login("bob", "9.9.9.9"), login("alice", "9.9.9.9")}, "ip"},
			// Requests without a client IP share one per-IP limit ("ip:unknown").
			{"per ip, none given", Config{PerIP: 2}, []authn.BeginRequest{login("alice", ""), login("bob", ""), login("alice", "")}, "ip"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := newRig(t, storetest.SQLite(t), tc.cfg)
				if db.Driver() == store.Postgres {
					r = newRig(t, storetest.Postgres(t), tc.cfg)
				}
				for i, req := range tc.reqs {
					_, err := r.f.Begin(ctx, req)
					if i < len(tc.reqs)-1 {
						if err != nil {
							t.Fatalf("send %d: %v", i+1, err)
						}
						continue
					}
					var re *RateError
					if !errors.As(err, &re) || !errors.Is(err, authn.ErrRateLimited) || re.Limit != tc.limit {
						t.Fatalf("send over the limit = %v, want RateError{%s}", err, tc.limit)
					}
				}
				msgs, _ := r.sink.List(ctx, "", 100)
				if len(msgs) != len(tc.reqs)-1 {
					t.Fatalf("%d messages sent, want %d", len(msgs), len(tc.reqs)-1)
				}
				r.clk.Advance(time.Hour)
				if _, err := r.f.Begin(ctx, tc.reqs[len(tc.reqs)-1]); err != nil {
					t.Fatalf("next window: %v", err)
				}
			})
		}
		t.Run("parallel sends", func(t *testing.T) {
			r := newRig(t, db, Config{PerCustomer: 3, PerPhone: 100})
			var wg sync.WaitGroup
			var ok, limited atomic.Int32
			for range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := r.f.Begin(ctx, login("alice", ""))
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, authn.ErrRateLimited):
						limited.Add(1)
					default:
						t.Errorf("Begin: %v", err)
					}
				}()
			}
			wg.Wait()
			if ok.Load() != 3 || limited.Load() != 9 {
				t.Fatalf("%d sent, %d limited; want 3 and 9", ok.Load(), limited.Load())
			}
		})
	})
}

func TestLockoutAndSingleUseParallel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db, Config{PerCustomer: 100, PerPhone: 100, MaxAttempts: 3})
		// Single use: many right answers at once, one wins.
		ch, _ := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
		code, _ := r.lastCode(t, "13800005678")
		ok, used := authntest.VerifyConcurrently(ctx, t, r.f, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: []byte(code)}, 10)
		if ok != 1 || used != 9 {
			t.Fatalf("%d ok %d used; want 1 and 9", ok, used)
		}
		// Right answers on separate challenges at once, more of them than
		// MaxAttempts: each is accepted (none is refused as locked because
		// the others are in flight).
		var rights []authn.VerifyRequest
		for range 8 {
			c, err := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			cd, _ := r.lastCode(t, "13800005678")
			rights = append(rights, authn.VerifyRequest{PassportID: "alice", ChallengeID: c.ID, Response: []byte(cd)})
		}
		if ok := authntest.RightConcurrently(ctx, t, r.f, rights); ok != len(rights) {
			t.Fatalf("%d of %d right answers at once accepted; want all", ok, len(rights))
		}
		// Lockout: wrong answers on separate challenges at once.
		var chs []authn.Challenge
		var codes []string
		for range 10 {
			c, err := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			cd, _ := r.lastCode(t, "13800005678")
			chs, codes = append(chs, c), append(codes, cd)
		}
		var reqs []authn.VerifyRequest
		for i := range chs {
			reqs = append(reqs, authn.VerifyRequest{PassportID: "alice", ChallengeID: chs[i].ID, Response: []byte(otherCode(codes[i]))})
		}
		wrongN, lockedN := authntest.WrongConcurrently(ctx, t, r.f, reqs)
		if wrongN != 3 || lockedN != 7 {
			t.Fatalf("%d wrong %d locked; want 3 and 7", wrongN, lockedN)
		}
		if _, err := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin}); !errors.Is(err, authn.ErrLocked) {
			t.Fatalf("Begin while locked = %v", err)
		}
		r.clk.Advance(31 * time.Minute)
		c, err := r.f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
		if err != nil {
			t.Fatalf("Begin after the lock lifted: %v", err)
		}
		cd, _ := r.lastCode(t, "13800005678")
		if _, err := r.f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: c.ID, Response: []byte(cd)}); err != nil {
			t.Fatalf("right code after the lock lifted: %v", err)
		}
	})
}

func TestYuan(t *testing.T) {
	for _, tc := range []struct {
		fen  int64
		want string
	}{{0, "0.00"}, {5, "0.05"}, {123456, "1,234.56"}, {100000000, "1,000,000.00"}, {-250, "-2.50"}} {
		if got := Yuan(tc.fen); got != tc.want {
			t.Errorf("Yuan(%d) = %q, want %q", tc.fen, got, tc.want)
		}
	}
}

// TestTransactionText: the SMS names the transaction in its language (a
// Chinese text gets a Chinese message), a Chinese text is measured in
// characters, not bytes (60 characters are 180 bytes of UTF-8), and a text
// the SMS cannot carry is refused before anything is sent.
func TestTransactionText(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := newRig(t, db, Config{PerCustomer: 100, PerPhone: 100})
		zh := "向 6222…0002 转账 1,234.56 元（付款账户 6222…0001）"
		long := strings.Repeat("转", MaxTxText-len([]rune(zh))) + zh
		for _, tc := range []struct {
			name, text, lang string
			want             []string // in the message, in order
			refused          bool
		}{
			{name: "English", text: "Transfer 1,234.56 yuan to 6222…0002 from 6222…0001",
				want: []string{"[egate Bank] ", " is your code to authorize Transfer 1,234.56 yuan to 6222…0002 from 6222…0001. Valid 5 minutes."}},
			{name: "English, language named", text: "Transfer 1.00 yuan to 6222…0002 from 6222…0001", lang: intent.LangEN,
				want: []string{" is your code to authorize Transfer 1.00 yuan"}},
			{name: "Chinese", text: zh, lang: intent.LangZH,
				want: []string{"【egate Bank】验证码 ", "，用于确认：" + zh + "。5 分钟内有效。请勿将验证码告诉任何人，包括银行工作人员。"}},
			{name: "160 Chinese characters (480 bytes)", text: long, lang: intent.LangZH, want: []string{long}},
			{name: "161 characters", text: "转" + long, lang: intent.LangZH, refused: true},
			{name: "two lines", text: "向 6222…0002 转账\n1.00 元", lang: intent.LangZH, refused: true},
			{name: "not UTF-8", text: "\xff\xfe", refused: true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := r.sink.List(ctx, "13800005678", 1000)
				req := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: tc.text, TxLang: tc.lang, TxHash: []byte{1}}
				ch, err := r.f.Begin(ctx, req)
				after, _ := r.sink.List(ctx, "13800005678", 1000)
				if tc.refused {
					if err == nil || !strings.Contains(err.Error(), "at most 160 characters") {
						t.Fatalf("Begin = %v, want a refusal naming 160 characters", err)
					}
					if len(after) != len(before) {
						t.Fatal("a refused text was sent")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				code, body := r.lastCode(t, "13800005678")
				at := 0
				for _, w := range tc.want {
					i := strings.Index(body[at:], w)
					if i < 0 {
						t.Fatalf("message %q lacks %q (after byte %d)", body, w, at)
					}
					at += i + len(w)
				}
				if _, err := r.f.Verify(ctx, req.Answer(ch.ID, []byte(code))); err != nil {
					t.Fatalf("the code of the message: %v", err)
				}
			})
		}
	})
}
