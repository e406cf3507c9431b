package simatm_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/testenv"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// The kill -9 tests run the simulator as a real child process: this test
// binary re-executed with EGATE_SIMATM_CHILD=1, serving the pty master it
// inherits as fd 3, with its control endpoint on a loopback port it prints.
func TestMain(m *testing.M) {
	if os.Getenv("EGATE_SIMATM_CHILD") == "1" {
		os.Exit(childMain())
	}
	os.Exit(m.Run())
}

func childMain() int {
	seed, _ := strconv.ParseInt(os.Getenv("EGATE_SIMATM_SEED"), 10, 64)
	f := simatm.NewFaults(seed)
	for _, s := range strings.Split(os.Getenv("EGATE_SIMATM_FAULTS"), ",") {
		if s != "" {
			if err := f.Set(s); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
	}
	baud, _ := strconv.Atoi(os.Getenv("EGATE_SIMATM_BAUD"))
	cassettes := simatm.DefaultCassettes()
	if n, _ := strconv.Atoi(os.Getenv("EGATE_SIMATM_COUNT")); n > 0 {
		for i := range cassettes {
			cassettes[i].Count = n
		}
	}
	s, err := simatm.New(simatm.Config{
		Cassettes:     cassettes,
		JournalPath:   os.Getenv("EGATE_SIMATM_JOURNAL"),
		Faults:        f,
		ProgressEvery: 100 * time.Millisecond,
		TakeTimeout:   150 * time.Millisecond,
		Link:          atm.LinkConfig{Baud: baud, AckTimeout: 60 * time.Millisecond},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go http.Serve(ln, s.Handler())
	fmt.Printf("CONTROL http://%s\n", ln.Addr())
	err = s.Serve(context.Background(), os.NewFile(3, "pty-master"))
	if !errors.Is(err, syscall.EIO) { // EIO: the test closed the pty
		fmt.Fprintln(os.Stderr, "simulator child:", err)
	}
	return 1
}

type child struct {
	cmd  *exec.Cmd
	ctrl string
	done chan error
}

func startChild(t testing.TB, p *simatm.PTY, journal string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EGATE_SIMATM_CHILD=1", "EGATE_SIMATM_JOURNAL="+journal)
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = []*os.File{p.Master}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting simulator child: %v", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "CONTROL ") {
		cmd.Process.Kill()
		t.Fatalf("simulator child said %q: %v", line, err)
	}
	c := &child{cmd: cmd, ctrl: strings.TrimSpace(strings.TrimPrefix(line, "CONTROL ")), done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() { c.kill() })
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
	c.done <- errors.New("already reaped")
}

func (c *child) faults(t testing.TB, specs ...string) {
	t.Helper()
	v := url.Values{}
	for _, s := range specs {
		k, val, _ := strings.Cut(s, "=")
		v.Add(k, val)
	}
	resp, err := http.PostForm(c.ctrl+"/faults", v)
	if err != nil {
		t.Fatalf("control endpoint: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("control endpoint: %s", resp.Status)
	}
}

// replay opens the journal in this process, as a rebooted ATM would, and
// returns the machine.
func replay(t testing.TB, journal string) *simatm.Sim {
	t.Helper()
	s, err := simatm.New(simatm.Config{Cassettes: simatm.DefaultCassettes(), JournalPath: journal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestKilledBetweenPickAndPresent kills the simulator process (SIGKILL, by
// itself at the exact moment) after 3 of 5 notes were picked, boots a new
// one on the same journal and line, and checks that the driver learns the
// truth from the ATM: 3 picked, 0 presented, 3 rejected, POWER_LOSS, both by
// TXN_STATUS and in the rebooted ATM's HELLO reply (last operation).
func TestKilledBetweenPickAndPresent(t *testing.T) {
	t.Parallel()
	p, err := simatm.OpenPTY()
	if err != nil {
		testenv.Missing(t, "pseudo-terminals (/dev/ptmx, devpts)", "mount devpts; "+err.Error())
	}
	defer p.Close()
	journal := t.TempDir() + "/journal"
	c1 := startChild(t, p, journal, "EGATE_SIMATM_FAULTS=crash-after-pick=3,pick-delay=20ms")
	drv := atm.NewDriver(atm.DriverConfig{
		Open: atm.SerialOpener(p.TTYName, 115200), Link: atm.LinkConfig{AckTimeout: 60 * time.Millisecond},
		ReplyTimeout: 400 * time.Millisecond, PollInterval: 50 * time.Millisecond,
	})
	defer drv.Close()
	ctx := ctxT(t, 30*time.Second)
	id := atm.NewTxnID()
	type result struct {
		rec atm.TxnRecord
		err error
	}
	res := make(chan result, 1)
	go func() {
		rec, err := drv.Dispense(ctx, id, 50000, []atm.Notes{{Cassette: 1, Count: 5}})
		res <- result{rec, err}
	}()
	werr := <-c1.done
	c1.done <- werr
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("simulator child ended with %v, want killed by SIGKILL", werr)
	}
	startChild(t, p, journal)
	r := <-res
	var de *atm.DeviceError
	if !errors.As(r.err, &de) || de.Code != atm.CodePowerLoss || de.Record == nil {
		t.Fatalf("dispense err = %v, want POWER_LOSS with counts", r.err)
	}
	if p, pr, rj := r.rec.Totals(); r.rec.State != atm.StateFailed || p != 3 || pr != 0 || rj != 3 {
		t.Fatalf("record %+v, want FAILED 3/0/3", r.rec)
	}
	if drv.Resolved.Load() == 0 {
		t.Fatal("driver did not resolve the outcome by asking the ATM")
	}
	// The same id again: the stored result, nothing moves.
	if again, _ := drv.Dispense(ctx, id, 50000, []atm.Notes{{Cassette: 1, Count: 5}}); again.State != atm.StateFailed {
		t.Fatalf("retry: %+v", again)
	}
	// The rebooted ATM's HELLO names the interrupted transaction as its last
	// operation, with the state and counts from its journal.
	h, err := drv.Hello(ctx)
	if err != nil {
		t.Fatalf("HELLO after the reboot: %v", err)
	}
	if h.Last == nil {
		t.Fatal("HELLO after the reboot has no last transaction")
	}
	if p, pr, rj := h.Last.Totals(); h.Last.ID != id || h.Last.State != atm.StateFailed || h.Last.Error != atm.CodePowerLoss || p != 3 || pr != 0 || rj != 3 {
		t.Fatalf("HELLO last = %+v, want %s FAILED POWER_LOSS 3/0/3", *h.Last, id)
	}
	drv.Close()
	tot := replay(t, journal).Totals()
	if tot.Cassettes[0].Count != 497 || tot.RejectBin != 3 || tot.AtExit != 0 || tot.Taken != 0 {
		t.Fatalf("machine after replay: %+v", tot)
	}
}
