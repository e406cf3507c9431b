package atm_test

import (
	"bufio"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/creack/pty"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/internal/testenv"
)

// ptyName opens a real pseudo-terminal pair and returns the tty's name; the
// pair stays open for the test.
func ptyName(t *testing.T) string {
	t.Helper()
	m, tty, err := pty.Open()
	if err != nil {
		testenv.Missing(t, "pseudo-terminals (/dev/ptmx, devpts)", "mount devpts; "+err.Error())
	}
	t.Cleanup(func() { tty.Close(); m.Close() })
	return tty.Name()
}

func wantBusy(t *testing.T, name string, err error) {
	t.Helper()
	if !errors.Is(err, atm.ErrPortBusy) {
		t.Fatalf("second open: err = %v, want ErrPortBusy", err)
	}
	var pb *atm.PortBusyError
	if !errors.As(err, &pb) || pb.Port != name {
		t.Fatalf("second open: err = %#v, want *PortBusyError for %s", err, name)
	}
	if want := "port " + name + " is owned by another process (the egate agent?)"; !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q lacks %q", err, want)
	}
}

// TestPortOnPTYIsPaced: a pseudo-terminal opened as a serial port says it
// does not pace itself, so a Link with a baud paces its writes on it.
func TestPortOnPTYIsPaced(t *testing.T) {
	t.Parallel()
	port, err := atm.OpenSerial(ptyName(t), 9600)
	if err != nil {
		t.Fatal(err)
	}
	sp, ok := port.(atm.SelfPacedLine)
	if !ok || sp.SelfPaced() {
		port.Close()
		t.Fatalf("port on a pty: SelfPacedLine %v, SelfPaced %v; want a line that does not pace itself", ok, ok && sp.SelfPaced())
	}
	l := atm.NewLink(port, atm.LinkConfig{Baud: 9600})
	defer l.Close()
	if !l.Paced() {
		t.Fatal("link on a pty at 9600 baud does not pace its writes")
	}
}

// TestPortOneOwner: a port that is open cannot be opened again, neither in
// this process nor by another (util-linux flock(1) is the independent
// reference for the lock), and it is free again once closed.
func TestPortOneOwner(t *testing.T) {
	t.Parallel()
	t.Run("second open in this process", func(t *testing.T) {
		name := ptyName(t)
		first, err := atm.OpenSerial(name, 115200)
		if err != nil {
			t.Fatal(err)
		}
		second, err := atm.OpenSerial(name, 115200)
		if err == nil {
			second.Close()
			first.Close()
			t.Fatal("second OpenSerial of an open port succeeded")
		}
		wantBusy(t, name, err)
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := atm.OpenSerial(name, 115200)
		if err != nil {
			t.Fatalf("open after the owner closed: %v", err)
		}
		again.Close()
	})
	flock, err := exec.LookPath("flock")
	if err != nil {
		testenv.Missing(t, "flock(1) (util-linux)", "apt-get install util-linux")
	}
	t.Run("another process sees the lock", func(t *testing.T) {
		name := ptyName(t)
		p, err := atm.OpenSerial(name, 115200)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(flock, "--nonblock", "--exclusive", name, "true").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("flock -n on a port we hold: %v %s (want exit 1)", err, out)
		}
		p.Close()
		if out, err := exec.Command(flock, "--nonblock", "--exclusive", name, "true").CombinedOutput(); err != nil {
			t.Fatalf("flock -n after Close: %v %s", err, out)
		}
	})
	t.Run("port held by another process", func(t *testing.T) {
		name := ptyName(t)
		holder := exec.Command(flock, "--exclusive", name, "sh", "-c", "echo locked; exec cat")
		stdin, err := holder.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := holder.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "locked\n" {
			holder.Process.Kill()
			holder.Wait()
			t.Fatalf("flock holder: %q %v", line, err)
		}
		_, err = atm.OpenSerial(name, 115200)
		wantBusy(t, name, err)
		stdin.Close() // cat ends, flock releases
		if err := holder.Wait(); err != nil {
			t.Fatalf("flock holder: %v", err)
		}
		p, err := atm.OpenSerial(name, 115200)
		if err != nil {
			t.Fatalf("open after the other process ended: %v", err)
		}
		p.Close()
	})
}
