package messenger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/platform/messenger/payqr"
)

var convRe = regexp.MustCompile(`^/chats/([0-9a-f]+)`)

// chatWith starts (or finds) the direct chat of b's customer with name.
func (b *browser) chatWith(name string) string {
	b.t.Helper()
	s, body, loc := b.post("/chats", url.Values{"name": {name}})
	m := convRe.FindStringSubmatch(loc)
	if s != http.StatusSeeOther || m == nil {
		b.t.Fatalf("new chat with %s: %d %s\n%s", name, s, loc, body)
	}
	return m[1]
}

func (b *browser) group(title string, names ...string) string {
	b.t.Helper()
	s, body, loc := b.post("/chats/group", url.Values{"title": {title}, "members": {strings.Join(names, ",")}})
	m := convRe.FindStringSubmatch(loc)
	if s != http.StatusSeeOther || m == nil {
		b.t.Fatalf("new group: %d %s\n%s", s, loc, body)
	}
	return m[1]
}

// TestConversations: a pair has one direct chat whichever side starts it;
// messages are kept in order with unread counts per member; a message to a
// conversation the customer is not in, an empty one and one to an unknown
// customer are refused with their codes and add nothing.
func TestConversations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		alice, bob, dave := r.as("alice"), r.as("bob"), r.as("dave")
		c1 := alice.chatWith("bob")
		if c2 := bob.chatWith("alice"); c2 != c1 {
			t.Fatalf("two direct chats for one pair: %s %s", c1, c2)
		}
		for _, text := range []string{"hi bob", "lunch at noon?"} {
			if s, body, _ := alice.post("/chats/"+c1+"/messages", url.Values{"text": {text}}); s != http.StatusSeeOther {
				t.Fatalf("send: %d\n%s", s, body)
			}
		}
		list, err := r.svc.Store.List(ctx, r.ids["bob"])
		if err != nil || len(list) != 1 || list[0].Unread != 2 {
			t.Fatalf("bob's list: %+v %v", list, err)
		}
		if c, _ := r.svc.Store.Get(ctx, c1, r.ids["alice"]); c.Unread != 0 {
			t.Fatalf("alice's own messages counted unread: %d", c.Unread)
		}
		s, body := bob.get("/chats")
		if s != 200 || !strings.Contains(body, `class="badge unread"`) || !strings.Contains(body, ">2</span>") {
			t.Fatalf("bob's chat list shows no 2 unread: %d\n%s", s, body)
		}
		s, body = bob.get("/chats/" + c1)
		if s != 200 || strings.Index(body, "hi bob") > strings.Index(body, "lunch at noon?") || strings.Index(body, "hi bob") < 0 {
			t.Fatalf("bob's chat: %d\n%s", s, body)
		}
		if c, _ := r.svc.Store.Get(ctx, c1, r.ids["bob"]); c.Unread != 0 {
			t.Fatalf("read messages still unread: %d", c.Unread)
		}
		before, _ := r.svc.Store.Messages(ctx, c1, 0, 100)
		for _, tc := range []struct {
			name   string
			b      *browser
			conv   string
			text   string
			status int
			code   string
		}{
			{"not a member", dave, c1, "let me in", http.StatusForbidden, "not_member"},
			{"no such conversation", dave, "0123456789abcdef01234567", "hello", http.StatusNotFound, "no_conversation"},
			{"empty", alice, c1, "   ", http.StatusBadRequest, "empty_message"},
			{"too long", alice, c1, strings.Repeat("长", MaxText+1), http.StatusBadRequest, "message_too_long"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, body, _ := tc.b.post("/chats/"+tc.conv+"/messages", url.Values{"text": {tc.text}})
				if s != tc.status || code(body) != tc.code {
					t.Fatalf("%d %q, want %d %q\n%s", s, code(body), tc.status, tc.code, body)
				}
			})
		}
		if s, body := dave.get("/chats/" + c1); s != http.StatusForbidden || code(body) != "not_member" || strings.Contains(body, "hi bob") {
			t.Fatalf("dave reads alice and bob's chat: %d\n%s", s, body)
		}
		if s, body, _ := alice.post("/chats", url.Values{"name": {"nobody"}}); s != http.StatusNotFound || code(body) != "unknown_customer" {
			t.Fatalf("chat with an unknown customer: %d\n%s", s, body)
		}
		after, _ := r.svc.Store.Messages(ctx, c1, 0, 100)
		if len(after) != len(before) || len(after) != 2 {
			t.Fatalf("refused messages were added: %d -> %d", len(before), len(after))
		}
	})
}

