package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// startAuthsvc starts `egate authsvc --config conf` in b's directory and
// environment and returns its base URL once it serves, and stop, which
// stops it with SIGINT, fails the test unless it stops cleanly, and
// returns what it wrote to stderr. A process not stopped by the test is
// stopped at its end.
func startAuthsvc(t *testing.T, b *adminBench, conf string) (base string, stop func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, egateBin, "authsvc", "--config", conf)
	cmd.Dir, cmd.Env = b.dir, append(os.Environ(), b.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := regexp.MustCompile(`authsvc serving \S+ at (http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		t.Fatalf("egate authsvc did not start:\n%s", stderr.String())
	}
	go io.Copy(io.Discard, out)
	var once sync.Once
	stop = func() string {
		t.Helper()
		once.Do(func() {
			defer cancel()
			cmd.Process.Signal(syscall.SIGINT)
			if err := cmd.Wait(); err != nil {
				t.Errorf("egate authsvc at %s did not stop cleanly: %v\n%s", base, err, stderr.String())
			}
		})
		return stderr.String()
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

// TestAuthsvcReplicasHoldTheLimit (issue 11 item 2): two real `egate
// authsvc` processes on one PostgreSQL database. A customer's eight
// payments of 1,000 yuan, each within level 2's per-transaction limit, are
// authorized at once through both replicas and proved with SMS codes at
// once through both; level 2 allows 5,000 yuan a day, so exactly five are
// granted and three refused with limit_exceeded, whichever replica counts
// them. The day's usage in the database is 5,000 yuan, the sum of the
// granted payments, with one count per grant.
func TestAuthsvcReplicasHoldTheLimit(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	b := newAdminBench(t)
	const secret = "ebank-platform-0123456789abcdef0123456789"
	const mobile = "13900002222"
	b.env = append(b.env, "EGATE_TEST_TX_SECRET="+secret)
	r := b.run(t, "admin", "user", "add", "--db", dsn, "--login", "dora", "--mobile", mobile, "--reserved-message", "blue heron 3")
	m := regexp.MustCompile(`registered (\S+) \(login name `).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("user add: %+v", r)
	}
	pid, payer := m[1], "6222000000000001"
	conf := filepath.Join(b.dir, "egate.yaml")
	os.WriteFile(conf, []byte(`http: {listen: "127.0.0.1:0"}
database: {driver: postgres, dsn: "`+dsn+`"}
hsm: {module: "`+b.sh.Module+`", token: `+benchHSMToken+`, pin-source: "env:EGATE_TEST_HSM_PIN"}
factors: {enabled: [sms], sms: {dev-sink: true, per-customer: 100, per-phone: 100}}
authsvc:
  backend-clients:
    - {id: ebank, secret-source: "env:EGATE_TEST_TX_SECRET", scopes: ["tx:authorize", "tx:execute"]}
transactions:
  accounts:
    - {customer: `+pid+`, account: "`+payer+`"}
`), 0o600)
	var replicas [2]*txclient.Client
	for i := range replicas {
		base, _ := startAuthsvc(t, b, conf)
		replicas[i] = &txclient.Client{BaseURL: base, ID: "ebank", Secret: secret}
	}
	db, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	// Eight payments to eight payees (the SMS names each by its last four
	// digits), authorized at once, alternately on each replica.
	const n, amount = 8, 1_000_00
	ins := make([]intent.Intent, n)
	decs := make([]txclient.Decision, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ins {
		ins[i] = intent.Intent{Customer: pid, Channel: intent.Web, Kind: intent.Transfer, Payer: payer, Payee: fmt.Sprintf("62220000000010%02d", i),
			Amount: amount, Currency: "CNY", Device: "fp-1", ClientIP: "192.0.2.7", IdempotencyKey: fmt.Sprint("pay-", i)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			decs[i], errs[i] = replicas[i%2].Authorize(ctx, ins[i])
		}()
	}
	wg.Wait()
	for i, d := range decs {
		if errs[i] != nil || d.Decision != txclient.Allow || d.Level != 2 {
			t.Fatalf("payment %d: %+v %v, want allowed at level 2", i, d, errs[i])
		}
	}
	// A challenge each (on the other replica), with the code its SMS
	// carries.
	sink := sms.NewSink(db, nil)
	chs := make([]txclient.Challenge, n)
	codes := make([]string, n)
	smsCode := regexp.MustCompile(`\] (\d{6}) is your code to (.*)\. Valid`)
	for i := range chs {
		if chs[i], err = replicas[(i+1)%2].Challenge(ctx, decs[i].Intent, txclient.ChallengeRequest{Factor: "sms", ClientIP: "192.0.2.7"}); err != nil {
			t.Fatalf("challenge %d: %v", i, err)
		}
		sent, err := sink.List(ctx, mobile, 2*n)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sent {
			if m := smsCode.FindStringSubmatch(s.Body); m != nil && strings.Contains(m[2], chs[i].Text) {
				codes[i] = m[1]
				break
			}
		}
		if codes[i] == "" {
			t.Fatalf("no SMS for %q among %+v", chs[i].Text, sent)
		}
	}
	// The proofs at once, alternately on each replica.
	start := make(chan struct{})
	grants := make([]txclient.Grant, n)
	for i := range chs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			grants[i], errs[i] = replicas[i%2].Proof(ctx, decs[i].Intent, txclient.ProofRequest{ChallengeID: chs[i].ID, Response: codes[i], ClientIP: "192.0.2.7"})
		}()
	}
	close(start)
	wg.Wait()
	granted, refused := 0, 0
	var sum int64
	for i, err := range errs {
		switch {
		case err == nil && grants[i].Token != "":
			granted++
			sum += ins[i].Amount
		case txclient.Code(err) == "limit_exceeded":
			refused++
		default:
			t.Errorf("proof %d: %+v %v", i, grants[i], err)
		}
	}
	if granted != 5 || refused != 3 {
		t.Fatalf("%d granted, %d refused limit_exceeded; want 5 and 3 (5,000 yuan a day at level 2)", granted, refused)
	}
	var used, counted, counts, grantRows int64
	if err := db.QueryRow(ctx, `SELECT COALESCE(SUM(used), 0) FROM limit_usage WHERE customer = ? AND period LIKE 'd:%'`, pid).Scan(&used); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM limit_counts WHERE customer = ? AND state = 'counted'`, pid).Scan(&counted, &counts); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM tx_intents WHERE customer = ? AND grant_hash IS NOT NULL`, pid).Scan(&grantRows); err != nil {
		t.Fatal(err)
	}
	if used != 5_000_00 || counted != sum || counts != 5 || grantRows != 5 {
		t.Fatalf("day's usage %d fen, counted %d fen in %d counts, %d grants; want 500000, %d, 5, 5", used, counted, counts, grantRows, sum)
	}
}
