package atm

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// isPTY says whether fd, opened from name, is a pseudo-terminal: a UNIX98
// pty slave (/dev/pts/N: character device majors 136–143,
// Documentation/admin-guide/devices.txt) or the master multiplexer
// (/dev/ptmx, 5:2). Where fstat fails, a name under /dev/pts/ says the same.
// Serial drivers (8250 ttyS 4, USB ttyUSB 188, ttyACM 166, …) have majors of
// their own.
func isPTY(fd int, name string) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return ptsPath(name)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return false
	}
	major, minor := unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
	return (major >= 136 && major <= 143) || (major == 5 && minor == 2)
}

// ptsPath says whether name (after symbolic links) lies under /dev/pts/.
func ptsPath(name string) bool {
	if p, err := filepath.EvalSymlinks(name); err == nil {
		name = p
	}
	return strings.HasPrefix(filepath.Clean(name), "/dev/pts/")
}