// TestSplit: equal shares with the remainder assigned explicitly, set
// shares that must add up, and the refusals.
func TestSplit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		total   int64
		members []string
		set     map[string]int64
		rem     string
		want    map[string]int64
		err     error
	}{
		{"equal", 300_00, []string{"a", "b", "c"}, nil, "", map[string]int64{"a": 100_00, "b": 100_00, "c": 100_00}, nil},
		{"remainder to b", 100_00, []string{"a", "b", "c"}, nil, "b", map[string]int64{"a": 33_33, "b": 33_34, "c": 33_33}, nil},
		{"remainder unassigned", 100_00, []string{"a", "b", "c"}, nil, "", nil, ErrBadSplit},
		{"remainder to a stranger", 100_00, []string{"a", "b", "c"}, nil, "z", nil, ErrBadSplit},
		{"set", 100_00, []string{"a", "b"}, map[string]int64{"a": 70_00, "b": 30_00}, "", map[string]int64{"a": 70_00, "b": 30_00}, nil},
		{"set short", 100_00, []string{"a", "b"}, map[string]int64{"a": 70_00, "b": 29_99}, "", nil, ErrBadSplit},
		{"set zero", 100_00, []string{"a", "b"}, map[string]int64{"a": 100_00, "b": 0}, "", nil, ErrBadSplit},
		{"less than a fen each", 2, []string{"a", "b", "c"}, nil, "a", nil, ErrBadSplit},
		{"twice the same", 100_00, []string{"a", "a"}, nil, "", nil, ErrBadSplit},
		{"nobody", 100_00, nil, nil, "", nil, ErrAANoMembers},
		{"zero total", 0, []string{"a"}, nil, "", nil, ErrBadAmount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Split(tc.total, tc.members, tc.set, tc.rem)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			var sum int64
			for _, s := range got {
				sum += s.Amount
				if s.Amount != tc.want[s.Member] {
					t.Errorf("%s: %d, want %d", s.Member, s.Amount, tc.want[s.Member])
				}
			}
			if sum != tc.total || len(got) != len(tc.want) {
				t.Fatalf("shares %+v do not make %d", got, tc.total)
			}
		})
	}
}

// TestPayInThePagesLanguage: a payment is confirmed in the language of the
// page it started on — the intent carries it, the challenge page shows its
// text in it — and keeps it to the end when the page's language changes
// halfway (another tab): one intent.
func TestPayInThePagesLanguage(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	alice := r.as("alice")
	conv := alice.chatWith("bob")
	debit, credit := r.acct["alice"], r.acct["bob"]
	for _, c := range []struct{ lang, then, txLang, text string }{
		{"zh", "en", intent.LangZH, "向好友 " + txauth.Mask(credit) + " 转账 12.00 元（付款账户 " + txauth.Mask(debit) + "）"},
		{"en", "zh", intent.LangEN, "Send 12.00 yuan to " + txauth.Mask(credit) + " from " + txauth.Mask(debit)},
	} {
		t.Run(c.lang, func(t *testing.T) {
			alice.get("/chats?lang=" + c.lang)
			key := "k-lang-" + c.lang
			s, body, _ := alice.post("/pay", url.Values{"what": {PayTransfer}, "conv": {conv}, "amount": {"12.00"}, "key": {key}})
			if s != 200 || !strings.Contains(body, `name="txlang" value="`+c.txLang+`"`) {
				t.Fatalf("decision %d, not carrying the language %q:\n%s", s, c.txLang, body)
			}
			f := url.Values{"what": {PayTransfer}, "conv": {conv}, "amount": {"12.00"}, "key": {key}, "txlang": {c.txLang}, "factor": {"sms"}}
			alice.get("/chats?lang=" + c.then)
			s, body, _ = alice.post("/pay/challenge", f)
			if s != 200 || !strings.Contains(body, `id="tx-text">`+c.text+`</p>`) {
				t.Fatalf("challenge %d, not showing %q:\n%s", s, c.text, body)
			}
			f.Set("challenge_id", challengeRe.FindStringSubmatch(body)[1])
			f.Set("response", "123456")
			if s, body, _ := alice.post("/pay/confirm", f); s != 200 || !strings.Contains(body, `id="done"`) {
				t.Fatalf("confirm %d:\n%s", s, body)
			}
			r.auth.mu.Lock()
			defer r.auth.mu.Unlock()
			n := 0
			for _, in := range r.auth.intents {
				if in.IdempotencyKey == key {
					n++
					if in.Lang != c.txLang {
						t.Errorf("the intent's language %q, want %q", in.Lang, c.txLang)
					}
				}
			}
			if n != 1 {
				t.Fatalf("%d intents under the key, want 1", n)
			}
		})
	}
}

