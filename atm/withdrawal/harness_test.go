package withdrawal_test

import (
	"testing"

	"github.com/egate-bank/egate/atm/atmtest"
)

// The data centre and the branches are the shared ATM harness's
// (atm/atmtest, also used by the agent gateway's tests): SoftHSM2 with the
// data centre's HSM and two branch tokens, provisioned once per binary.
var env = atmtest.NewEnv()

func TestMain(m *testing.M) { atmtest.Main(m, env) }

type dc = atmtest.DC
