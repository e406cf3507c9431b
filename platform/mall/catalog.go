package mall

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/egate-bank/egate/internal/store"
)

// Product is a merchant's product with its stock.
type Product struct {
	ID, Merchant, Name, Description string
	Price                           int64 // fen
	Stock                           int64
	CreatedMS                       int64
	MerchantName                    string // filled by the listings
}

// maxPrice is the highest price of one product: 1,000,000 yuan.
const maxPrice = 100_000_000

// maxQty is the most of one product in one cart or one restock.
const maxQty = 10_000

// NewProduct is a product a merchant adds.
type NewProduct struct {
	Merchant, Name, Description string
	Price, Stock                int64
}

// AddProduct adds an approved merchant's product.
func (m *Mall) AddProduct(ctx context.Context, n NewProduct) (Product, error) {
	n.Name, n.Description = strings.TrimSpace(n.Name), strings.TrimSpace(n.Description)
	switch {
	case n.Name == "" || utf8.RuneCountInString(n.Name) > 80 || utf8.RuneCountInString(n.Description) > 400:
		return Product{}, fmt.Errorf("%w: a product needs a name of at most 80 characters and a description of at most 400", ErrInvalid)
	case n.Price <= 0 || n.Price > maxPrice:
		return Product{}, fmt.Errorf("%w: the price must be above zero and at most 1,000,000 yuan", ErrInvalid)
	case n.Stock < 0 || n.Stock > maxQty*100:
		return Product{}, fmt.Errorf("%w: the stock must be from 0 to 1,000,000", ErrInvalid)
	}
	mc, err := m.Merchant(ctx, n.Merchant)
	if err != nil {
		return Product{}, err
	}
	if mc.Status != Approved {
		return Product{}, fmt.Errorf("%w: %s", ErrMerchantNotOpen, mc.ID)
	}
	p := Product{ID: newID("p-"), Merchant: mc.ID, Name: n.Name, Description: n.Description, Price: n.Price, Stock: n.Stock,
		CreatedMS: m.now().UnixMilli(), MerchantName: mc.Name}
	_, err = m.DB.Exec(ctx, `INSERT INTO mall_products (id, merchant, name, description, price, stock, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Merchant, p.Name, p.Description, p.Price, p.Stock, p.CreatedMS)
	return p, err
}

// Restock adds n to a merchant's product's stock.
func (m *Mall) Restock(ctx context.Context, merchant, product string, n int64) error {
	if n <= 0 || n > maxQty*100 {
		return fmt.Errorf("%w: restock by 1 to 1,000,000", ErrInvalid)
	}
	res, err := m.DB.Exec(ctx, `UPDATE mall_products SET stock = stock + ? WHERE id = ? AND merchant = ?`, n, product, merchant)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return fmt.Errorf("%w: product %s", ErrNotFound, product)
	}
	return nil
}

const productCols = `p.id, p.merchant, p.name, p.description, p.price, p.stock, p.created_ms, m.name`

func scanProduct(s interface{ Scan(...any) error }) (Product, error) {
	var p Product
	err := s.Scan(&p.ID, &p.Merchant, &p.Name, &p.Description, &p.Price, &p.Stock, &p.CreatedMS, &p.MerchantName)
	return p, err
}

// Product returns a product of an approved merchant.
func (m *Mall) Product(ctx context.Context, id string) (Product, error) {
	p, err := scanProduct(m.DB.QueryRow(ctx, `SELECT `+productCols+` FROM mall_products p JOIN mall_merchants m ON m.id = p.merchant
WHERE p.id = ? AND m.status = 'approved'`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("%w: product %s", ErrNotFound, id)
	}
	return p, err
}

// Products lists the products of approved merchants (of one when merchant
// is given), newest first, at most 200.
func (m *Mall) Products(ctx context.Context, merchant string) ([]Product, error) {
	rows, err := m.DB.Query(ctx, `SELECT `+productCols+` FROM mall_products p JOIN mall_merchants m ON m.id = p.merchant
WHERE m.status = 'approved' AND (p.merchant = ? OR ? = '') ORDER BY p.created_ms DESC, p.id LIMIT 200`, merchant, merchant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Product
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Cart is a customer's cart: one merchant's products.
type Cart struct {
	Customer string
	Merchant string
	Rev      int64 // grows with every change
	Lines    []CartLine
	Total    int64 // fen
}

// CartLine is one product in a cart, at its price now.
type CartLine struct {
	Product Product
	Qty     int64
	Amount  int64 // price × qty
}

// Cart returns the customer's cart (empty, revision 0, when none).
func (m *Mall) Cart(ctx context.Context, customer string) (Cart, error) {
	return m.cart(ctx, m.DB, customer)
}

type querier interface {
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
}

var (
	_ querier = (*store.DB)(nil)
	_ querier = (*store.Tx)(nil)
)

func (m *Mall) cart(ctx context.Context, q querier, customer string) (Cart, error) {
	c := Cart{Customer: customer}
	err := q.QueryRow(ctx, `SELECT merchant, rev FROM mall_carts WHERE customer = ?`, customer).Scan(&c.Merchant, &c.Rev)
	if errors.Is(err, sql.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	rows, err := q.Query(ctx, `SELECT `+productCols+`, l.qty FROM mall_cart_lines l JOIN mall_products p ON p.id = l.product
JOIN mall_merchants m ON m.id = p.merchant WHERE l.customer = ? ORDER BY p.name, p.id`, customer)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var l CartLine
		p := &l.Product
		if err := rows.Scan(&p.ID, &p.Merchant, &p.Name, &p.Description, &p.Price, &p.Stock, &p.CreatedMS, &p.MerchantName, &l.Qty); err != nil {
			return c, err
		}
		l.Amount = p.Price * l.Qty
		c.Total += l.Amount
		c.Lines = append(c.Lines, l)
	}
	return c, rows.Err()
}

// SetQty puts qty of product in the customer's cart (0 removes it). A
// product of another merchant than the cart's, or more than the stock, is
// refused. Every change raises the cart's revision.
func (m *Mall) SetQty(ctx context.Context, customer, product string, qty int64) (Cart, error) {
	if qty < 0 || qty > maxQty {
		return Cart{}, fmt.Errorf("%w: a quantity from 0 to %d", ErrInvalid, maxQty)
	}
	p, err := m.Product(ctx, product)
	if err != nil {
		return Cart{}, err
	}
	if qty > p.Stock {
		return Cart{}, fmt.Errorf("%w: %s has %d in stock", ErrOutOfStock, p.ID, p.Stock)
	}
	err = m.DB.InTx(ctx, func(tx *store.Tx) error {
		c, err := m.cart(ctx, tx, customer)
		if err != nil {
			return err
		}
		if len(c.Lines) > 0 && c.Merchant != p.Merchant {
			return fmt.Errorf("%w: the cart is %s's", ErrOtherMerchant, c.Merchant)
		}
		if c.Rev == 0 && c.Merchant == "" {
			if _, err := tx.Exec(ctx, `INSERT INTO mall_carts (customer, merchant, rev) VALUES (?, ?, 1)
ON CONFLICT (customer) DO UPDATE SET merchant = excluded.merchant, rev = mall_carts.rev + 1`, customer, p.Merchant); err != nil {
				return err
			}
		} else if _, err := tx.Exec(ctx, `UPDATE mall_carts SET merchant = ?, rev = rev + 1 WHERE customer = ?`, p.Merchant, customer); err != nil {
			return err
		}
		if qty == 0 {
			_, err = tx.Exec(ctx, `DELETE FROM mall_cart_lines WHERE customer = ? AND product = ?`, customer, p.ID)
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO mall_cart_lines (customer, product, qty) VALUES (?, ?, ?)
ON CONFLICT (customer, product) DO UPDATE SET qty = excluded.qty`, customer, p.ID, qty)
		return err
	})
	if err != nil {
		return Cart{}, err
	}
	return m.Cart(ctx, customer)
}

// AddToCart adds qty of product to what the cart has of it.
func (m *Mall) AddToCart(ctx context.Context, customer, product string, qty int64) (Cart, error) {
	if qty <= 0 {
		return Cart{}, fmt.Errorf("%w: add at least one", ErrInvalid)
	}
	c, err := m.Cart(ctx, customer)
	if err != nil {
		return c, err
	}
	for _, l := range c.Lines {
		if l.Product.ID == product {
			qty += l.Qty
		}
	}
	return m.SetQty(ctx, customer, product, qty)
}