// TestFriendTransfer: alice sends bob 88.50 in their chat through the
// authorize / challenge / proof steps; ebank moves it once (the same form
// again is "already made"), both see it as a message with its state;
// paying someone outside the chat, a wrong code, a bad amount, more than
// the balance and a denied intent change nothing.
func TestFriendTransfer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		alice, bob := r.as("alice"), r.as("bob")
		conv := alice.chatWith("bob")
		start := r.balances()
		f := url.Values{"what": {PayTransfer}, "conv": {conv}, "amount": {"88.50"}, "memo": {"dinner"}, "key": {"k-transfer-1"}}
		s, body := alice.pay(f)
		if s != 200 || !strings.Contains(body, `id="done"`) || !strings.Contains(body, "88.50") {
			t.Fatalf("transfer: %d\n%s", s, body)
		}
		if a, b := r.balance("alice"), r.balance("bob"); a != start["alice"]-88_50 || b != start["bob"]+88_50 {
			t.Fatalf("balances %d %d", a, b)
		}
		s, body = bob.get("/chats/" + conv)
		if s != 200 || !strings.Contains(body, `data-kind="transfer" data-state="done"`) || !strings.Contains(body, "<b>alice</b> sent <b>bob</b> <b>88.50 yuan</b>") {
			t.Fatalf("bob does not see the transfer:\n%s", body)
		}
		if len(r.auth.alerts) != 2 {
			t.Errorf("balance alerts: %+v", r.auth.alerts)
		}
		// the confirm step again (a double submit) pays nothing more
		s, body = alice.pay(f)
		if s != 200 || !strings.Contains(body, `id="notice"`) || r.balance("alice") != start["alice"]-88_50 {
			t.Fatalf("second submit: %d, alice %d\n%s", s, r.balance("alice"), body)
		}
		r.checkLedger()
		mid := r.balances()
		for _, tc := range []struct {
			name   string
			change func(url.Values)
			deny   string
			status int
			code   string
		}{
			{"payee outside the chat", func(v url.Values) { v.Set("to", r.ids["carol"]) }, "", 422, "not_payee"},
			{"to herself", func(v url.Values) { v.Set("to", r.ids["alice"]) }, "", 422, "self"},
			{"zero", func(v url.Values) { v.Set("amount", "0") }, "", 400, "bad_amount"},
			{"fraction of a fen", func(v url.Values) { v.Set("amount", "1.001") }, "", 400, "bad_amount"},
			{"over the balance", func(v url.Values) { v.Set("amount", "1000000") }, "", 422, "insufficient_funds"},
			{"not her chat", func(v url.Values) { v.Set("conv", r.as("carol").chatWith("dave")) }, "", 403, "not_member"},
			{"denied", func(url.Values) {}, "deny", 422, "denied"},
			{"held for review", func(url.Values) {}, "review", 422, "review"},
			{"too many SMS codes", func(url.Values) {
				r.auth.challengeErr = &txclient.APIError{Status: 429, Code: "rate_limited", Message: "too many SMS codes"}
			}, "", 429, "rate_limited"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				v := url.Values{"what": {PayTransfer}, "conv": {conv}, "amount": {"10"}, "key": {"k-" + tc.name}}
				tc.change(v)
				r.auth.decision = tc.deny
				defer func() { r.auth.decision, r.auth.challengeErr = "", nil }()
				s, body := alice.pay(v)
				if s != tc.status || code(body) != tc.code {
					t.Fatalf("%d %q, want %d %q\n%s", s, code(body), tc.status, tc.code, body)
				}
			})
		}
		t.Run("wrong code", func(t *testing.T) {
			v := url.Values{"what": {PayTransfer}, "conv": {conv}, "amount": {"10"}, "key": {"k-wrong"}, "factor": {"sms"}}
			_, body, _ := alice.post("/pay/challenge", v)
			v.Set("challenge_id", challengeRe.FindStringSubmatch(body)[1])
			v.Set("response", "000000")
			s, body, _ := alice.post("/pay/confirm", v)
			if s != 422 || code(body) != "bad_proof" {
				t.Fatalf("%d\n%s", s, body)
			}
		})
		t.Run("amount changed after the proof", func(t *testing.T) {
			v := url.Values{"what": {PayTransfer}, "conv": {conv}, "amount": {"10"}, "key": {"k-changed"}, "factor": {"sms"}}
			_, body, _ := alice.post("/pay/challenge", v)
			v.Set("challenge_id", challengeRe.FindStringSubmatch(body)[1])
			v.Set("response", "123456")
			v.Set("amount", "900")
			s, body, _ := alice.post("/pay/confirm", v)
			if s != 422 || code(body) != "bad_proof" {
				t.Fatalf("%d\n%s", s, body)
			}
		})
		if got := r.balances(); !equal(got, mid) {
			t.Fatalf("refusals moved money: %v -> %v", mid, got)
		}
		// the transfers that were authorized (the SMS limit, the wrong code,
		// the changed amount's first form) wait for their payer: pending, and
		// the refused ones left no message
		msgs, _ := r.svc.Store.Messages(ctx, conv, 0, 100)
		if len(msgs) != 4 || msgs[0].State != StateDone {
			t.Fatalf("messages after refusals: %+v", msgs)
		}
		for _, m := range msgs[1:] {
			if m.State != StatePending || m.Amount != 10_00 {
				t.Fatalf("messages after refusals: %+v", msgs)
			}
		}
		r.checkLedger()
	})
}

func equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

var aaRe = regexp.MustCompile(`^/aa/([0-9a-f]+)$`)

