package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/money"
)

func init() { registerAdmin(newATMAdminCmd) }

func newATMAdminCmd() *cobra.Command {
	var (
		port    string
		baud    int
		timeout time.Duration
	)
	root := &cobra.Command{
		Use:   "atm",
		Short: "talk to an ATM on a serial port: status, dispense, retract, txn",
		Long: `Operator commands for an ATM on a branch machine's serial port. Each prints
what the ATM reports. A dispense is keyed by --txn (32 hex digits; a new one is
made and printed if absent): repeating the command with the same --txn never
dispenses twice, it prints what the ATM did.`,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&port, "port", "", "serial port (e.g. /dev/ttyS0 or /dev/pts/3)")
	pf.IntVar(&baud, "baud", 115200, "line speed")
	pf.DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")

	open := func(cmd *cobra.Command) (*atm.Driver, context.Context, context.CancelFunc, error) {
		if port == "" {
			return nil, nil, nil, errors.New("--port is required")
		}
		d := atm.NewDriver(atm.DriverConfig{Open: atm.SerialOpener(port, baud), Link: atm.LinkConfig{Baud: baud}})
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		return d, ctx, cancel, nil
	}

	status := &cobra.Command{
		Use: "status", Short: "print the ATM's status", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, ctx, cancel, err := open(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			defer d.Close()
			h, err := d.Hello(ctx)
			if err != nil {
				return err
			}
			st, err := d.Status(ctx)
			if err != nil {
				return err
			}
			printStatus(cmd.OutOrStdout(), h, st)
			printLine(cmd.OutOrStdout(), d.LineStats())
			return nil
		},
	}

	var amount, txn, notes string
	dispense := &cobra.Command{
		Use: "dispense --amount YUAN [--txn ID] [--notes C:N,…]", Short: "dispense --amount in yuan (e.g. --amount 350 or 350.00)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("dispense takes the amount as a flag: --amount %s", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			fen, err := parseYuan(amount)
			if err != nil {
				return err
			}
			id := atm.NewTxnID()
			if txn != "" {
				if id, err = atm.ParseTxnID(txn); err != nil {
					return err
				}
			}
			d, ctx, cancel, err := open(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			defer d.Close()
			var mix []atm.Notes
			if notes != "" {
				if mix, err = parseNotes(notes); err != nil {
					return err
				}
			} else {
				st, err := d.Status(ctx)
				if err != nil {
					return err
				}
				if mix, err = atm.Mix(fen, st.Cassettes); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "transaction %s\n", id)
			rec, err := d.Dispense(ctx, id, fen, mix)
			if rec.State != atm.StateNone {
				printRecord(cmd.OutOrStdout(), rec)
			}
			return err
		},
	}
	dispense.Flags().StringVar(&amount, "amount", "", "amount in yuan")
	dispense.Flags().StringVar(&txn, "txn", "", "transaction id (32 hex digits); repeat to ask what happened")
	dispense.Flags().StringVar(&notes, "notes", "", "cassette:count,… (default: chosen from the status)")

	txnCmd := func(use, short string, f func(*atm.Driver, context.Context, atm.TxnID) (atm.TxnRecord, error)) *cobra.Command {
		var txn string
		c := &cobra.Command{
			Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				id, err := atm.ParseTxnID(txn)
				if err != nil {
					return err
				}
				d, ctx, cancel, err := open(cmd)
				if err != nil {
					return err
				}
				defer cancel()
				defer d.Close()
				rec, err := f(d, ctx, id)
				if rec.State != atm.StateNone || err == nil {
					printRecord(cmd.OutOrStdout(), rec)
				}
				return err
			},
		}
		c.Flags().StringVar(&txn, "txn", "", "transaction id (32 hex digits)")
		return c
	}
	retract := txnCmd("retract", "retract notes left at the exit into the reject bin", (*atm.Driver).Retract)
	query := txnCmd("txn", "ask the ATM what it did for a transaction", (*atm.Driver).TxnStatus)
	root.AddCommand(status, dispense, retract, query, newReconcileCmd(), newPINKeyCmd())
	return root
}

func parseYuan(s string) (int64, error) {
	fen, err := money.ParseYuan(s)
	if err != nil || fen > 1_000_000*100 {
		return 0, fmt.Errorf("--amount %q: want a positive amount in yuan, at most 1,000,000 with at most 2 decimals, e.g. 350 or 350.00", s)
	}
	return fen, nil
}

func parseNotes(s string) ([]atm.Notes, error) {
	var out []atm.Notes
	for _, p := range strings.Split(s, ",") {
		c, n, ok := strings.Cut(strings.TrimSpace(p), ":")
		ci, err1 := strconv.ParseUint(c, 10, 8)
		ni, err2 := strconv.ParseUint(n, 10, 16)
		if !ok || err1 != nil || err2 != nil || ni == 0 {
			return nil, fmt.Errorf("--notes %q: want cassette:count,…", s)
		}
		out = append(out, atm.Notes{Cassette: uint8(ci), Count: uint16(ni)})
	}
	return out, nil
}

var (
	deviceNames   = []string{"IDLE", "BUSY", "FAULT"}
	shutterNames  = []string{"CLOSED", "OPEN", "JAMMED"}
	cassetteNames = []string{"OK", "LOW", "EMPTY", "MISSING", "JAMMED"}
)

func name(names []string, i uint8) string {
	if int(i) < len(names) {
		return names[i]
	}
	return strconv.Itoa(int(i))
}

func printStatus(w io.Writer, h atm.HelloReply, st atm.Status) {
	fmt.Fprintf(w, "protocol v%d  boot %x  capabilities %#04x\n", h.Version, h.BootID, h.Capabilities)
	fmt.Fprintf(w, "device %s  shutter %s  notes at exit %d  reject bin %d  sensors %#04x\n",
		name(deviceNames, st.Device), name(shutterNames, st.Shutter), st.AtExit, st.RejectBin, st.Sensors)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "cassette\tdenomination\tcount\tstate")
	for _, c := range st.Cassettes {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", c.ID, money.Yuan(c.Denom), c.Count, name(cassetteNames, c.State))
	}
	tw.Flush()
	if h.Last != nil {
		fmt.Fprint(w, "last operation: ")
		printRecord(w, *h.Last)
	}
}

// printLine reports what crossed the line during this command: on a good
// line every frame is ACKed first time and nothing else is counted.
func printLine(w io.Writer, c atm.LinkCounts) {
	fmt.Fprintf(w, "line: %d frames sent, %d received, %d retransmitted, NAKs %d sent / %d received, %d bad CRC, %d garbage bytes\n",
		c.FramesOut, c.FramesIn, c.Retransmits, c.NAKsSent, c.NAKsReceived, c.BadCRC, c.Garbage)
}

func printRecord(w io.Writer, r atm.TxnRecord) {
	fmt.Fprintf(w, "transaction %s  state %s  amount %s", r.ID, r.State, money.Yuan(r.Amount))
	if r.Error != atm.OK {
		fmt.Fprintf(w, "  error %s", r.Error)
	}
	switch {
	case r.Retracted == atm.RetractUnknown:
		fmt.Fprint(w, "  retracted UNKNOWN")
	case r.State == atm.StateRetracted:
		fmt.Fprintf(w, "  retracted %d", r.Retracted)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "cassette\trequested\tpicked\tpresented\trejected")
	for _, c := range r.Cassettes {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\n", c.Cassette, c.Requested, c.Picked, c.Presented, c.Rejected)
	}
	tw.Flush()
}
