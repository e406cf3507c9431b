package config

import "io"

var ioEOF = io.EOF