// TestAA: alice collects 300.01 among alice, bob and carol in equal shares
// with the fen left over assigned to herself; bob pays, the collector sees
// who paid; bob paying twice, dave (not in the group) paying, a member
// without a share, carol paying after alice closed it and bob closing are
// refused with their codes and leave the ledger unchanged.
func TestAA(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		alice, bob, carol, dave := r.as("alice"), r.as("bob"), r.as("carol"), r.as("dave")
		g := alice.group("hotpot", "bob", "carol")
		form := url.Values{"total": {"300.01"}, "memo": {"hotpot"}, "mode": {"equal"}, "member": {r.ids["alice"], r.ids["bob"], r.ids["carol"]}}
		// the remainder must be named: to nobody it is refused
		bad := cloneValues(form)
		bad.Set("remainder_to", "p-nobody")
		if s, body, _ := alice.post("/chats/"+g+"/aa", bad); s != 400 || code(body) != "aa_bad_split" {
			t.Fatalf("unassigned remainder: %d\n%s", s, body)
		}
		// set shares must add up to the total
		set := url.Values{"total": {"100"}, "mode": {"set"}, "member": {r.ids["bob"], r.ids["carol"]},
			"share_" + r.ids["bob"]: {"70"}, "share_" + r.ids["carol"]: {"29.99"}}
		if s, body, _ := alice.post("/chats/"+g+"/aa", set); s != 400 || code(body) != "aa_bad_split" {
			t.Fatalf("set shares short of the total: %d\n%s", s, body)
		}
		set.Set("share_"+r.ids["carol"], "30")
		s, body, loc := alice.post("/chats/"+g+"/aa", set)
		if m := aaRe.FindStringSubmatch(loc); s != http.StatusSeeOther || m == nil {
			t.Fatalf("set shares: %d %s\n%s", s, loc, body)
		} else if a, _ := r.svc.Store.AA(ctx, m[1]); len(a.Shares) != 2 || a.Shares[0].Amount != 70_00 || a.Shares[1].Amount != 30_00 {
			t.Fatalf("set shares: %+v", a.Shares)
		} else if err := r.svc.CloseAA(ctx, m[1], r.ids["alice"]); err != nil {
			t.Fatal(err)
		}
		// dave is not in the group: no share for him
		out := cloneValues(form)
		out.Set("remainder_to", r.ids["alice"])
		out.Add("member", r.ids["dave"])
		if s, body, _ := alice.post("/chats/"+g+"/aa", out); s != 422 || code(body) != "not_payee" {
			t.Fatalf("a share for an outsider: %d\n%s", s, body)
		}
		form.Set("remainder_to", r.ids["alice"])
		s, body, loc = alice.post("/chats/"+g+"/aa", form)
		m := aaRe.FindStringSubmatch(loc)
		if s != http.StatusSeeOther || m == nil {
			t.Fatalf("open AA: %d %s\n%s", s, loc, body)
		}
		id := m[1]
		a, err := r.svc.Store.AA(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range a.Shares {
			want := map[string]int64{"alice": 100_01, "bob": 100_00, "carol": 100_00}[sh.Name]
			wantState := map[string]string{"alice": ShareOwn, "bob": ShareDue, "carol": ShareDue}[sh.Name]
			if sh.Amount != want || sh.State != wantState {
				t.Errorf("share %+v", sh)
			}
		}
		start := r.balances()
		if s, body := bob.pay(url.Values{"what": {PayAA}, "aa": {id}}); s != 200 || !strings.Contains(body, `id="done"`) {
			t.Fatalf("bob pays: %d\n%s", s, body)
		}
		if r.balance("bob") != start["bob"]-100_00 || r.balance("alice") != start["alice"]+100_00 {
			t.Fatalf("bob's share did not move: %v", r.balances())
		}
		_, body = alice.get("/aa/" + id)
		if !strings.Contains(body, `data-member="bob" data-state="paid"`) || !strings.Contains(body, `data-member="carol" data-state="due"`) ||
			!strings.Contains(body, "Paid 100.00 yuan, still due 100.00 yuan") {
			t.Fatalf("the collector does not see who paid:\n%s", body)
		}
		after := r.balances()
		for _, tc := range []struct {
			name   string
			b      *browser
			status int
			code   string
		}{
			{"bob twice", bob, 409, "aa_already_paid"},
			{"dave, not in the group", dave, 403, "aa_not_member"},
			{"alice, the collector", alice, 403, "aa_not_member"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, body := tc.b.pay(url.Values{"what": {PayAA}, "aa": {id}})
				if s != tc.status || code(body) != tc.code {
					t.Fatalf("%d %q, want %d %q\n%s", s, code(body), tc.status, tc.code, body)
				}
			})
		}
		// the share claimed by another payment under way is not paid again
		if err := r.svc.Store.ClaimShare(ctx, id, r.ids["bob"], "other-key"); !errors.Is(err, ErrAAPaid) {
			t.Fatalf("claim of a paid share: %v", err)
		}
		if s, body, _ := bob.post("/aa/"+id+"/close", nil); s != 403 || code(body) != "aa_not_collector" {
			t.Fatalf("bob closes: %d\n%s", s, body)
		}
		// carol opens the payment, alice closes, carol confirms: refused
		v := url.Values{"what": {PayAA}, "aa": {id}, "factor": {"sms"}}
		_, body, _ = carol.post("/pay/challenge", v)
		cm := challengeRe.FindStringSubmatch(body)
		if cm == nil {
			t.Fatalf("carol's challenge:\n%s", body)
		}
		if s, body, _ := alice.post("/aa/"+id+"/close", nil); s != http.StatusSeeOther {
			t.Fatalf("close: %d\n%s", s, body)
		}
		v.Set("challenge_id", cm[1])
		v.Set("response", "123456")
		if s, body, _ := carol.post("/pay/confirm", v); s != 409 || code(body) != "aa_closed" {
			t.Fatalf("carol pays after close: %d\n%s", s, body)
		}
		if s, body, _ := alice.post("/aa/"+id+"/close", nil); s != 409 || code(body) != "aa_closed" {
			t.Fatalf("close twice: %d\n%s", s, body)
		}
		if got := r.balances(); !equal(got, after) {
			t.Fatalf("refusals moved money: %v -> %v", after, got)
		}
		msgs, _ := r.svc.Store.Messages(ctx, g, 0, 100)
		var kinds []string
		for _, m := range msgs {
			kinds = append(kinds, m.Kind+":"+m.State)
		}
		if strings.Join(kinds, ",") != "aa:closed,aa:closed,aa_paid:done" {
			t.Fatalf("group messages: %v", kinds)
		}
		r.checkLedger()
	})
}

