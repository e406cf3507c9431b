-- The mall (platform/mall): merchants admitted by rules and reviewed by the
-- bank's staff, their products, the customers' carts and orders paid by
-- ebank holds, and refunds. Amounts are BIGINT fen, times Unix milliseconds.
CREATE TABLE IF NOT EXISTS mall_merchants (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,             -- the applicant's passport id: runs the merchant's page
  name TEXT NOT NULL,
  category TEXT NOT NULL,
  licence TEXT NOT NULL,           -- business licence (unified social credit code)
  contact TEXT NOT NULL,           -- contact mobile
  flags TEXT NOT NULL,             -- risk flags found by the rules, comma-separated
  problems TEXT NOT NULL,          -- what the rules refuse (documents missing, category), comma-separated
  status TEXT NOT NULL,            -- applied, approved, rejected
  account TEXT NOT NULL,           -- the settlement account at ebank once approved; else ''
  reviewer TEXT NOT NULL,
  note TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  reviewed_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS mall_merchants_owner ON mall_merchants (owner);

CREATE TABLE IF NOT EXISTS mall_products (
  id TEXT PRIMARY KEY,
  merchant TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  price BIGINT NOT NULL,           -- fen
  stock BIGINT NOT NULL,           -- never below zero: every take is guarded
  created_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS mall_products_merchant ON mall_products (merchant, created_ms);

-- A customer's cart: the products of one merchant; rev grows with every
-- change, so a checkout authorized for one revision cannot pay for another.
CREATE TABLE IF NOT EXISTS mall_carts (
  customer TEXT PRIMARY KEY,
  merchant TEXT NOT NULL,
  rev BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS mall_cart_lines (
  customer TEXT NOT NULL,
  product TEXT NOT NULL,
  qty BIGINT NOT NULL,
  PRIMARY KEY (customer, product)
);

CREATE TABLE IF NOT EXISTS mall_orders (
  id TEXT PRIMARY KEY,
  customer TEXT NOT NULL,
  pay_key TEXT NOT NULL,           -- the checkout form's idempotency key (the intent's)
  merchant TEXT NOT NULL,
  payer TEXT NOT NULL,             -- the customer's account
  payee TEXT NOT NULL,             -- the merchant's settlement account
  total BIGINT NOT NULL,
  status TEXT NOT NULL,            -- placing, paid, shipping, shipped, cancelling, cancelled, failed
  intent TEXT NOT NULL,            -- the authorized intent's hash: the hold's grant
  hold TEXT NOT NULL,              -- ebank's hold id once paid
  captured BIGINT NOT NULL,
  refunded BIGINT NOT NULL,        -- never above captured: every refund is guarded
  created_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS mall_orders_key ON mall_orders (customer, pay_key);
CREATE INDEX IF NOT EXISTS mall_orders_customer ON mall_orders (customer, created_ms);
CREATE INDEX IF NOT EXISTS mall_orders_merchant ON mall_orders (merchant, created_ms);

CREATE TABLE IF NOT EXISTS mall_order_lines (
  order_id TEXT NOT NULL,
  product TEXT NOT NULL,
  name TEXT NOT NULL,
  price BIGINT NOT NULL,
  qty BIGINT NOT NULL,
  PRIMARY KEY (order_id, product)
);

CREATE TABLE IF NOT EXISTS mall_refunds (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL,
  refund_key TEXT NOT NULL,        -- the merchant's form key: a refund submitted twice is one
  amount BIGINT NOT NULL,
  state TEXT NOT NULL,             -- pending, done
  transfer TEXT NOT NULL,          -- ebank's transfer id once done
  created_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS mall_refunds_key ON mall_refunds (order_id, refund_key);
