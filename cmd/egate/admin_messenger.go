package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/messenger"
)

func init() { registerAdmin(newMessengerCmd) }

// newMessengerCmd is egate admin messenger service list|show|reply: the
// bank's customer service answers the customers' service conversations
// (platform/messenger).
func newMessengerCmd() *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "messenger", Short: "the messenger: customer service answers customers' conversations"}
	cmd.PersistentFlags().StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	service := &cobra.Command{Use: "service", Short: "customer-service conversations: list, show one, reply"}
	open := func(cmd *cobra.Command) (*messenger.Service, *store.DB, error) {
		db, err := (&authFlags{db: dsn, cmd: cmd, inspect: true}).openDB(cmd.Context())
		if err != nil {
			return nil, nil, err
		}
		rows, err := db.Query(cmd.Context(), `SELECT id FROM msg_conversations LIMIT 1`)
		if err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("this database has no messenger: is --db (or database.dsn) egate's database, and has egate (platform messenger or demo) run on it since the messenger came? (%w)", err)
		}
		rows.Close()
		return &messenger.Service{Store: &messenger.Store{DB: db}, Hub: &messenger.Hub{}}, db, nil
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "the customers' service conversations, unanswered first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			rows, err := svc.Store.ServiceInbox(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(rows) == 0 {
				fmt.Fprintln(w, "no customer-service conversations")
			}
			for _, r := range rows {
				fmt.Fprintf(w, "%-16s %-24s %3d unread  last %s\n", r.Customer.Name, r.Customer.ID, r.Unread, r.Last.UTC().Format("2006-01-02 15:04:05Z"))
			}
			return nil
		},
	}
	show := &cobra.Command{
		Use:   "show CUSTOMER",
		Short: "the messages of a customer's service conversation (login name or passport id); marks them read by the staff",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx := cmd.Context()
			who, err := svc.Store.Customer(ctx, args[0])
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			conv, err := svc.Store.ServiceConversation(ctx, who.ID)
			if err != nil {
				return err
			}
			msgs, err := svc.Store.Messages(ctx, conv, -1, 100)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, m := range msgs {
				from := m.SenderName
				if m.Sender == messenger.Staff {
					from = "staff"
				}
				body := m.Body
				if m.Kind != messenger.KindText {
					body = m.Kind + " " + money.Yuan(m.Amount)
				}
				fmt.Fprintf(w, "%s %-8s %s\n", m.Created.UTC().Format("2006-01-02 15:04:05Z"), from, strings.ReplaceAll(body, "\n", "\n                              "))
				if err := svc.Store.MarkRead(ctx, conv, messenger.Staff, m.Seq); err != nil {
					return err
				}
			}
			return nil
		},
	}
	reply := &cobra.Command{
		Use:   "reply CUSTOMER TEXT",
		Short: "answer a customer in their service conversation as the bank's staff (audited as admin.messenger.reply)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			svc, db, err := open(cmd)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx := cmd.Context()
			who, err := svc.Store.Customer(ctx, args[0])
			if err != nil {
				return fmt.Errorf("%s: %w; nothing was sent", args[0], err)
			}
			m, err := svc.StaffReply(ctx, who.ID, args[1])
			if err != nil {
				return fmt.Errorf("%w; nothing was sent", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sent to %s (message %d of their service conversation)\n", who.Name, m.Seq)
			return op.record(ctx, db, "admin.messenger.reply", map[string]string{"customer": who.ID, "conversation": m.Conversation, "seq": fmt.Sprint(m.Seq)})
		},
	}
	service.AddCommand(list, show, reply)
	cmd.AddCommand(service)
	return cmd
}