var receiveRe = regexp.MustCompile(`^/receive/([A-Za-z0-9_-]+)$`)

// TestReceiveQR: carol shows a receive QR of 50 yuan; alice opens it and
// pays; the QR's text is the pay page's URL. A QR paid with another payee
// on the form, an expired one, one's own and an unknown one are refused
// with their codes and pay nothing; a QR without an amount takes the
// payer's.
func TestReceiveQR(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		alice, carol := r.as("alice"), r.as("carol")
		token := func(amount string) string {
			s, body, loc := carol.post("/receive", url.Values{"amount": {amount}, "memo": {"tea"}})
			m := receiveRe.FindStringSubmatch(loc)
			if s != http.StatusSeeOther || m == nil {
				t.Fatalf("receive code: %d %s\n%s", s, loc, body)
			}
			return m[1]
		}
		tok := token("50")
		if s, body := carol.get("/receive/" + tok); s != 200 || !strings.Contains(body, `id="qr"`) {
			t.Fatalf("carol's code: %d\n%s", s, body)
		}
		if s, _ := alice.get("/receive/" + tok + "/qr.png"); s != http.StatusNotFound {
			t.Fatalf("alice reads carol's QR image: %d", s)
		}
		if got := r.pages.QRText(tok); got != payqr.Prefix+r.srv.URL+"/pay/"+tok {
			t.Fatalf("QR text %q", got)
		}
		s, body := alice.get("/pay/" + tok)
		if s != 200 || !strings.Contains(body, `id="fixed-amount"`) {
			t.Fatalf("pay page: %d\n%s", s, body)
		}
		key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(body)[1]
		start := r.balances()
		f := url.Values{"what": {PayQR}, "qr": {tok}, "payee": {r.ids["carol"]}, "amount": {"50.00"}, "key": {key}}
		if s, body := alice.pay(f); s != 200 || !strings.Contains(body, `data-kind="qr_payment"`) {
			t.Fatalf("pay: %d\n%s", s, body)
		}
		if r.balance("alice") != start["alice"]-50_00 || r.balance("carol") != start["carol"]+50_00 {
			t.Fatalf("balances: %v", r.balances())
		}
		open := token("")
		mid := r.balances()
		for _, tc := range []struct {
			name   string
			b      *browser
			form   url.Values
			expire bool
			status int
			code   string
		}{
			{"another payee on the form", alice, url.Values{"what": {PayQR}, "qr": {tok}, "payee": {r.ids["bob"]}, "amount": {"50"}, "key": {"k1"}}, false, 409, "qr_wrong_payee"},
			{"a fixed amount changed", alice, url.Values{"what": {PayQR}, "qr": {tok}, "payee": {r.ids["carol"]}, "amount": {"5"}, "key": {"k2"}, "factor": {"sms"}}, false, 0, ""},
			{"her own code", carol, url.Values{"what": {PayQR}, "qr": {open}, "payee": {r.ids["carol"]}, "amount": {"5"}, "key": {"k3"}}, false, 422, "qr_own"},
			{"unknown", alice, url.Values{"what": {PayQR}, "qr": {"nope"}, "payee": {r.ids["carol"]}, "amount": {"5"}, "key": {"k4"}}, false, 404, "qr_unknown"},
			{"open amount not given", alice, url.Values{"what": {PayQR}, "qr": {open}, "payee": {r.ids["carol"]}, "key": {"k5"}}, false, 400, "bad_amount"},
			{"expired", alice, url.Values{"what": {PayQR}, "qr": {open}, "payee": {r.ids["carol"]}, "amount": {"5"}, "key": {"k6"}}, true, 410, "qr_expired"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.expire {
					r.clock.Add(11 * time.Minute)
				}
				if tc.status == 0 { // the amount on the form is not what is paid
					s, body := tc.b.pay(tc.form)
					if s != 200 || !strings.Contains(body, "50.00") {
						t.Fatalf("%d\n%s", s, body)
					}
					mid["alice"] -= 50_00
					mid["carol"] += 50_00
					return
				}
				s, body := tc.b.pay(tc.form)
				if s != tc.status || code(body) != tc.code {
					t.Fatalf("%d %q, want %d %q\n%s", s, code(body), tc.status, tc.code, body)
				}
			})
		}
		if s, body := alice.get("/pay/" + open); s != 410 || code(body) != "qr_expired" {
			t.Fatalf("expired pay page: %d\n%s", s, body)
		}
		if got := r.balances(); !equal(got, mid) {
			t.Fatalf("refusals moved money: %v -> %v", mid, got)
		}
		r.checkLedger()
	})
}

