package txauth

// The statements the service runs inside its transactions (on SQLite
// through internal/store's statement cache, as every other).
const (
	// qExecute consumes the grant: the intent leaves 'granted', so of
	// concurrent executes exactly one updates the row.
	qExecute = `UPDATE tx_intents SET state = 'executed', updated_ms = ? WHERE hash = ? AND grant_hash = ? AND state = 'granted' AND grant_expires_ms > ?`
	// qGranted moves the intent to granted and stores its grant (the
	// token's SHA-256) in the same row.
	qGranted      = `UPDATE tx_intents SET state = 'granted', proved_level = ?, proved_factor = ?, grant_hash = ?, grant_expires_ms = ?, updated_ms = ? WHERE hash = ? AND state = 'allowed'`
	qInsertIntent = `INSERT INTO tx_intents (hash, customer, idem_key, body, payee, amount, device, action, level, decision, features, state, created_ms, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
)
