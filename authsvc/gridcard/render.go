package gridcard

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// RenderPNG draws the card for printing: a title, the serial number, and the
// grid with column letters and row numbers, at 3× the 7×13 bitmap font
// (about 300 dpi for a card-sized print).
func RenderPNG(w io.Writer, c *Card) error {
	const (
		cellW, cellH = 40, 18
		left, top    = 28, 44
		scale        = 3
	)
	width := left + c.Cols*cellW + 12
	height := top + (c.Rows+1)*cellH + 22
	img := image.NewGray(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.Black, Face: basicfont.Face7x13}
	text := func(x, y int, s string) {
		d.Dot = fixed.P(x, y)
		d.DrawString(s)
	}
	text(8, 14, "egate Bank - grid card")
	text(8, 30, "Serial "+groups(c.Serial))
	line := func(x0, y0, x1, y1 int) {
		for x := x0; x <= x1; x++ {
			for y := y0; y <= y1; y++ {
				img.SetGray(x, y, color.Gray{Y: 0})
			}
		}
	}
	gx0, gy0 := left, top
	gx1, gy1 := left+c.Cols*cellW, top+(c.Rows+1)*cellH
	for i := 0; i <= c.Cols; i++ {
		line(gx0+i*cellW, gy0, gx0+i*cellW, gy1)
	}
	for j := 0; j <= c.Rows+1; j++ {
		line(gx0, gy0+j*cellH, gx1, gy0+j*cellH)
	}
	for i := 0; i < c.Cols; i++ {
		text(gx0+i*cellW+17, gy0+cellH-4, string(rune('A'+i)))
	}
	for r := 0; r < c.Rows; r++ {
		y := gy0 + (r+2)*cellH - 4
		n := strconv.Itoa(r + 1)
		text(left-4-7*len(n), y, n)
		for col := 0; col < c.Cols; col++ {
			text(gx0+col*cellW+10, y, c.Codes[r*c.Cols+col])
		}
	}
	text(8, height-6, "Never share this card.")
	// Scale up for print.
	big := image.NewGray(image.Rect(0, 0, width*scale, height*scale))
	for y := 0; y < height*scale; y++ {
		for x := 0; x < width*scale; x++ {
			big.Pix[y*big.Stride+x] = img.Pix[(y/scale)*img.Stride+x/scale]
		}
	}
	return png.Encode(w, big)
}

func groups(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		if i > 0 && i%4 == 0 {
			out = append(out, ' ')
		}
		out = append(out, s[i])
	}
	return string(out)
}
