package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
)

// egate admin user: add with the password from the environment, show,
// lock and unlock, on the database of the config (database.dsn) — and the
// bad inputs a person would type.
func TestAdminUser(t *testing.T) {
	dir := t.TempDir()
	db := []string{"--set", "database.dsn=" + filepath.Join(dir, "egate.db")}
	env := []string{"EGATE_NEW_PASSWORD=Blue-Kite-47"}
	user := func(args ...string) result {
		t.Helper()
		return run(t, dir, env, append(append([]string{"admin", "user"}, args...), db...)...)
	}
	r := user("add", "--login", "alice", "--mobile", "13812345678", "--reserved-message", "red lantern 88")
	if r.code != 0 || !strings.Contains(r.stdout, "registered") {
		t.Fatalf("add: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, "Blue-Kite-47") {
		t.Fatal("the password was echoed")
	}
	r = user("show", "alice")
	if r.code != 0 || !strings.Contains(r.stdout, "red lantern 88") || !regexp.MustCompile(`operator lock\s+false`).MatchString(r.stdout) {
		t.Fatalf("show: %+v", r)
	}
	if r := user("lock", "alice"); r.code != 0 {
		t.Fatalf("lock: %+v", r)
	}
	if r := user("show", "alice"); !regexp.MustCompile(`operator lock\s+true`).MatchString(r.stdout) {
		t.Fatalf("show after lock: %+v", r)
	}
	if r := user("unlock", "alice"); r.code != 0 {
		t.Fatalf("unlock: %+v", r)
	}
	if r := user("show", "alice"); !regexp.MustCompile(`operator lock\s+false`).MatchString(r.stdout) {
		t.Fatalf("show after unlock: %+v", r)
	}
	tests := []struct {
		name     string
		env      []string
		args     []string
		mentions []string
	}{
		{"name taken", env, []string{"add", "--login", "alice", "--mobile", "13900000000", "--reserved-message", "x"}, []string{"taken"}},
		{"weak password", []string{"EGATE_NEW_PASSWORD=password"}, []string{"add", "--login", "bob", "--mobile", "13900000001", "--reserved-message", "x"}, []string{"password"}},
		{"unknown customer", env, []string{"show", "nobody"}, []string{"nobody"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dir, tc.env, append(append([]string{"admin", "user"}, tc.args...), db...)...)
			oneLine(t, r, tc.mentions...)
		})
	}
}

// egate sim atm --pty with egate admin atm against it: status, a dispense,
// the same transaction id again (the stored result, nothing moves twice),
// and an amount the cassettes cannot make up.
func TestATMSimulatorAndOperatorCommands(t *testing.T) {
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		t.Skip("no pseudo-terminals here")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sim := exec.CommandContext(ctx, egateBin, "sim", "atm", "--pty", "--quiet", "--http", "",
		"--journal", filepath.Join(dir, "journal"), "--png", filepath.Join(dir, "qr.png"), "--take-after", "10ms")
	sim.Dir = dir
	out, err := sim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sim.Stderr = os.Stderr
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sim.Process.Kill(); sim.Wait() }()
	sc := bufio.NewScanner(out)
	port := ""
	for sc.Scan() {
		if m := regexp.MustCompile(`host end: (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			port = m[1]
			break
		}
	}
	if port == "" {
		t.Fatal("the simulator did not print its pseudo-terminal")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	atmCmd := func(args ...string) result {
		t.Helper()
		return run(t, dir, nil, append(append([]string{"admin", "atm"}, args...), "--port", port)...)
	}
	r := atmCmd("status")
	if r.code != 0 || !strings.Contains(r.stdout, "cassette") || !regexp.MustCompile(`(?m)^1\s+100\.00\s+500`).MatchString(r.stdout) {
		t.Fatalf("status: %+v", r)
	}
	// HELLO and STATUS at least, each answered.
	if m := regexp.MustCompile(`(?m)^line: (\d+) frames sent, (\d+) received, \d+ retransmitted, NAKs \d+ sent / \d+ received, \d+ bad CRC, \d+ garbage bytes$`).FindStringSubmatch(r.stdout); m == nil || atoi(m[1]) < 2 || atoi(m[2]) < 2 {
		t.Fatalf("status does not report the line's counters: %s", r.stdout)
	}
	const txn = "00112233445566778899aabbccddeeff"
	r = atmCmd("dispense", "--amount", "300", "--txn", txn)
	if r.code != 0 || !strings.Contains(r.stdout, txn) {
		t.Fatalf("dispense: %+v", r)
	}
	again := atmCmd("dispense", "--amount", "300", "--txn", txn)
	if again.code != 0 || !strings.Contains(again.stdout, txn) {
		t.Fatalf("the same dispense again: %+v", again)
	}
	r = atmCmd("status")
	if !regexp.MustCompile(`(?m)^1\s+100\.00\s+497`).MatchString(r.stdout) {
		t.Fatalf("300 yuan should have left 497 notes of 100 in cassette 1, once:\n%s", r.stdout)
	}
	r = atmCmd("dispense", "--amount", "0.05")
	if r.code == 0 {
		t.Fatalf("an amount no cassette can make up was accepted: %+v", r)
	}
	oneLine(t, r, "amount 0.05 yuan", "not a multiple of 10.00 yuan")
	if r := atmCmd("status"); !regexp.MustCompile(`(?m)^1\s+100\.00\s+497`).MatchString(r.stdout) {
		t.Fatalf("a refused dispense moved notes:\n%s", r.stdout)
	}
	// The amount is a flag; the help says so, and a positional amount is
	// refused in a line naming the flag, with nothing sent.
	if h := atmCmd("dispense", "--help"); !strings.Contains(h.stdout, "dispense --amount YUAN") {
		t.Fatalf("dispense --help does not show the --amount form:\n%s", h.stdout)
	}
	r = atmCmd("dispense", "350")
	if r.code == 0 {
		t.Fatalf("a positional amount was accepted: %+v", r)
	}
	oneLine(t, r, "--amount 350")
	if r := atmCmd("status"); !regexp.MustCompile(`(?m)^1\s+100\.00\s+497`).MatchString(r.stdout) {
		t.Fatalf("a refused dispense moved notes:\n%s", r.stdout)
	}
	// One owner per port: while another process (here the test, through
	// atm.OpenSerial, as the agent would) holds the line, the operator's
	// command says so in one line and sends nothing.
	held, err := atm.OpenSerial(port, 115200)
	if err != nil {
		t.Fatal(err)
	}
	r = atmCmd("dispense", "--amount", "100", "--txn", "ffeeddccbbaa99887766554433221100")
	held.Close()
	if r.code == 0 || !strings.Contains(r.stderr, "owned by another process") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("admin atm on a held port: %+v", r)
	}
	if r := atmCmd("status"); r.code != 0 || !regexp.MustCompile(`(?m)^1\s+100\.00\s+497`).MatchString(r.stdout) {
		t.Fatalf("after the refused command the port is free and nothing moved: %+v", r)
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
