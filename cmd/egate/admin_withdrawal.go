package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// newReconcileCmd is egate admin atm reconcile: the SUSPECT withdrawals
// beside the ATM's record and the ledger's hold, and an operator's
// settlement of one.
func newReconcileCmd() *cobra.Command {
	var dsn, gw, session, capture, reason string
	var release bool
	cmd := &cobra.Command{
		Use:   "reconcile [--session S (--capture YUAN | --release) --reason TEXT]",
		Short: "list SUSPECT withdrawals with the ATM's record and the ledger's hold; settle one (audited)",
		Long: `Without --session, lists every SUSPECT withdrawal (an outcome the ATM could
not tell: it is never settled automatically): the withdrawal, the ATM's record
of its transaction as last reported (state, per-cassette requested, picked,
presented and rejected counts, retracted notes), with --gateway also the ATM's
record and cassettes now (asked through the agent gateway's HTTP listener), and
the ledger's hold.

With --session, settles that withdrawal: --capture YUAN captures that much of
the hold (at most the amount; the rest is released), --release releases it all.
--reason says why (what was counted). The settlement is audited
(admin.atm.reconcile) with the operator (--operator).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			settle := session != ""
			if !settle && (capture != "" || release || reason != "") {
				return errors.New("--capture, --release and --reason settle one withdrawal: give its --session")
			}
			var capFen int64
			var op operator
			if settle {
				if (capture != "") == release {
					return errors.New("give either --capture YUAN or --release; nothing was changed")
				}
				if strings.TrimSpace(reason) == "" {
					return errors.New("--reason is required: say what was counted; nothing was changed")
				}
				if capture != "" {
					var err error
					if capFen, err = parseYuan(capture); err != nil || capFen <= 0 {
						return fmt.Errorf("--capture %q: give a positive amount of yuan, e.g. 300 or 299.50; nothing was changed", capture)
					}
				}
				var err error
				if op, err = whoRuns(cmd); err != nil {
					return err
				}
			}
			db, err := (&authFlags{db: dsn, cmd: cmd, inspect: true}).openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			l := ledger.New(db, nil)
			wl, err := app.NewWithdrawalLedger(ctx, &ebank.Holds{Ledger: l, Grants: ebank.RequireGrant{}})
			if err != nil {
				return err
			}
			svc, err := withdrawal.New(withdrawal.Options{DB: db, Ledger: wl})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !settle {
				ws, err := svc.List(ctx, withdrawal.Suspect)
				if err != nil {
					return err
				}
				if len(ws) == 0 {
					fmt.Fprintln(out, "no SUSPECT withdrawals")
					return nil
				}
				for _, w := range ws {
					printSuspect(ctx, out, l, gw, w)
				}
				return nil
			}
			w, err := svc.Settle(ctx, withdrawal.Settlement{Session: session, Operator: op.name, CaptureFen: capFen, Reason: reason})
			if err != nil {
				return fmt.Errorf("%w; nothing was changed", err)
			}
			action := "release"
			if capFen > 0 {
				action = "capture"
			}
			if err := op.record(ctx, db, "admin.atm.reconcile", map[string]string{"session": w.Session, "atm": w.ATM, "txn": w.Txn,
				"hold": w.Hold, "action": action, "captured": money.Yuan(w.Captured), "released": money.Yuan(w.Released), "reason": reason}); err != nil {
				return err
			}
			fmt.Fprintf(out, "withdrawal %s: %s, captured %s yuan, released %s yuan (by %s)\n", w.Session, w.State, money.Yuan(w.Captured), money.Yuan(w.Released), op.name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dsn, "db", "", "database: SQLite file path or postgres:// URL (default: database.* from the config)")
	f.StringVar(&gw, "gateway", "", "the agent gateway's HTTP listener (e.g. http://127.0.0.1:8443), to ask the ATM now")
	f.StringVar(&session, "session", "", "the SUSPECT withdrawal to settle")
	f.StringVar(&capture, "capture", "", "capture this many yuan of the hold (the rest is released)")
	f.BoolVar(&release, "release", false, "release the whole hold")
	f.StringVar(&reason, "reason", "", "what the operator counted or found (audited)")
	return cmd
}

func printRecordJSON(w io.Writer, indent string, r *withdrawal.TxnRecord) {
	fmt.Fprintf(w, "%sstate %s", indent, r.State)
	if r.Error != "" {
		fmt.Fprintf(w, " (%s)", r.Error)
	}
	fmt.Fprintf(w, ", amount %s yuan, retracted %d notes\n", money.Yuan(r.AmountFen), r.Retracted)
	for _, c := range r.Cassettes {
		fmt.Fprintf(w, "%s  cassette %d: requested %d picked %d presented %d rejected %d\n", indent, c.Cassette, c.Requested, c.Picked, c.Presented, c.Rejected)
	}
}

func printSuspect(ctx context.Context, w io.Writer, l *ledger.Ledger, gw string, wd *withdrawal.Withdrawal) {
	fmt.Fprintf(w, "withdrawal %s  ATM %s  txn %s  account %s  %s yuan  since %s\n", wd.Session, wd.ATM, wd.Txn, wd.Account,
		money.Yuan(wd.AmountFen), time.UnixMilli(wd.UpdatedMS).UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  reason: %s\n", wd.Reason)
	if wd.Record != nil {
		fmt.Fprintln(w, "  the ATM's record as last reported:")
		printRecordJSON(w, "    ", wd.Record)
	}
	if gw != "" {
		var rec withdrawal.TxnRecord
		if err := getJSON(ctx, strings.TrimRight(gw, "/")+"/agent-gateway/atms/"+wd.ATM+"/txns/"+wd.Txn, &rec); err != nil {
			fmt.Fprintf(w, "  the ATM now: cannot ask (%v)\n", err)
		} else {
			fmt.Fprintln(w, "  the ATM's record now:")
			printRecordJSON(w, "    ", &rec)
		}
		var st struct {
			AtExit    int `json:"notes_at_exit"`
			RejectBin int `json:"reject_bin"`
			Cassettes []struct {
				ID    int   `json:"id"`
				Denom int64 `json:"denomination_fen"`
				Count int   `json:"count"`
			} `json:"cassettes"`
		}
		if err := getJSON(ctx, strings.TrimRight(gw, "/")+"/agent-gateway/atms/"+wd.ATM+"/status", &st); err == nil {
			fmt.Fprintf(w, "  the ATM's cassettes now: notes at exit %d, reject bin %d;", st.AtExit, st.RejectBin)
			for _, c := range st.Cassettes {
				fmt.Fprintf(w, " %d×%s", c.Count, money.Yuan(c.Denom))
			}
			fmt.Fprintln(w)
		}
	}
	if wd.Hold == "" {
		fmt.Fprintln(w, "  ledger: no hold")
	} else if h, err := l.Get(ctx, wd.Hold); err != nil {
		fmt.Fprintf(w, "  ledger: hold %s cannot be read (%v)\n", wd.Hold, err)
	} else {
		fmt.Fprintf(w, "  ledger: hold %s of %s yuan from %s, %s\n", h.ID, money.Yuan(h.Amount), h.Debit, h.State)
	}
}

func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}
