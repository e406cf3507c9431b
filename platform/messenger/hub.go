package messenger

import "sync"

// Event is a message new or changed in a conversation, for the pages open
// on it.
type Event struct {
	Message Message
	Update  bool // a message shown before changed (a payment's state)
}

// Hub hands the events of this process to the pages subscribed to a
// conversation (server-sent events). It never blocks a poster: a
// subscriber whose buffer is full misses the event and is marked Lagged,
// and its page catches up from the database. Pages on other replicas
// catch up the same way, by polling.
type Hub struct {
	mu   sync.RWMutex
	subs map[string]map[*Sub]struct{}
}

// Sub is one subscription.
type Sub struct {
	C      chan Event
	conv   string
	mu     sync.Mutex
	lagged bool
}

// Lagged reports, and clears, whether events were dropped.
func (s *Sub) Lagged() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lagged
	s.lagged = false
	return l
}

// Subscribe starts receiving the conversation's events.
func (h *Hub) Subscribe(conv string) *Sub {
	s := &Sub{C: make(chan Event, 64), conv: conv}
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
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs[e.Message.Conversation] {
		select {
		case s.C <- e:
		default:
			s.mu.Lock()
			s.lagged = true
			s.mu.Unlock()
		}
	}
}

// Subscribers counts the subscriptions of a conversation.
func (h *Hub) Subscribers(conv string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[conv])
}
