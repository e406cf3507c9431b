package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestMigrationsApplyOnceOnBothEngines(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var n1 int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n1); err != nil {
			t.Fatal(err)
		}
		if n1 == 0 {
			t.Fatal("no migration recorded")
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		var n2 int
		db.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n2)
		if n1 != n2 {
			t.Fatalf("second Migrate changed the count: %d → %d", n1, n2)
		}
	})
}

// An atomic guarded counter: 200 parallel increments with a cap of 6 let
// exactly 6 through, on both engines.
func TestGuardedCounterIsAtomic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, `INSERT INTO kv (k, v, updated_ms) VALUES (?, ?, ?)`, "counter", "0", 0); err != nil {
			t.Fatal(err)
		}
		const limit = 6
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted := 0
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := db.Exec(ctx, `UPDATE kv SET v = CAST(CAST(v AS INTEGER) + 1 AS TEXT), updated_ms = updated_ms + 1 WHERE k = ? AND CAST(v AS INTEGER) < ?`, "counter", limit)
				if err != nil {
					t.Error(err)
					return
				}
				if n, _ := res.RowsAffected(); n == 1 {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		var v string
		db.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, "counter").Scan(&v)
		if granted != limit || v != fmt.Sprint(limit) {
			t.Fatalf("granted %d, stored %s; want %d", granted, v, limit)
		}
	})
}

func TestRebind(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"none", "SELECT 1", "SELECT 1"},
		{"two", "SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"},
		{"quoted question mark kept", "SELECT '?' WHERE a = ?", "SELECT '?' WHERE a = $1"},
	}
	pg := store.NewForDialect(store.Postgres)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pg.Rebind(tc.in); got != tc.want {
				t.Errorf("Rebind(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  store.Config
		ok   bool
	}{
		{"sqlite", store.Config{Driver: "sqlite", DSN: "x.db"}, true},
		{"postgres", store.Config{Driver: "postgres", DSN: "postgres://u@h/db"}, true},
		{"unknown driver", store.Config{Driver: "mysql", DSN: "x"}, false},
		{"empty dsn", store.Config{Driver: "sqlite"}, false},
		{"password in dsn", store.Config{Driver: "postgres", DSN: "postgres://u:secret@h/db"}, false},
		{"password in the query", store.Config{Driver: "postgres", DSN: "postgres://u@h/db?sslmode=disable&password=secret"}, false},
		{"password in the query, upper case", store.Config{Driver: "postgres", DSN: "postgresql://u@h/db?PASSWORD=secret"}, false},
		{"empty password in the query", store.Config{Driver: "postgres", DSN: "postgres://u@h/db?password="}, false},
		{"client key password in the query", store.Config{Driver: "postgres", DSN: "postgres://u@h/db?sslpassword=secret"}, false},
		{"other parameters", store.Config{Driver: "postgres", DSN: "postgres://u@h/db?sslmode=disable&application_name=secretary"}, true},
		{"not a url", store.Config{Driver: "postgres", DSN: "host=h"}, false},
		{"sqlite given a postgres url", store.Config{Driver: "sqlite", DSN: "postgres://u:secret@h/db"}, false},
		{"sqlite given a postgres url missing a slash", store.Config{Driver: "sqlite", DSN: "postgres:/u:secret@h/db"}, false},
		{"sqlite given a keyword dsn", store.Config{Driver: "sqlite", DSN: "host=h user=u password=secret dbname=d"}, false},
		{"sqlite file uri", store.Config{Driver: "sqlite", DSN: "file:x.db?mode=ro"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

// TestOpenSQLiteMissingDirectory: a database path in a directory that does
// not exist gets an error that names the directory and the fix, and nothing
// is created; a path in an existing directory opens.
func TestOpenSQLiteMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, dsn, want string
	}{
		{"missing directory", filepath.Join(dir, "var", "egate.db"), "the directory " + filepath.Join(dir, "var") + " does not exist"},
		{"directory is a file", filepath.Join(dir, "plain", "egate.db"), "is not a directory"},
		{"existing directory", filepath.Join(dir, "egate.db"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "plain"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: tc.dsn})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "database.dsn") {
				t.Fatalf("Open(%s) = %v, want an error saying %q and naming database.dsn", tc.dsn, err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "var")); !os.IsNotExist(err) {
				t.Fatalf("something was created: %v", err)
			}
		})
	}
}

// TestOpenSQLitePathWithURICharacters: a database path holding ?, # or %
// opens that very file (SQLite reads the file: URI egate builds), not a
// file named by the part before them.
func TestOpenSQLitePathWithURICharacters(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a?b.db", "a#b.db", "a%3fb.db", "x?mode=ro#y.db"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: path})
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			ents, _ := os.ReadDir(dir)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the database is not at %s; the directory holds %v", path, names)
			}
			for _, n := range names {
				if !strings.HasPrefix(n, name) {
					t.Fatalf("a file %q beside %q was created", n, name)
				}
			}
		})
	}
}

// TestOpenForInspection: MustExist refuses a SQLite file that is not there
// and creates nothing; NoMigrate opens an existing file without adding the
// schema.
func TestOpenForInspection(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	_, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: missing, MustExist: true, NoMigrate: true})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open of a missing file with MustExist = %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("the missing file was created: %v", err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: empty, MustExist: true, NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("NoMigrate: %d tables (%v), want none", n, err)
	}
}
