package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/internal/store"
)

// operatorFlag is egate admin's persistent flag naming who runs a command
// that changes state; its audit record carries the name.
const operatorFlag = "operator"

func addOperatorFlag(admin *cobra.Command) {
	admin.PersistentFlags().String(operatorFlag, "", "who runs this command, recorded in the audit log with every change (default: the OS user)")
}

// operator is the person running an admin command that changes state.
type operator struct{ name string }

// whoRuns returns the operator: --operator, else the OS user (os/user,
// then $USER). It is called before anything changes, so a command whose
// operator cannot be told changes nothing.
func whoRuns(cmd *cobra.Command) (operator, error) {
	var name string
	if f := cmd.Flag(operatorFlag); f != nil {
		name = strings.TrimSpace(f.Value.String())
		if f.Changed && name == "" {
			return operator{}, errors.New("--operator is empty: give the name of the person running this command; nothing was changed")
		}
	}
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		return operator{}, errors.New("cannot tell who runs this command (no OS user name): give --operator NAME; nothing was changed")
	}
	if len(name) > 64 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return operator{}, errors.New("--operator must be a name of at most 64 characters without control characters; nothing was changed")
	}
	return operator{name: name}, nil
}

// record appends the audit record of an action that has been done. When
// the log cannot be written the action stands, and the error says so.
func (o operator) record(ctx context.Context, db *store.DB, kind string, fields map[string]string) error {
	if _, err := audit.New(db, nil).AppendOperator(ctx, kind, o.name, fields); err != nil {
		return fmt.Errorf("%s was done, but its audit record could not be written (record it by hand): %w", kind, err)
	}
	return nil
}
