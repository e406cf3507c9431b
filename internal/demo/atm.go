package demo

import (
	"context"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/devices/agent"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// ATM is the demo's branch: one simulated ATM on a pseudo-terminal and the
// device agent that owns it, opening the terminal's other end through
// tarm/serial as it would a real port.
type ATM struct {
	Sim   *simatm.Running
	Agent *agent.Agent
}

// StartATM starts the simulated ATM (its journal and QR under varDir) and
// the agent. The ATM's cassettes are loaded on the first start and kept in
// its journal after that. pinKey is its PIN pad's key; chooseQR what its
// "QR withdrawal" button does (nil: none).
func StartATM(ctx context.Context, varDir string, reg prometheus.Registerer, pinKey []byte, chooseQR func(context.Context) error) (*ATM, error) {
	sim, err := simatm.StartPTY(ctx, simatm.Config{
		Cassettes:   simatm.DefaultCassettes(),
		JournalPath: filepath.Join(varDir, "atm-journal"),
		Link:        atm.LinkConfig{Baud: 115200},
		Screen:      &simatm.Screen{PNGPath: simatm.ScreenPNGPath(varDir)},
		PickTime:    200 * time.Millisecond, PresentTime: 300 * time.Millisecond, RetractTime: 300 * time.Millisecond,
		TakeAfter: 2 * time.Second,
		PINKey:    pinKey, PINKeyID: 1, ChooseQR: chooseQR,
	})
	if err != nil {
		return nil, err
	}
	ag, err := agent.New(agent.Config{ATMs: []agent.ATMConfig{{ID: "ATM-DEMO-01", Port: sim.TTYName, Baud: 115200}}}, agent.SerialLines, reg)
	if err != nil {
		sim.Stop()
		return nil, err
	}
	return &ATM{Sim: sim, Agent: ag}, nil
}

// Mount serves the ATM's screen under /sim/atm/ and the agent's status under
// /agent/atms.
func (a *ATM) Mount(mux *http.ServeMux) {
	mux.Handle("/sim/atm/", http.StripPrefix("/sim/atm", a.Sim.Sim.Handler()))
	h := http.StripPrefix("/agent", a.Agent.Handler())
	mux.Handle("/agent/atms", h)
	mux.Handle("/agent/atms/", h)
}

// Close stops the agent, then the ATM.
func (a *ATM) Close() error {
	a.Agent.Close()
	return a.Sim.Stop()
}
