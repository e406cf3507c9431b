// Package captcha makes the image captcha the passport asks for after the
// first failed login for a name or an address: a few digits drawn from a
// 5×7 bitmap font, scaled, sheared and waved, over noise lines and dots,
// encoded as PNG. Challenges are stored (hashed) in the database and are
// single use across replicas: a wrong answer spends the challenge too.
package captcha

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
)

// glyphs are 5×7 bitmaps of the digits, one string of 7 rows of 5 bits.
var glyphs = [10][7]uint8{
	{0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, // 0
	{0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}, // 1
	{0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, // 2
	{0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}, // 3
	{0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, // 4
	{0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}, // 5
	{0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, // 6
	{0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, // 7
	{0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, // 8
	{0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}, // 9
}

// Size of the image.
const (
	Width  = 200
	Height = 70
)

// Render draws digits (each '0'…'9') into a PNG using rng for the
// distortion. It panics on a non-digit: callers make the text.
func Render(digits string, rng *rand.Rand) []byte {
	img := image.NewRGBA(image.Rect(0, 0, Width, Height))
	bg := color.RGBA{0xF4, 0xF1, 0xE8, 0xFF}
	for i := range img.Pix {
		img.Pix[i] = []byte{bg.R, bg.G, bg.B, bg.A}[i%4]
	}
	// Noise dots.
	for range Width * Height / 12 {
		c := uint8(120 + rng.IntN(100))
		img.Set(rng.IntN(Width), rng.IntN(Height), color.RGBA{c, c, uint8(rng.IntN(255)), 0xFF})
	}
	const scale = 6
	cellW := Width / (len(digits) + 1)
	amp, freq, phase := 3+rng.Float64()*4, 0.05+rng.Float64()*0.06, rng.Float64()*math.Pi*2
	for i, ch := range digits {
		g := glyphs[ch-'0']
		ox := cellW/2 + i*cellW + rng.IntN(7) - 3
		oy := (Height-7*scale)/2 + rng.IntN(9) - 4
		shear := (rng.Float64() - 0.5) * 0.6
		ink := color.RGBA{uint8(rng.IntN(90)), uint8(rng.IntN(90)), uint8(60 + rng.IntN(120)), 0xFF}
		for y := 0; y < 7*scale; y++ {
			for x := 0; x < 5*scale; x++ {
				if g[y/scale]&(0x10>>(x/scale)) == 0 {
					continue
				}
				px := ox + x + int(shear*float64(y-7*scale/2))
				py := oy + y + int(amp*math.Sin(freq*float64(ox+x)+phase))
				img.Set(px, py, ink)
			}
		}
	}
	// Strike-through curves.
	for range 3 {
		y0, a, f, p := float64(rng.IntN(Height)), 4+rng.Float64()*10, 0.02+rng.Float64()*0.05, rng.Float64()*6
		c := color.RGBA{uint8(rng.IntN(120)), uint8(rng.IntN(120)), uint8(rng.IntN(160)), 0xFF}
		for x := range Width {
			y := int(y0 + a*math.Sin(f*float64(x)+p))
			img.Set(x, y, c)
			img.Set(x, y+1, c)
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img) // writing to a bytes.Buffer does not fail
	return buf.Bytes()
}
