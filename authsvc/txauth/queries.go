package txauth

// The statements the service runs inside its transactions (on SQLite
// through internal/store's statement cache, as every other).
const (
	qConsumeGrant = `UPDATE tx_grants SET used_ms = ? WHERE token_hash = ? AND intent_hash = ? AND used_ms IS NULL AND expires_ms > ? RETURNING intent_hash`
	qExecuted     = `UPDATE tx_intents SET state = 'executed', updated_ms = ? WHERE hash = ?`
	qGranted      = `UPDATE tx_intents SET state = 'granted', proved_level = ?, proved_factor = ?, updated_ms = ? WHERE hash = ? AND state = 'allowed'`
	qInsertGrant  = `INSERT INTO tx_grants (token_hash, intent_hash, created_ms, expires_ms) VALUES (?, ?, ?, ?)`
	qInsertIntent = `INSERT INTO tx_intents (hash, customer, idem_key, body, payee, amount, device, action, level, decision, features, state, created_ms, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
)
