package gateway

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/egate-bank/egate/internal/store"
)

// Registry errors.
var (
	ErrNotPinned   = errors.New("the ATM is not pinned to any branch")
	ErrOtherBranch = errors.New("the ATM is pinned to another branch")
	ErrBadID       = errors.New("bad id")
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Registry pins ATM ids to branches (table agent_atms).
type Registry struct {
	db  *store.DB
	now func() time.Time
}

// NewRegistry opens the registry on db; now may be nil.
func NewRegistry(db *store.DB, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	return &Registry{db: db, now: now}
}

// Pin is one ATM's entry.
type Pin struct {
	ATM      string    `json:"atm"`
	Branch   string    `json:"branch"`
	Assigned time.Time `json:"assigned"`
}

func checkIDs(branch, atmID string) error {
	if !idRE.MatchString(branch) {
		return fmt.Errorf("%w: branch %q: 1–32 letters, digits, - or _", ErrBadID, branch)
	}
	if !idRE.MatchString(atmID) {
		return fmt.Errorf("%w: ATM %q: 1–32 letters, digits, - or _", ErrBadID, atmID)
	}
	return nil
}

// Assign pins atmID to branch. Pinning it again to the same branch is not
// an error; an ATM pinned to another branch must be unassigned first.
func (r *Registry) Assign(ctx context.Context, branch, atmID string) error {
	if err := checkIDs(branch, atmID); err != nil {
		return err
	}
	_, err := r.db.Exec(ctx, `INSERT INTO agent_atms (atm_id, branch, assigned_ms) VALUES (?, ?, ?) ON CONFLICT (atm_id) DO NOTHING`,
		atmID, branch, r.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("pinning ATM %s: %w", atmID, err)
	}
	got, err := r.Branch(ctx, atmID)
	if err != nil {
		return err
	}
	if got != branch {
		return fmt.Errorf("%w: ATM %s belongs to branch %s; egate admin agent unassign --atm %s first", ErrOtherBranch, atmID, got, atmID)
	}
	return nil
}

// Unassign removes the ATM's pin.
func (r *Registry) Unassign(ctx context.Context, atmID string) error {
	res, err := r.db.Exec(ctx, `DELETE FROM agent_atms WHERE atm_id = ?`, atmID)
	if err != nil {
		return fmt.Errorf("unpinning ATM %s: %w", atmID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNotPinned, atmID)
	}
	return nil
}

// Branch returns the branch atmID is pinned to (ErrNotPinned if none).
func (r *Registry) Branch(ctx context.Context, atmID string) (string, error) {
	var b string
	err := r.db.QueryRow(ctx, `SELECT branch FROM agent_atms WHERE atm_id = ?`, atmID).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: %s", ErrNotPinned, atmID)
	}
	if err != nil {
		return "", fmt.Errorf("reading the pin of ATM %s: %w", atmID, err)
	}
	return b, nil
}

// List returns the pins of branch (all when empty), by branch and ATM.
func (r *Registry) List(ctx context.Context, branch string) ([]Pin, error) {
	q, args := `SELECT atm_id, branch, assigned_ms FROM agent_atms`, []any{}
	if branch != "" {
		q += ` WHERE branch = ?`
		args = append(args, branch)
	}
	rows, err := r.db.Query(ctx, q+` ORDER BY branch, atm_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing pinned ATMs: %w", err)
	}
	defer rows.Close()
	out := []Pin{}
	for rows.Next() {
		var p Pin
		var ms int64
		if err := rows.Scan(&p.ATM, &p.Branch, &ms); err != nil {
			return nil, err
		}
		p.Assigned = time.UnixMilli(ms).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}
