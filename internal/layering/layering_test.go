package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/egate-bank/egate/"

// productionImports maps each package of the module to what its non-test
// files import (a driver's integration test may use a service; the driver
// may not).
func productionImports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		m[f[0]] = f[1:]
	}
	return m
}

func under(pkg string, dirs ...string) bool {
	rel := strings.TrimPrefix(pkg, module)
	for _, d := range dirs {
		if rel == d || strings.HasPrefix(rel, d+"/") {
			return true
		}
	}
	return false
}

// testHelper says pkg is a test helper package (devices/hsm/hsmtest,
// atm/atmtest, …): imported by tests only (TestNoTestHelperInProduction),
// so it may stand up a whole stack, simulators and services included.
func testHelper(pkg string) bool { return strings.HasSuffix(pkg, "test") }

func TestNoSimulatorInProduction(t *testing.T) {
	for pkg, imps := range productionImports(t) {
		if under(pkg, "simulators", "internal/demo", "cmd/egate") || testHelper(pkg) {
			continue
		}
		for _, imp := range imps {
			if under(imp, "simulators") {
				t.Errorf("%s imports the simulator %s: only simulators/, internal/demo, cmd/egate and test helpers may", strings.TrimPrefix(pkg, module), strings.TrimPrefix(imp, module))
			}
		}
	}
}

func TestDriversDoNotReachUp(t *testing.T) {
	for pkg, imps := range productionImports(t) {
		if !under(pkg, "devices", "atm") || testHelper(pkg) {
			continue
		}
		for _, imp := range imps {
			if under(imp, "authsvc", "platform", "internal/app", "internal/demo", "cmd") {
				t.Errorf("%s imports %s: a driver must not depend on the services above it", strings.TrimPrefix(pkg, module), strings.TrimPrefix(imp, module))
			}
		}
	}
}

// The exemptions of test helpers hold because no production package
// imports one: a driver cannot reach up, nor production reach a simulator,
// through a helper.
func TestNoTestHelperInProduction(t *testing.T) {
	for pkg, imps := range productionImports(t) {
		if testHelper(pkg) {
			continue
		}
		for _, imp := range imps {
			if strings.HasPrefix(imp, module) && testHelper(imp) {
				t.Errorf("%s imports the test helper %s: only tests and other test helpers may", strings.TrimPrefix(pkg, module), strings.TrimPrefix(imp, module))
			}
		}
	}
}

// The rules are not vacuous: go list sees the tree, and the checks would
// catch the imports they are about.
func TestRulesSeeTheTree(t *testing.T) {
	m := productionImports(t)
	for _, p := range []string{"authsvc", "devices/hsm", "atm", "internal/app", "simulators/softhsm", "cmd/egate"} {
		if _, ok := m[module+p]; !ok {
			t.Fatalf("go list does not list %s", p)
		}
	}
	if !under(module+"simulators/softhsm", "simulators") || under(module+"simulatorsx/a", "simulators") {
		t.Fatal("under() is wrong")
	}
	if !testHelper(module+"atm/atmtest") || testHelper(module+"atm") || testHelper(module+"internal/testenv") {
		t.Fatal("testHelper() is wrong")
	}
}
