-- Transaction limits (authsvc/limits). Amounts in fen, times Unix ms.

-- limit_usage: what a customer moved in one period: 'd:YYYY-MM-DD' or
-- 'y:YYYY' in the bank's time zone. Counted by one guarded UPDATE
-- (… SET used = used + ? WHERE used + ? <= limit), so concurrent movements on
-- any replica never together pass a limit.
CREATE TABLE IF NOT EXISTS limit_usage (
  customer TEXT NOT NULL,
  period TEXT NOT NULL,
  used BIGINT NOT NULL,
  PRIMARY KEY (customer, period)
);

-- limit_counts: each movement counted, once per key (the intent hash), and
-- the periods it was counted in, so that a release gives back exactly what
-- was counted, once.
CREATE TABLE IF NOT EXISTS limit_counts (
  count_key TEXT PRIMARY KEY,
  customer TEXT NOT NULL,
  amount BIGINT NOT NULL,
  day TEXT NOT NULL,
  year TEXT NOT NULL,
  level INTEGER NOT NULL,
  state TEXT NOT NULL,             -- 'counted' or 'released'
  counted_ms BIGINT NOT NULL,
  released_ms BIGINT NOT NULL      -- 0 while counted
);
CREATE INDEX IF NOT EXISTS limit_counts_customer ON limit_counts (customer, counted_ms);

-- limit_own: a customer's own lower limits for a level (never above the
-- bank's table).
CREATE TABLE IF NOT EXISTS limit_own (
  customer TEXT NOT NULL,
  level INTEGER NOT NULL,
  per_txn BIGINT NOT NULL,
  per_day BIGINT NOT NULL,
  per_year BIGINT NOT NULL,
  set_ms BIGINT NOT NULL,
  PRIMARY KEY (customer, level)
);
