package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultsDecode(t *testing.T) {
	c := Defaults()
	if c.Database.Driver != "sqlite" || c.HTTP.Listen == "" || c.Demo.VarDir == "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "egate.yaml")
	os.WriteFile(file, []byte("http:\n  listen: 0.0.0.0:9000\ndatabase:\n  driver: postgres\n  dsn: postgres://egate@db/egate\n"), 0o600)
	c, err := Load(Sources{
		File:    file,
		Environ: []string{"EGATE_HTTP_LISTEN=127.0.0.1:9100", "EGATE_HSM_POOL_SIZE=4", "PATH=/bin", "EGATE_TEST_STRICT=1"},
		Sets:    []string{"log.level=debug"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != "127.0.0.1:9100" {
		t.Errorf("env did not override file: listen=%q", c.HTTP.Listen)
	}
	if c.Database.Driver != "postgres" || c.Database.DSN != "postgres://egate@db/egate" {
		t.Errorf("file not applied: %+v", c.Database)
	}
	if c.HSM.Pool != 4 || c.Log.Level != "debug" {
		t.Errorf("env/set not applied: pool=%d level=%q", c.HSM.Pool, c.Log.Level)
	}
	if c.HSM.Token != "egate-demo" {
		t.Errorf("default lost: token=%q", c.HSM.Token)
	}
}

func TestStrictness(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	tests := []struct {
		name    string
		src     Sources
		mention string
	}{
		{"unknown top-level key", Sources{File: write("a.yaml", "colour: red\n")}, "colour"},
		{"unknown nested key", Sources{File: write("b.yaml", "database:\n  dirver: sqlite\n")}, "dirver"},
		{"wrong type", Sources{File: write("c.yaml", "hsm:\n  pool-size: many\n")}, "many"},
		{"unknown env key of a known section", Sources{Environ: []string{"EGATE_DATABASE_DNS=x"}}, "EGATE_DATABASE_DNS"},
		{"bad env value", Sources{Environ: []string{"EGATE_HSM_POOL_SIZE=x"}}, "EGATE_HSM_POOL_SIZE"},
		{"unknown --set key", Sources{Sets: []string{"hsm.pin=1234"}}, "hsm.pin"},
		{"--set without =", Sources{Sets: []string{"log.level"}}, "key=value"},
		{"missing file", Sources{File: filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"unknown transactions key", Sources{File: write("d.yaml", "transactions:\n  grant-tll: 5m\n")}, "grant-tll"},
		{"unknown limit key", Sources{File: write("e.yaml", "transactions:\n  limits:\n    - {level: 1, per-txn: 0}\n")}, "per-txn"},
		{"limit table on the command line", Sources{Sets: []string{"transactions.limits=1"}}, "config file only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.src)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q does not name %q", err, tc.mention)
			}
		})
	}
}

// TestTransactionsLimitTable: a limit table from a file replaces the
// default; a table whose limits fall as the level rises is refused.
func TestTransactionsLimitTable(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, table string
		ok          bool
	}{
		{"two levels", "    - {level: 1, per-transaction: 0, per-day: 0, per-year: 0}\n    - {level: 2, per-transaction: 100, per-day: 1000, per-year: 10000}\n", true},
		{"falling", "    - {level: 1, per-transaction: 500, per-day: 500, per-year: 500}\n    - {level: 2, per-transaction: 100, per-day: 1000, per-year: 10000}\n", false},
		{"level missing", "    - {level: 2, per-transaction: 100, per-day: 1000, per-year: 10000}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, tc.name+".yaml")
			os.WriteFile(file, []byte("transactions:\n  limits:\n"+tc.table), 0o600)
			c, err := Load(Sources{File: file})
			if err != nil {
				t.Fatal(err)
			}
			err = c.Transactions.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && len(c.Transactions.Limits) != 2 {
				t.Fatalf("table %+v", c.Transactions.Limits)
			}
		})
	}
	if n := len(Defaults().Transactions.WithDefaults().Limits); n != 5 {
		t.Fatalf("default table has %d levels", n)
	}
}

func TestValidateAll(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		ok   bool
	}{
		{"bad listen", []string{"http.listen=8080"}, false},
		{"bad level", []string{"log.level=loud"}, false},
		{"bad driver", []string{"database.driver=oracle"}, false},
		{"bad public url", []string{"http.public-url=ftp://x"}, false},
		{"module set", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.sms.dev-sink=true"}, true},
		// The defaults choose no SMS gateway: production must name one.
		{"sms without gateway or sink", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so"}, false},
		{"sms gateway", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.sms.gateway.url=https://sms.example.com/v1/send", "factors.sms.gateway.token-source=env:SMS_TOKEN"}, true},
		{"sms gateway and sink", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.sms.gateway.url=https://sms.example.com/v1/send", "factors.sms.gateway.token-source=env:SMS_TOKEN", "factors.sms.dev-sink=true"}, false},
		{"sms gateway over http", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.sms.gateway.url=http://sms.example.com/v1/send", "factors.sms.gateway.token-source=env:SMS_TOKEN"}, false},
		{"sms off", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp"}, true},
		{"bank time zone", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "transactions.time-zone=Europe/Paris"}, true},
		{"unknown time zone", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "transactions.time-zone=Mars/Olympus"}, false},
		{"grant ttl too long", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "transactions.grant-ttl=2h"}, false},
		{"grant ttl too short", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "transactions.grant-ttl=1s"}, false},
		// A platform's section is declared once (platform.Config) and
		// checked here with the key named.
		{"platform listen", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.mall.listen=8082"}, false},
		{"platform short cookie key", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.cookie-key=short"}, false},
		{"platform cookie key", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.cookie-key=0123456789abcdef0123456789abcdef"}, true},
		{"platform level", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.messenger.level=7"}, false},
		{"platform public url", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.public-url=ebank.example"}, false},
		{"platform tx client without secret", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.tx-client=ebank-backend"}, false},
		{"platform session ttl", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.session-ttl=2h"}, true},
		{"platform negative session ttl", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.session-ttl=-1h"}, false},
		{"ebank statement font", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.statement-font=/opt/fonts/NotoSansSC.TTF"}, true},
		{"ebank statement font relative", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.statement-font=fonts/a.ttf"}, false},
		{"ebank statement font not TrueType", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.statement-font=/usr/share/fonts/a.otf"}, false},
		{"statement font on the mall", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.mall.statement-font=/usr/share/fonts/a.ttf"}, false},
		{"platforms issuer", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.issuer=passport"}, false},
		// Fields the process fills in are not keys of the file.
		{"platform name is not a key", []string{"hsm.module=/usr/lib/softhsm/libsofthsm2.so", "factors.enabled=otp", "platforms.ebank.name=mall"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(Sources{Sets: tc.set})
			if err == nil {
				err = c.ValidateAll()
			} else if tc.ok {
				t.Fatal(err)
			}
			if err != nil {
				t.Log(err) // the message an operator reads
			}
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateAll() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

type withSecret struct {
	A struct {
		Password string `yaml:"password" secret:"true"`
		Name     string `yaml:"name"`
	} `yaml:"a"`
}

func TestRedact(t *testing.T) {
	var w withSecret
	w.A.Password, w.A.Name = "hunter2", "alice"
	redact(reflectValue(&w))
	if w.A.Password != "<redacted>" || w.A.Name != "alice" {
		t.Fatalf("redact: %+v", w)
	}
}
