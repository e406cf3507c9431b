package atm

// What the driver has learned from the ATM: the record of every transaction
// it saw (moved only forward, so a late or reordered event or reply never
// undoes a later state) and the events, deduplicated by event number within
// a boot. A retried Dispense of a final transaction is answered from here
// without touching the line.

// Event is an ATM event as the driver saw it. Advanced is false when the
// event did not move the transaction forward (late or out of order).
type Event struct {
	Kind     uint8
	No       uint32
	Record   TxnRecord
	Advanced bool
}

// Events delivers ATM events (presented, taken, retracted). The channel is
// buffered; events are dropped (and counted) if it is not drained. The truth
// is always available from TxnStatus. Close closes the channel.
func (d *Driver) Events() <-chan Event { return d.events }

// Record returns what the driver has recorded for id.
func (d *Driver) Record(id TxnID) (TxnRecord, bool) {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	r, ok := d.results[id]
	return r, ok
}

// Records returns a copy of every recorded transaction.
func (d *Driver) Records() map[TxnID]TxnRecord {
	d.rmu.Lock()
	defer d.rmu.Unlock()
	out := make(map[TxnID]TxnRecord, len(d.results))
	for k, v := range d.results {
		out[k] = v
	}
	return out
}

// record stores r unless it would move the transaction backwards.
func (d *Driver) record(r TxnRecord) bool {
	if r.State == StateNone {
		return false
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	old, ok := d.results[r.ID]
	if ok && r.State.rank() < old.State.rank() {
		return false
	}
	if ok && r.State.rank() == old.State.rank() && old.State.Final() {
		return false
	}
	d.results[r.ID] = r
	return true
}

func (d *Driver) onEvent(f Frame) {
	m, err := ParseEventMsg(f.Payload)
	if err != nil {
		return
	}
	d.rmu.Lock()
	dup := d.seenEvent[m.No]
	d.seenEvent[m.No] = true
	d.rmu.Unlock()
	if dup {
		return
	}
	adv := d.record(m.Record)
	d.emu.Lock()
	defer d.emu.Unlock()
	if d.evClosed {
		return
	}
	select {
	case d.events <- Event{Kind: m.Kind, No: m.No, Record: m.Record, Advanced: adv}:
	default:
		d.Dropped.Add(1)
	}
}
