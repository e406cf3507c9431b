package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/messenger"
)

// egate admin messenger service list|show|reply: the staff see alice's
// unanswered conversation, read it, answer it (audited with the operator's
// name); a reply to an unknown customer or an empty one is one line on
// stderr and sends nothing.
func TestAdminMessengerService(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "egate.db")
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	st := &messenger.Store{DB: db}
	if err := st.Profile(ctx, "p-alice", "alice"); err != nil {
		t.Fatal(err)
	}
	conv, err := st.ServiceConversation(ctx, "p-alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Post(ctx, messenger.Message{Conversation: conv, Sender: "p-alice", Kind: messenger.KindText, Body: "my card is stuck"}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	r := run(t, dir, nil, "admin", "messenger", "service", "list", "--db", dsn)
	if r.code != 0 || !strings.Contains(r.stdout, "alice") || !strings.Contains(r.stdout, "1 unread") {
		t.Fatalf("list: %+v", r)
	}
	r = run(t, dir, nil, "admin", "messenger", "service", "show", "alice", "--db", dsn)
	if r.code != 0 || !strings.Contains(r.stdout, "my card is stuck") {
		t.Fatalf("show: %+v", r)
	}
	r = run(t, dir, nil, "--operator", "desk-7", "admin", "messenger", "service", "reply", "alice", "We have unlocked it.", "--db", dsn)
	if r.code != 0 || !strings.Contains(r.stdout, "sent to alice") {
		t.Fatalf("reply: %+v", r)
	}
	oneLine(t, run(t, dir, nil, "admin", "messenger", "service", "reply", "nobody", "hello", "--db", dsn), "nobody", "nothing was sent")
	oneLine(t, run(t, dir, nil, "admin", "messenger", "service", "reply", "alice", " ", "--db", dsn), "write something", "nothing was sent")
	r = run(t, dir, nil, "admin", "audit", "tail", "--db", dsn)
	if !strings.Contains(r.stdout, "admin.messenger.reply") || !strings.Contains(r.stdout, "desk-7") {
		t.Fatalf("audit: %+v", r)
	}
	db, err = store.Open(ctx, store.Config{Driver: store.SQLite, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	msgs, err := (&messenger.Store{DB: db}).Messages(ctx, conv, 0, 10)
	if err != nil || len(msgs) != 2 || msgs[1].Sender != messenger.Staff || msgs[1].Body != "We have unlocked it." {
		t.Fatalf("messages: %+v %v", msgs, err)
	}
}