// TestEvents: a page open on a conversation receives the messages posted
// after it (server-sent events) without a reload; a customer outside the
// conversation gets no stream.
func TestEvents(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	alice, bob, dave := r.as("alice"), r.as("bob"), r.as("dave")
	conv := alice.chatWith("bob")
	alice.post("/chats/"+conv+"/messages", url.Values{"text": {"before"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/chats/"+conv+"/events?after=1", nil)
	resp, err := bob.c.Do(req)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %v %+v", err, resp)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "retry:") {
		t.Fatalf("first line %q", line)
	}
	for r.svc.Hub.Subscribers(conv) == 0 { // subscribed before the first line is written
		t.Fatal("no subscriber after the stream began")
	}
	alice.post("/chats/"+conv+"/messages", url.Values{"text": {"live <b>now</b>"}})
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			if !strings.Contains(line, `"seq":2`) || !strings.Contains(line, `live \u0026lt;b\u0026gt;now`) {
				t.Fatalf("event %s", line)
			}
			break
		}
	}
	for _, tc := range []struct {
		name   string
		conv   string
		status int
	}{{"not a member", conv, http.StatusForbidden}, {"no such conversation", "0123456789abcdef01234567", http.StatusNotFound}} {
		req, _ = http.NewRequest("GET", r.srv.URL+"/chats/"+tc.conv+"/events", nil)
		if s, _, _ := dave.do(req); s != tc.status {
			t.Fatalf("dave's stream, %s: %d", tc.name, s)
		}
	}
}

// TestMessageKeysExist: every refusal and state the pages name has its
// sentence in both languages.
func TestMessageKeysExist(t *testing.T) {
	t.Parallel()
	var keys []string
	for _, e := range Codes {
		keys = append(keys, "msg.err."+e.Code)
	}
	for _, s := range []string{"done", "open", "closed"} {
		keys = append(keys, "msg.state."+s)
	}
	for _, s := range []string{ShareDue, SharePaying, SharePaid, ShareOwn} {
		keys = append(keys, "msg.share."+s)
	}
	for _, k := range []string{Direct, Group, ServiceChat, Alerts} {
		keys = append(keys, "msg.kind."+k)
	}
	for _, w := range []string{PayTransfer, PayAA, PayQR} {
		keys = append(keys, "msg.summary."+w)
	}
	for _, k := range keys {
		if !i18n.Has(k) {
			t.Errorf("no message %s", k)
		}
	}
}

// TestCustomerService: alice writes to the bank from /service; the staff's
// list shows her conversation unanswered; the staff's reply reaches her
// chat as the bank's; a reply to nobody is refused.
func TestCustomerService(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		alice := r.as("alice")
		s, _, loc := alice.post("/service", nil)
		if s != http.StatusMethodNotAllowed {
			t.Fatalf("POST /service: %d", s)
		}
		req, _ := http.NewRequest("GET", r.srv.URL+"/service", nil)
		s, _, h := alice.do(req)
		loc = h.Get("Location")
		m := convRe.FindStringSubmatch(loc)
		if s != http.StatusSeeOther || m == nil {
			t.Fatalf("/service: %d %s", s, loc)
		}
		if s, body, _ := alice.post("/chats/"+m[1]+"/messages", url.Values{"text": {"my card is stuck"}}); s != http.StatusSeeOther {
			t.Fatalf("send: %d\n%s", s, body)
		}
		rows, err := r.svc.Store.ServiceInbox(ctx)
		if err != nil || len(rows) != 1 || rows[0].Customer.Name != "alice" || rows[0].Unread != 1 {
			t.Fatalf("staff's list: %+v %v", rows, err)
		}
		who, err := r.svc.Store.Customer(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.svc.StaffReply(ctx, who.ID, "We have unlocked it."); err != nil {
			t.Fatal(err)
		}
		if _, body := alice.get("/chats/" + m[1]); !strings.Contains(body, "Bank staff") || !strings.Contains(body, "We have unlocked it.") {
			t.Fatalf("alice does not see the reply:\n%s", body)
		}
		if rows, _ := r.svc.Store.ServiceInbox(ctx); rows[0].Unread != 0 {
			t.Fatalf("answered conversation still unread: %+v", rows)
		}
		if _, err := r.svc.Store.Customer(ctx, "nobody"); !errors.Is(err, ErrUnknownCustomer) {
			t.Fatalf("unknown customer: %v", err)
		}
		if _, err := r.svc.StaffReply(ctx, who.ID, "  "); !errors.Is(err, ErrEmptyMessage) {
			t.Fatalf("empty reply: %v", err)
		}
	})
}

