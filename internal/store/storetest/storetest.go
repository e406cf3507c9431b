// Package storetest runs store tests on both engines: a fresh SQLite file and
// a fresh PostgreSQL database on the server that make test starts
// (EGATE_TEST_PG_DSN names that server's maintenance database).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
)

// Each runs f once on SQLite and once on PostgreSQL, as subtests named
// "sqlite" and "postgres".
func Each(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}

// SQLite opens a migrated database in a fresh file.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Postgres opens a migrated, freshly created PostgreSQL database.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: PostgresDSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresDSN creates an empty database for this test and returns its DSN;
// open it twice to have two replicas on one database. It is dropped when the
// test ends.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := testenv.NeedEnv(t, "EGATE_TEST_PG_DSN", "PostgreSQL")
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "egate_t_" + hex.EncodeToString(rnd[:])
	adb, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adb.Exec("CREATE DATABASE " + name); err != nil {
		adb.Close()
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		adb.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		adb.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
