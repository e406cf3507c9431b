package simatm

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/egate-bank/egate/atm"
)

// jrec is one journal record. The simulator writes a record and fsyncs it
// before it acts, then applies the same record to its state, so replaying
// the journal after kill -9 gives exactly the state the machine was in.
type jrec struct {
	Op     string      `json:"op"` // load boot begin pick reject present taken retract fail purge
	Txn    string      `json:"txn,omitempty"`
	Amount int64       `json:"amount,omitempty"`
	Req    []atm.Notes `json:"req,omitempty"`
	Cas    uint8       `json:"cas,omitempty"`
	N      int         `json:"n,omitempty"`
	Code   uint8       `json:"code,omitempty"`
	Boot   string      `json:"boot,omitempty"`
	Unk    bool        `json:"unknown,omitempty"`
	Load   []Cassette  `json:"load,omitempty"`
}

type journal struct {
	f *os.File
}

// openJournal opens (creating) the journal at path and returns its records.
func openJournal(path string) (*journal, []jrec, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("opening journal: %w", err)
	}
	var recs []jrec
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	good := int64(0)
	for sc.Scan() {
		var r jrec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			break // a torn last line: the action it described never happened
		}
		recs = append(recs, r)
		good += int64(len(sc.Bytes())) + 1
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("truncating journal: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &journal{f: f}, recs, nil
}

func (j *journal) append(r jrec) error {
	if j == nil || j.f == nil {
		return errors.New("journal closed")
	}
	b, _ := json.Marshal(r)
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("syncing journal: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	if j == nil || j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