// TestClaimShareOnce: eight payments of one share claimed at once (two
// tabs, two replicas) — one wins; a claim after close is refused; the
// same key again (a retry of the winner) is let through.
func TestClaimShareOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		g, err := r.svc.Store.NewGroup(ctx, r.ids["alice"], "g", []string{r.ids["bob"], r.ids["carol"]})
		if err != nil {
			t.Fatal(err)
		}
		shares, err := Split(200_00, []string{r.ids["bob"], r.ids["carol"]}, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		id, err := r.svc.OpenAA(ctx, g, r.ids["alice"], 200_00, "x", shares)
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 8)
		for i := range 8 {
			go func() { errs <- r.svc.Store.ClaimShare(ctx, id, r.ids["bob"], fmt.Sprint("key-", i)) }()
		}
		won := 0
		for range 8 {
			switch err := <-errs; {
			case err == nil:
				won++
			case !errors.Is(err, ErrAAPaid):
				t.Errorf("claim: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d claims of one share won", won)
		}
		var key string
		db.QueryRow(ctx, `SELECT payment_id FROM msg_aa_shares WHERE aa_id = ? AND member = ?`, id, r.ids["bob"]).Scan(&key)
		if err := r.svc.Store.ClaimShare(ctx, id, r.ids["bob"], key); err != nil {
			t.Fatalf("the winner's retry: %v", err)
		}
		if err := r.svc.CloseAA(ctx, id, r.ids["alice"]); err != nil {
			t.Fatal(err)
		}
		if err := r.svc.Store.ClaimShare(ctx, id, r.ids["carol"], "key-c"); !errors.Is(err, ErrAAClosed) {
			t.Fatalf("claim after close: %v", err)
		}
	})
}

// TestFriendTransferStates: a friend transfer is a message from the moment
// its intent is authorized, pending and seen as such by both members,
// updated in place (the same message) to done when the money moved once,
// or to refused, cancelled or expired with nothing moved.
func TestFriendTransferStates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		ctx := context.Background()
		alice, bob := r.as("alice"), r.as("bob")
		conv := alice.chatWith("bob")
		// state reads the transfer message of key as bob and as alice sees it
		seen := func(t *testing.T, who *browser, amount, state, text string) {
			t.Helper()
			s, body := who.get("/chats/" + conv)
			if s != 200 || strings.Count(body, `data-kind="transfer"`) == 0 {
				t.Fatalf("%d\n%s", s, body)
			}
			for _, li := range strings.Split(body, "<li ") {
				if strings.Contains(li, `data-kind="transfer"`) && strings.Contains(li, "<b>"+amount+" yuan</b>") {
					if !strings.Contains(li, `data-state="`+state+`"`) || !strings.Contains(li, text) {
						t.Fatalf("the %s transfer, want %s %q:\n%s", amount, state, text, li)
					}
					return
				}
			}
			t.Fatalf("no %s transfer in\n%s", amount, body)
		}
		countTransfers := func(amount int64) (n int, last Message) {
			msgs, err := r.svc.Store.Messages(ctx, conv, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if m.Kind == KindTransfer && m.Amount == amount {
					n, last = n+1, m
				}
			}
			return n, last
		}
		start := r.balances()
		sub := r.svc.Hub.Subscribe(conv)
		defer r.svc.Hub.Unsubscribe(sub)

		t.Run("pending, then paid in place", func(t *testing.T) {
			f := url.Values{"what": {PayTransfer}, "conv": {conv}, "amount": {"20"}, "key": {"k-states-paid"}}
			if s, body, _ := alice.post("/pay", f); s != 200 || !strings.Contains(body, `id="decision"`) || !strings.Contains(body, `id="cancel-pay"`) {
				t.Fatalf("authorize: %d\n%s", s, body)
			}
			seen(t, bob, "20.00", StatePending, "<b>alice</b> is sending you <b>20.00 yuan</b> — waiting for alice's confirmation")
			seen(t, alice, "20.00", StatePending, "<b>alice</b> is sending <b>bob</b> <b>20.00 yuan</b>")
			if ev := <-sub.C; ev.Message.State != StatePending || ev.Update {
				t.Fatalf("first event %+v", ev)
			}
			if got := r.balances(); !equal(got, start) {
				t.Fatalf("a pending transfer moved money: %v -> %v", start, got)
			}
			_, pending := countTransfers(20_00)
			if s, body := alice.pay(f); s != 200 || !strings.Contains(body, `data-state="done"`) {
				t.Fatalf("pay: %d\n%s", s, body)
			}
			n, done := countTransfers(20_00)
			if n != 1 || done.Seq != pending.Seq || done.State != StateDone {
				t.Fatalf("%d transfer messages, pending %+v, now %+v", n, pending, done)
			}
			for live := false; !live; {
				select {
				case ev := <-sub.C:
					live = ev.Message.Seq == pending.Seq && ev.Update && ev.Message.State == StateDone
				case <-time.After(10 * time.Second):
					t.Fatal("no live update of the pending message to done")
				}
			}
			seen(t, bob, "20.00", StateDone, "<b>alice</b> sent <b>bob</b> <b>20.00 yuan</b>")
			seen(t, alice, "20.00", StateDone, "<b>alice</b> sent <b>bob</b> <b>20.00 yuan</b>")
			// a second completion of the same transfer moves nothing
			alice.pay(f)
			if a, b := r.balance("alice"), r.balance("bob"); a != start["alice"]-20_00 || b != start["bob"]+20_00 {
				t.Fatalf("balances %d %d", a, b)
			}
			if n, m := countTransfers(20_00); n != 1 || m.State != StateDone {
				t.Fatalf("after the second completion: %d %+v", n, m)
			}
		})
		mid := r.balances()
		for _, tc := range []struct {
			name   string
			amount string
			run    func(t *testing.T, f url.Values)
			state  string
			text   string
		}{
			{"refused by a limit at the proof", "21.00", func(t *testing.T, f url.Values) {
				r.auth.proofErr = &txclient.APIError{Status: 422, Code: "limit_exceeded"}
				defer func() { r.auth.proofErr = nil }()
				if s, body := alice.pay(f); s != 422 || code(body) != "limit" {
					t.Fatalf("%d %q", s, code(body))
				}
			}, StateRefused, "was not made; no money moved"},
			{"cancelled by the payer", "22.00", func(t *testing.T, f url.Values) {
				alice.post("/pay", f)
				before := len(r.auth.cancelled)
				if s, _, loc := alice.post("/pay/cancel", f); s != http.StatusSeeOther || loc != "/chats/"+conv {
					t.Fatalf("cancel: %d %q", s, loc)
				}
				if len(r.auth.cancelled) != before+1 {
					t.Fatal("the intent was not cancelled at txauth")
				}
			}, StateCancelled, "Cancelled"},
			{"abandoned, expired when next looked at", "23.00", func(t *testing.T, f url.Values) {
				alice.post("/pay", f)
				seen(t, bob, "23.00", StatePending, "waiting for alice's confirmation")
				r.clock.Add(DefaultPendingTTL + time.Second)
				if s, _ := bob.get("/chats"); s != 200 { // listed: expired before the chat is opened
					t.Fatalf("list: %d", s)
				}
				if _, m := countTransfers(23_00); m.State != StateExpired {
					t.Fatalf("after the list: %+v", m)
				}
			}, StateExpired, "Expired"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := url.Values{"what": {PayTransfer}, "conv": {conv}, "amount": {tc.amount}, "key": {"k-states-" + tc.name}}
				tc.run(t, f)
				seen(t, bob, tc.amount, tc.state, tc.text)
				seen(t, alice, tc.amount, tc.state, tc.text)
				if got := r.balances(); !equal(got, mid) {
					t.Fatalf("money moved: %v -> %v", mid, got)
				}
			})
		}
		t.Run("the limit's reason is shown in Chinese too", func(t *testing.T) {
			zh := r.as("bob")
			u, _ := url.Parse(r.srv.URL)
			zh.c.Jar.SetCookies(u, []*http.Cookie{{Name: "egate_lang", Value: "zh"}})
			_, body := zh.get("/chats/" + conv)
			want := "<b>alice</b> 向 <b>bob</b> 的转账 <b>21.00 元</b> 未转出，没有资金变动 — " + i18n.In(i18n.ZH, time.UTC).T("msg.err.limit")
			if !strings.Contains(body, want) {
				t.Fatalf("want %q in\n%s", want, body)
			}
		})
		r.checkLedger()
	})
}

