// Package layering holds no code: its test checks the rules of the tree's
// layers (docs/architecture.md §2) on every package of the module.
//
//   - Production packages never import a simulator: only simulators/ itself,
//     internal/demo, cmd/egate and test helpers (packages whose name ends in
//     "test", such as devices/hsm/hsmtest) may. A simulator in production
//     code would be a fake device one config mistake away from a customer.
//   - Drivers (devices/, atm/) never import the services above them
//     (authsvc/, platform/, internal/app, internal/demo): a device package
//     knows its device, not what a bank does with it. (Their tests may: an
//     integration test of a token issues a certificate with the bank CA; so
//     may a driver's test helper, such as atm/atmtest, which stands up the
//     data centre for the ATM tests.)
//   - No production package imports a test helper: the two exemptions above
//     cannot be used to reach a simulator or a service from production code.
package layering
