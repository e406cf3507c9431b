package messenger

import "sync"

// Event is a message new or changed in a conversation, for the pages open
// on it.
type Event struct {
	Message Message
	Update  bool // a message shown before changed (a payment's state)
	shared  *rendered
}

// rendered keeps an event's data as rendered for one kind of page (its
// language, and whether the viewer sent it), so that a thousand pages
// open on a conversation render a message a few times, not a thousand.
type rendered struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Rendered returns the event's data for key, made by make the first time.
func (e Event) Rendered(key string, make func() ([]byte, error)) ([]byte, error) {
	if e.shared == nil {
		return make()
	}
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	if b, ok := e.shared.m[key]; ok {
		return b, nil
	}
	b, err := make()
	if err == nil {
		e.shared.m[key] = b
	}
	return b, err
}

// Hub hands the events of this process to the pages subscribed to a
// conversation (server-sent events). It never blocks a poster: a
// subscriber whose buffer is full misses the event and is told on its Lag
// channel, and its page catches up from the database. Pages on other replicas
// catch up the same way, by polling.
type Hub struct {
	mu   sync.RWMutex
	subs map[string]map[*Sub]struct{}
}

// Sub is one subscription.
type Sub struct {
	C chan Event
	// Lag has a value when events were dropped since it was last read:
	// read the conversation from the database.
	Lag  chan struct{}
	conv string
}

// Subscribe starts receiving the conversation's events.
func (h *Hub) Subscribe(conv string) *Sub {
	s := &Sub{C: make(chan Event, 64), Lag: make(chan struct{}, 1), conv: conv}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[string]map[*Sub]struct{}{}
	}
	if h.subs[conv] == nil {
		h.subs[conv] = map[*Sub]struct{}{}
	}
	h.subs[conv][s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Unsubscribe stops s.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	delete(h.subs[s.conv], s)
	if len(h.subs[s.conv]) == 0 {
		delete(h.subs, s.conv)
	}
	h.mu.Unlock()
}

// Publish hands e to the subscribers of its conversation.
func (h *Hub) Publish(e Event) {
	e.shared = &rendered{m: map[string][]byte{}}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs[e.Message.Conversation] {
		select {
		case s.C <- e:
		default:
			select {
			case s.Lag <- struct{}{}:
			default:
			}
		}
	}
}

// Subscribers counts the subscriptions of a conversation.
func (h *Hub) Subscribers(conv string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[conv])
}