// TestTransferEventsPerViewer: in a group, the pending transfer arrives
// live to the payee as "… is sending you …" and to another member as
// "… is sending bob …", each rendered for its reader (the render cache is
// per event: it must not hand one reader's sentence to the other).
func TestTransferEventsPerViewer(t *testing.T) {
	r := newRig(t, storetest.SQLite(t))
	alice, bob, carol := r.as("alice"), r.as("bob"), r.as("carol")
	conv := alice.group("trip", "bob", "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func(b *browser) *bufio.Reader {
		req, _ := http.NewRequestWithContext(ctx, "GET", r.srv.URL+"/chats/"+conv+"/events", nil)
		resp, err := b.c.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("events: %v %+v", err, resp)
		}
		t.Cleanup(func() { resp.Body.Close() })
		rd := bufio.NewReader(resp.Body)
		if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "retry:") {
			t.Fatalf("first line %q", line)
		}
		return rd
	}
	streams := []struct {
		who  string
		rd   *bufio.Reader
		want string
	}{
		{"bob", open(bob), `is sending you \u003cb\u003e30.00 yuan`},
		{"carol", open(carol), `is sending \u003cb\u003ebob\u003c/b\u003e \u003cb\u003e30.00 yuan`},
	}
	for r.svc.Hub.Subscribers(conv) < 2 {
		t.Fatal("the streams are not subscribed")
	}
	f := url.Values{"what": {PayTransfer}, "conv": {conv}, "to": {r.ids["bob"]}, "amount": {"30"}, "key": {"k-viewers"}}
	if s, body, _ := alice.post("/pay", f); s != 200 {
		t.Fatalf("authorize: %d\n%s", s, body)
	}
	for _, st := range streams {
		for {
			line, err := st.rd.ReadString('\n')
			if err != nil {
				t.Fatalf("%s's stream ended: %v", st.who, err)
			}
			if strings.HasPrefix(line, "data: ") && strings.Contains(line, `data-kind=\"transfer\"`) {
				if !strings.Contains(line, st.want) || !strings.Contains(line, `data-state=\"pending\"`) {
					t.Fatalf("%s reads %s", st.who, line)
				}
				break
			}
		}
	}
}
